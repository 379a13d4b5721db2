package rewrite

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// explain scopes the explained statement and forces COSTS OFF: row estimates come from statistics over
// every workspace's rows. Even without costs, the plan PostgreSQL picks depends on those statistics (a
// sequential scan where the workspace's rows alone would take an index), so EXPLAIN needs the workspace's
// explain permission. EXPLAIN ANALYZE is refused: it runs the statement and reports other workspaces' rows
// as filtered out.
//
// The options are emitted again from what they mean, never from the client's text: only the options
// PostgreSQL knows, with their values read as it reads them.
func (a *analyzer) explain(s *pg_query.ExplainStmt) error {
	if !a.tenant.Can(tenant.PermExplain) {
		if err := a.scoping(refusef(ReasonExplain, "EXPLAIN shows plans chosen from statistics over every workspace's rows; it needs the workspace's explain permission")); err != nil {
			return err
		}
	}
	var opts []string
	for _, o := range s.Options {
		d := o.GetDefElem()
		if d == nil {
			return refusef(ReasonUnsupportedSyntax, "unexpected EXPLAIN option")
		}
		switch d.Defname {
		case "analyze":
			on, err := explainBool(d)
			if err != nil {
				return err
			}
			if on {
				if err := a.scoping(refusef(ReasonExplainAnalyze, "EXPLAIN ANALYZE reports rows of other workspaces")); err != nil {
					return err
				}
			}
			opts = append(opts, "ANALYZE "+strings.ToUpper(strconv.FormatBool(on)))
		case "costs":
			if _, err := explainBool(d); err != nil {
				return err
			}
		case "verbose", "settings", "buffers", "wal", "timing", "summary":
			on, err := explainBool(d)
			if err != nil {
				return err
			}
			opts = append(opts, strings.ToUpper(d.Defname)+" "+strings.ToUpper(strconv.FormatBool(on)))
		case "format":
			f := d.Arg.GetString_().GetSval()
			if !slices.Contains([]string{"text", "xml", "json", "yaml"}, f) {
				return refusef(ReasonUnsupportedSyntax, "unrecognized value for EXPLAIN option \"format\"")
			}
			opts = append(opts, "FORMAT "+strings.ToUpper(f))
		default:
			return refusef(ReasonUnsupportedSyntax, "unrecognized EXPLAIN option %s", QuoteIdent(d.Defname))
		}
	}
	if err := a.stmt(s.Query, nil, true); err != nil {
		return err
	}
	if a.mode == ModeAudit {
		return nil
	}
	// Replace the head, EXPLAIN and its options, with one that says COSTS OFF.
	t := a.txt
	i, err := t.from(a.stmtStart)
	if err != nil {
		return err
	}
	j := i + 1
	if j < len(t.toks) && t.toks[j].kind == pg_query.Token_ASCII_40 {
		c, err := t.closing(j)
		if err != nil {
			return err
		}
		j = c + 1
	}
	for j < len(t.toks) && (t.toks[j].kind == pg_query.Token_ANALYZE || t.toks[j].kind == pg_query.Token_VERBOSE) {
		j++
	}
	if j >= len(t.toks) {
		return refusef(ReasonUnsupportedSyntax, "EXPLAIN without a statement")
	}
	opts = append(opts, "COSTS FALSE")
	t.replace(t.toks[i].start, t.toks[j].start, "EXPLAIN ("+strings.Join(opts, ", ")+") ")
	a.expectExplain(s, opts)
	return nil
}

// explainBool reads the value of a boolean EXPLAIN option as PostgreSQL's defGetBoolean does.
func explainBool(d *pg_query.DefElem) (bool, error) {
	switch v := nodeMessage(d.Arg).(type) {
	case nil:
		return true, nil
	case *pg_query.Integer:
		switch v.Ival {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	case *pg_query.String:
		switch strings.ToLower(v.Sval) {
		case "true", "on":
			return true, nil
		case "false", "off":
			return false, nil
		}
	case *pg_query.Boolean:
		return v.Boolval, nil
	}
	return false, refusef(ReasonUnsupportedSyntax, "EXPLAIN option %s requires a Boolean value", QuoteIdent(d.Defname))
}

// expectExplain records the options the rewritten head gives EXPLAIN, "NAME VALUE" each, as the parser
// reads them.
func (a *analyzer) expectExplain(s *pg_query.ExplainStmt, opts []string) {
	a.expectf(func() {
		s.Options = nil
		for _, o := range opts {
			name, value, _ := strings.Cut(o, " ")
			s.Options = append(s.Options, pg_query.MakeSimpleDefElemNode(strings.ToLower(name), strNode(strings.ToLower(value)), 0))
		}
	})
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "on", "1", "yes":
		return true
	}
	return false
}

