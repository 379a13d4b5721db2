package proxy

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// checkParams refuses a Bind whose checked parameters are not the workspace's id.
func checkParams(b *pgproto3.Bind, checks []rewrite.ParamCheck, id string) *rewrite.Error {
	if i, ok := otherParam(b, checks, id, true); ok {
		return &rewrite.Error{
			Code:   rewrite.CodeInsufficientPrivilege,
			Reason: rewrite.ReasonTenantMismatch,
			Text:   fmt.Sprintf("parameter $%d is not this workspace's id", i+1),
		}
	}
	return nil
}

// otherParam returns the index of the first checked parameter of a Bind that is not the workspace's id;
// a NULL counts only with null.
func otherParam(b *pgproto3.Bind, checks []rewrite.ParamCheck, id string, null bool) (int, bool) {
	for _, c := range checks {
		if c.Index >= len(b.Parameters) {
			continue // the server refuses a Bind short of parameters
		}
		if b.Parameters[c.Index] == nil && !null {
			continue
		}
		var format int16
		switch {
		case len(b.ParameterFormatCodes) == 1:
			format = b.ParameterFormatCodes[0]
		case c.Index < len(b.ParameterFormatCodes):
			format = b.ParameterFormatCodes[c.Index]
		}
		value, ok := paramText(b.Parameters[c.Index], format, c.Type)
		if !ok || !rewrite.SameTenantValue(value, id, c.Type) {
			return c.Index, true
		}
	}
	return 0, false
}

// paramText returns a bound value in its text form, reading binary values of the types a tenant column
// can have. A NULL, or a binary value of another type, is not ok.
func paramText(v []byte, format int16, typ uint32) (string, bool) {
	if v == nil {
		return "", false
	}
	if format == 0 {
		return string(v), true
	}
	switch typ {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UnknownOID:
		return string(v), true
	case pgtype.UUIDOID:
		if len(v) == 16 {
			return fmt.Sprintf("%x-%x-%x-%x-%x", v[0:4], v[4:6], v[6:8], v[8:10], v[10:16]), true
		}
	case pgtype.Int2OID:
		if len(v) == 2 {
			return strconv.Itoa(int(int16(binary.BigEndian.Uint16(v)))), true
		}
	case pgtype.Int4OID:
		if len(v) == 4 {
			return strconv.Itoa(int(int32(binary.BigEndian.Uint32(v)))), true
		}
	case pgtype.Int8OID:
		if len(v) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10), true
		}
	}
	return "", false
}