// prepare scopes the statement of an SQL-level PREPARE; EXECUTE then runs a scoped statement.
func (a *analyzer) prepare(s *pg_query.PrepareStmt) error {
	saved := a.paramTypes
	a.paramTypes = nil
	for _, n := range s.Argtypes {
		a.paramTypes = append(a.paramTypes, a.typeOID(n.GetTypeName()))
	}
	a.inPrepare = true
	defer func() { a.paramTypes, a.inPrepare = saved, false }()
	return a.stmt(s.Query, nil, true)
}

// copyStmt handles COPY. COPY of a tenant table TO STDOUT becomes COPY of a scoped query; COPY FROM STDIN
// into a tenant table is refused, since the proxy does not check rows it cannot see parsed; files and
// programs are refused.
func (a *analyzer) copyStmt(s *pg_query.CopyStmt) error {
	if s.IsProgram || s.Filename != "" {
		return refusef(ReasonCopyFile, "COPY to or from a file or program runs on the database server; use STDIN or STDOUT")
	}
	if s.Query != nil {
		return a.stmt(s.Query, nil, true)
	}
	rv := s.Relation
	a.handled[rv] = true
	rel, err := a.resolve(rv)
	if err != nil {
		return err
	}
	a.addRelation(rel)
	if s.IsFrom {
		if err := a.write(); err != nil {
			return err
		}
		switch {
		case rel.IsTenant():
			return a.scoping(a.at(refusef(ReasonCopyFrom, "COPY FROM STDIN into tenant table %s cannot be checked row by row; use INSERT", rel.QualifiedName()), rv.Location))
		case rel.WritableGlobal:
			return nil
		case rel.Global:
			return a.at(refusef(ReasonGlobalWrite, "global table %s is read-only", rel.QualifiedName()), rv.Location)
		}
		return a.at(refusef(ReasonUnscopedRelation, "relation %s has no %s column and is not a global table", rel.QualifiedName(), QuoteIdent(a.pol.TenantColumn)), rv.Location)
	}
	switch {
	case rel.IsTenant():
		a.addTarget(&target{rv: rv, rel: rel, ref: rv.Relname, col: rel.TenantColumn().Name, copy: s})
		return nil
	case rel.Kind == KindSequence:
		return a.at(refusef(ReasonSequenceRead, "reading sequence %s directly is not allowed", rel.QualifiedName()), rv.Location)
	case rel.Global, rel.Builtin:
		if maskedColumns(rel) != nil {
			if a.postCheck {
				a.unmasked = append(a.unmasked, "COPY of "+rel.QualifiedName()+" reads its masked columns")
			}
			a.masks = append(a.masks, &target{rv: rv, rel: rel, ref: rv.Relname, copy: s, mask: true})
		}
		return nil
	}
	return a.at(refusef(ReasonUnscopedRelation, "relation %s has no %s column and is not a global table", rel.QualifiedName(), QuoteIdent(a.pol.TenantColumn)), rv.Location)
}

// set handles SET. RESET, RESET ALL and SET ... TO DEFAULT are always allowed: every setting returns to
// its session start value, which the proxy chose or checked.
func (a *analyzer) set(s *pg_query.VariableSetStmt) error {
	if s.Kind != pg_query.VariableSetKind_VAR_SET_VALUE {
		return nil
	}
	value := ""
	if len(s.Args) == 1 {
		if c := s.Args[0].GetAConst(); c != nil {
			value, _ = constText(c)
		}
		if a.constParams && s.Args[0].GetParamRef() != nil {
			// A template's parameter stands for the value, which decides (application_name).
			a.byText = true
		}
	}
	if err := a.settable(strings.ToLower(s.Name), value); err != nil {
		return err
	}
	return nil
}

// settable refuses setting name to value when the setting is protected.
func (a *analyzer) settable(name, value string) *Error {
	switch {
	case name == strings.ToLower(a.pol.TenantSetting):
		return refusef(ReasonProtectedSetting, "%s is set by tenantproxy to the workspace's id", a.pol.TenantSetting)
	case strings.HasPrefix(name, "citus.") || strings.HasPrefix(name, "columnar."):
		return refusef(ReasonProtectedSetting, "%s cannot be changed through tenantproxy: Citus settings change how statements are planned and routed, and what they may see", name)
	case name == "application_name" && InternalApplicationName(value):
		return refusef(ReasonProtectedSetting, "application_name %q is refused: Citus grants internal privileges to sessions whose name starts with citus", value)
	case !protectedSettings[name]:
		return nil
	case name == "standard_conforming_strings" && truthy(value):
		return nil
	case name == "client_encoding" && SafeClientEncoding(value):
		return nil
	case name == "role" || name == "session_authorization":
		return refusef(ReasonProtectedSetting, "%s cannot be changed through tenantproxy", name)
	}
	return refusef(ReasonProtectedSetting, "%s cannot be changed through tenantproxy: it changes which relations names resolve to or how the server reads SQL text", name)
}

// InternalApplicationName reports whether an application_name is one Citus takes for its own internal
// connections ("citus_internal gpid=", "citus_rebalancer gpid=", "citus_run_command gpid=",
// "citus_shard_..."), which it lets run its internal functions and skip its checks. Any name starting with
// "citus", in any case and after spaces, counts.
func InternalApplicationName(value string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(value)), "citus")
}

// SafeClientEncoding reports whether a client encoding (as SET or a startup packet names it) makes the
// server read a statement's bytes as the proxy's parser does: UTF8, or SQL_ASCII, which the server takes
// unconverted (and checks as UTF-8, the database's encoding). Any other conversion changes the bytes the
// server parses: a multi-byte character of SJIS can hide a quote, a LATIN1 name grows past the 63 bytes
// the server truncates names to.
func SafeClientEncoding(name string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	switch b.String() {
	case "utf8", "unicode", "sqlascii":
		return true
	}
	return false
}

// ChannelPrefix returns the prefix of the workspace's LISTEN/NOTIFY channels on the server. It is derived
// from the workspace id so that no two workspaces share a channel, and is short, since channel names are
// limited to 63 bytes.
func ChannelPrefix(t *tenant.Context) string {
	sum := sha256.Sum256([]byte(t.ID))
	return "w" + hex.EncodeToString(sum[:6]) + ":"
}

// maxChannel is the longest channel name PostgreSQL accepts (NAMEDATALEN - 1).
const maxChannel = 63

// channel namespaces the channel of LISTEN, UNLISTEN and NOTIFY to the workspace.
func (a *analyzer) channel(s any) error {
	if a.mode == ModeAudit || a.postCheck {
		return nil
	}
	var name string
	var set func(string)
	switch s := s.(type) {
	case *pg_query.ListenStmt:
		name, set = s.Conditionname, func(c string) { s.Conditionname = c }
	case *pg_query.UnlistenStmt:
		name, set = s.Conditionname, func(c string) { s.Conditionname = c }
	case *pg_query.NotifyStmt:
		name, set = s.Conditionname, func(c string) { s.Conditionname = c }
	}
	if name == "" {
		return nil // UNLISTEN *: every channel of this session is the workspace's
	}
	prefixed := ChannelPrefix(a.tenant) + name
	if len(prefixed) > maxChannel {
		return refusef(ReasonChannelName, "channel name %q is too long: at most %d bytes", name, maxChannel-len(ChannelPrefix(a.tenant)))
	}
	i, err := a.txt.from(a.stmtStart)
	if err != nil || i+1 >= len(a.txt.toks) {
		return refusef(ReasonUnsupportedSyntax, "cannot find the channel name")
	}
	tk := a.txt.toks[i+1]
	a.txt.replace(tk.start, tk.end, QuoteIdent(prefixed))
	a.expectf(func() { set(prefixed) })
	return nil
}

// notifyCall namespaces the channel argument of pg_notify().
func (a *analyzer) notifyCall(fc *pg_query.FuncCall) error {
	if a.mode == ModeAudit || a.postCheck || len(fc.Args) == 0 {
		return nil
	}
	t := a.txt
	i, err := t.at(int(fc.Location))
	if err != nil {
		return err
	}
	d := t.toks[i].depth
	open := t.nextAtDepth(i, len(t.toks), d, pg_query.Token_ASCII_40)
	if open < 0 || open+1 >= len(t.toks) {
		return refusef(ReasonUnsupportedSyntax, "cannot find the arguments of pg_notify")
	}
	end := t.nextAtDepth(open, len(t.toks), d+1, pg_query.Token_ASCII_44) // ,
	if end < 0 {
		if end, err = t.closing(open); err != nil {
			return err
		}
	}
	prefix := ChannelPrefix(a.tenant)
	t.insert(t.toks[open+1].start, QuoteLiteral(prefix)+" || (")
	t.insert(t.toks[end-1].end, ")")
	a.expectf(func() {
		fc.Args[0] = pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, strNodes("||"), literalNode(prefix), fc.Args[0], 0)
	})
	return nil
}

// scoping passes on a refusal that is about scoping: audit mode forwards the statement and records what
// enforce would have refused instead; the other modes refuse.
func (a *analyzer) scoping(err error) error {
	e, ok := err.(*Error)
	if ok && a.mode == ModeAudit {
		a.alerts = append(a.alerts, Alert{Reason: e.Reason, Text: e.Text, Relations: slices.Clone(a.relations)})
		return nil
	}
	return err
}
