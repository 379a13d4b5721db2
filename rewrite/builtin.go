package rewrite

import (
	"bytes"
	"cmp"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
)

// The rewriter must also work without a server: golden tests and `tenantproxy check --schema` resolve
// names, operators and functions against PostgreSQL's built-in objects, which a schema file never
// declares. builtin_catalog.json.gz is a snapshot of those objects, read from a real server by the
// generator, so the offline catalog agrees with what Load reads online instead of a hand-kept list that
// drifts. Regenerate it after a PostgreSQL major upgrade of the reference server:
//
//go:generate go run ../internal/pgcatalog/gen -o builtin_catalog.json.gz

//go:embed builtin_catalog.json.gz
var builtinSnapshot []byte

// builtinCatalog decodes the embedded snapshot once. The decoded catalog is never handed out: Builtin
// returns copies, so it stays immutable.
var builtinCatalog = sync.OnceValue(func() *Catalog {
	zr, err := gzip.NewReader(bytes.NewReader(builtinSnapshot))
	if err != nil {
		panic(fmt.Sprintf("rewrite: the embedded builtin catalog is corrupt (regenerate it with go generate ./rewrite): %v", err))
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		panic(fmt.Sprintf("rewrite: the embedded builtin catalog is corrupt (regenerate it with go generate ./rewrite): %v", err))
	}
	c, err := UnmarshalCatalog(data)
	if err != nil {
		panic(fmt.Sprintf("rewrite: the embedded builtin catalog is corrupt (regenerate it with go generate ./rewrite): %v", err))
	}
	return c
})

// Builtin returns a new Catalog holding PostgreSQL's built-in objects: the relations of pg_catalog and
// information_schema with their columns, all built-in binary operators, functions, types and
// binary-coercible casts, SearchPath ["pg_catalog", "public"] and the ServerVersion of the server the
// snapshot was taken from.
//
// The result is a deep copy: the caller may add to it (CatalogFromDDL does), and two callers never see
// each other's additions.
func Builtin() *Catalog {
	return builtinCatalog().clone()
}

// EmbeddedBuiltins returns the list of objects initdb creates, for the server version the embedded
// snapshot was taken from. It is shared: callers must not change it.
func EmbeddedBuiltins() *Builtins {
	if b := builtinCatalog().Builtins; b != nil {
		return b
	}
	// A snapshot without the list: judge by OID and extension membership alone.
	return &Builtins{}
}

// clone returns a deep copy of c: no map, slice or Relation is shared with c.
func (c *Catalog) clone() *Catalog {
	out := &Catalog{
		Relations:          make(map[string]map[string]*Relation, len(c.Relations)),
		SearchPath:         slices.Clone(c.SearchPath),
		Operators:          maps.Clone(c.Operators),
		OperatorResults:    maps.Clone(c.OperatorResults),
		ImmutableOperators: maps.Clone(c.ImmutableOperators),
		Casts:              maps.Clone(c.Casts),
		Functions:          make(map[string]map[string]*Function, len(c.Functions)),
		Types:              maps.Clone(c.Types),
		BinaryCoercible:    maps.Clone(c.BinaryCoercible),
		ServerVersion:      c.ServerVersion,
		UserOperators:      make(map[string][]UserOperator, len(c.UserOperators)),
		UserTypes:          make(map[string]*UserType, len(c.UserTypes)),
		UserCasts:          maps.Clone(c.UserCasts),
		Shards:             maps.Clone(c.Shards),
		Citus:              c.Citus,
		// Shared: nothing changes a catalog's Builtins after it is read.
		Builtins: c.Builtins,
	}
	for name, ops := range c.UserOperators {
		out.UserOperators[name] = slices.Clone(ops)
	}
	for name, ut := range c.UserTypes {
		out.UserTypes[name] = &UserType{Enum: ut.Enum, Input: ut.Input, Calls: slices.Clone(ut.Calls), Over: slices.Clone(ut.Over)}
	}
	if out.UserCasts == nil {
		out.UserCasts = map[CastKey]string{}
	}
	// maps.Clone keeps nil maps nil; a catalog callers add to needs them allocated.
	if out.OperatorResults == nil {
		out.OperatorResults = map[OpKey]uint32{}
	}
	if out.Operators == nil {
		out.Operators = map[OpKey]bool{}
	}
	if out.ImmutableOperators == nil {
		out.ImmutableOperators = map[OpKey]bool{}
	}
	if out.Casts == nil {
		out.Casts = map[CastKey]CastInfo{}
	}
	if out.Types == nil {
		out.Types = map[string]uint32{}
	}
	if out.BinaryCoercible == nil {
		out.BinaryCoercible = map[uint32]uint32{}
	}
	for schema, rels := range c.Relations {
		m := make(map[string]*Relation, len(rels))
		for name, r := range rels {
			m[name] = r.clone()
		}
		out.Relations[schema] = m
	}
	for schema, fns := range c.Functions {
		m := make(map[string]*Function, len(fns))
		for name, f := range fns {
			fc := *f
			fc.Overloads = slices.Clone(f.Overloads)
			m[name] = &fc
		}
		out.Functions[schema] = m
	}
	return out
}

// clone returns a deep copy of r.
func (r *Relation) clone() *Relation {
	rc := *r
	rc.Columns = slices.Clone(r.Columns)
	rc.Reads, rc.Calls = slices.Clone(r.Reads), slices.Clone(r.Calls)
	if r.UniqueKeys != nil {
		rc.UniqueKeys = make([][]string, len(r.UniqueKeys))
		for i, k := range r.UniqueKeys {
			rc.UniqueKeys[i] = slices.Clone(k)
		}
	}
	return &rc
}

// catalogFormat is the version of the encoding below; UnmarshalCatalog refuses others, so a snapshot
// written by a newer generator fails loudly instead of decoding into a half-empty catalog.
const catalogFormat = 3

// catalogJSON is the serialized form of a Catalog. Go maps with struct keys have no JSON form, and map
// iteration order is random, so every map of pointers becomes a list sorted by its key: the same catalog
// always encodes to the same bytes, and a regenerated snapshot only differs where the server does.
type catalogJSON struct {
	Format          int               `json:"format"`
	ServerVersion   int               `json:"serverVersion"`
	SearchPath      []string          `json:"searchPath"`
	Relations       []relationJSON    `json:"relations"`
	Operators       []operatorJSON    `json:"operators"`
	Functions       []functionJSON    `json:"functions"`
	Casts           []castJSON        `json:"casts"`
	Types           map[string]uint32 `json:"types"`           // encoding/json sorts map keys
	BinaryCoercible map[uint32]uint32 `json:"binaryCoercible"` // keys as decimal strings, sorted
	// Builtins are the signatures of the objects initdb created on the server read (sorted).
	Builtins      []string                  `json:"builtins,omitempty"`
	UserOperators map[string][]UserOperator `json:"userOperators,omitempty"`
	UserTypes     map[string]*UserType      `json:"userTypes,omitempty"`
	UserCasts     []userCastJSON            `json:"userCasts,omitempty"`
	Shards        map[string]string         `json:"shards,omitempty"`
}

type userCastJSON struct {
	Source   uint32 `json:"source"`
	Target   uint32 `json:"target"`
	Function string `json:"function,omitempty"`
}

type relationJSON struct {
	Schema         string       `json:"schema"`
	Name           string       `json:"name"`
	Kind           string       `json:"kind"`
	Columns        []columnJSON `json:"columns,omitempty"`
	Tenant         int          `json:"tenant"`
	UniqueKeys     [][]string   `json:"uniqueKeys,omitempty"`
	Global         bool         `json:"global,omitempty"`
	WritableGlobal bool         `json:"writableGlobal,omitempty"`
	Reads          []string     `json:"reads,omitempty"`
	Calls          []string     `json:"calls,omitempty"`
	Builtin        bool         `json:"builtin,omitempty"`
}

type columnJSON struct {
	Name string `json:"n"`
	Type uint32 `json:"t"`
}

type operatorJSON struct {
	Name      string `json:"name"`
	Left      uint32 `json:"left"`
	Right     uint32 `json:"right"`
	Leakproof bool   `json:"leakproof,omitempty"`
	Immutable bool   `json:"immutable,omitempty"`
	Result    uint32 `json:"result,omitempty"`
}

type castJSON struct {
	Source    uint32 `json:"source"`
	Target    uint32 `json:"target"`
	Immutable bool   `json:"immutable,omitempty"`
	Leakproof bool   `json:"leakproof,omitempty"`
}

type functionJSON struct {
	Schema    string     `json:"schema"`
	Name      string     `json:"name"`
	Leakproof bool       `json:"leakproof,omitempty"`
	Aggregate bool       `json:"aggregate,omitempty"`
	Stable    bool       `json:"stable,omitempty"`
	Immutable bool       `json:"immutable,omitempty"`
	Result    uint32     `json:"result,omitempty"`
	Builtin   bool       `json:"builtin,omitempty"`
	Extension string     `json:"extension,omitempty"`
	Overloads []Overload `json:"overloads,omitempty"`
}

// MarshalCatalog encodes c as JSON, deterministically: equal catalogs give equal bytes. It is the format
// of the embedded built-in snapshot, which the generator (internal/pgcatalog/gen) writes gzipped.
func MarshalCatalog(c *Catalog) ([]byte, error) {
	out := catalogJSON{
		Format:          catalogFormat,
		ServerVersion:   c.ServerVersion,
		SearchPath:      c.SearchPath,
		Relations:       []relationJSON{},
		Operators:       []operatorJSON{},
		Functions:       []functionJSON{},
		Casts:           []castJSON{},
		Types:           c.Types,
		BinaryCoercible: c.BinaryCoercible,
		UserOperators:   c.UserOperators,
		UserTypes:       c.UserTypes,
		Shards:          c.Shards,
	}
	if c.Builtins != nil {
		out.ServerVersion = c.Builtins.ServerVersion
		for sig := range c.Builtins.Signatures {
			out.Builtins = append(out.Builtins, sig)
		}
		slices.Sort(out.Builtins)
	}
	for k, fn := range c.UserCasts {
		out.UserCasts = append(out.UserCasts, userCastJSON{Source: k.Source, Target: k.Target, Function: fn})
	}
	slices.SortFunc(out.UserCasts, func(a, b userCastJSON) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	for _, rels := range c.Relations {
		for _, r := range rels {
			rj := relationJSON{
				Schema: r.Schema, Name: r.Name, Kind: string(rune(r.Kind)), Tenant: r.Tenant,
				UniqueKeys: r.UniqueKeys, Global: r.Global, WritableGlobal: r.WritableGlobal,
				Reads: r.Reads, Calls: r.Calls, Builtin: r.Builtin,
			}
			for _, col := range r.Columns {
				rj.Columns = append(rj.Columns, columnJSON(col))
			}
			out.Relations = append(out.Relations, rj)
		}
	}
	slices.SortFunc(out.Relations, func(a, b relationJSON) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name))
	})
	for k, lp := range c.Operators {
		out.Operators = append(out.Operators, operatorJSON{Name: k.Name, Left: k.Left, Right: k.Right, Leakproof: lp,
			Immutable: c.ImmutableOperators[k], Result: c.OperatorResults[k]})
	}
	slices.SortFunc(out.Operators, func(a, b operatorJSON) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Left, b.Left), cmp.Compare(a.Right, b.Right))
	})
	for _, fns := range c.Functions {
		for _, f := range fns {
			out.Functions = append(out.Functions, functionJSON(*f))
		}
	}
	for k, ci := range c.Casts {
		out.Casts = append(out.Casts, castJSON{Source: k.Source, Target: k.Target, Immutable: ci.Immutable, Leakproof: ci.Leakproof})
	}
	slices.SortFunc(out.Casts, func(a, b castJSON) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	slices.SortFunc(out.Functions, func(a, b functionJSON) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name))
	})
	return json.Marshal(out)
}

// UnmarshalCatalog decodes what MarshalCatalog encoded.
func UnmarshalCatalog(data []byte) (*Catalog, error) {
	var in catalogJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("decoding catalog: %w", err)
	}
	if in.Format != catalogFormat {
		return nil, fmt.Errorf("decoding catalog: format %d, want %d", in.Format, catalogFormat)
	}
	c := &Catalog{
		Relations:          map[string]map[string]*Relation{},
		SearchPath:         in.SearchPath,
		Operators:          make(map[OpKey]bool, len(in.Operators)),
		OperatorResults:    make(map[OpKey]uint32, len(in.Operators)),
		ImmutableOperators: make(map[OpKey]bool, len(in.Operators)),
		Casts:              make(map[CastKey]CastInfo, len(in.Casts)),
		Functions:          map[string]map[string]*Function{},
		Types:              in.Types,
		BinaryCoercible:    in.BinaryCoercible,
		ServerVersion:      in.ServerVersion,
		UserOperators:      in.UserOperators,
		UserTypes:          in.UserTypes,
		UserCasts:          make(map[CastKey]string, len(in.UserCasts)),
		Shards:             in.Shards,
	}
	if len(in.Builtins) > 0 {
		c.Builtins = &Builtins{ServerVersion: in.ServerVersion, Signatures: make(map[string]bool, len(in.Builtins))}
		for _, sig := range in.Builtins {
			c.Builtins.Signatures[sig] = true
		}
	}
	for _, uc := range in.UserCasts {
		c.UserCasts[CastKey{uc.Source, uc.Target}] = uc.Function
	}
	if c.UserOperators == nil {
		c.UserOperators = map[string][]UserOperator{}
	}
	if c.UserTypes == nil {
		c.UserTypes = map[string]*UserType{}
	}
	if c.Types == nil {
		c.Types = map[string]uint32{}
	}
	if c.BinaryCoercible == nil {
		c.BinaryCoercible = map[uint32]uint32{}
	}
	for _, rj := range in.Relations {
		if len(rj.Kind) != 1 {
			return nil, fmt.Errorf("decoding catalog: relation %s.%s has kind %q", rj.Schema, rj.Name, rj.Kind)
		}
		if rj.Tenant < -1 || rj.Tenant >= len(rj.Columns) {
			return nil, fmt.Errorf("decoding catalog: relation %s.%s has tenant column %d of %d", rj.Schema, rj.Name, rj.Tenant, len(rj.Columns))
		}
		r := &Relation{
			Schema: rj.Schema, Name: rj.Name, Kind: RelKind(rj.Kind[0]), Tenant: rj.Tenant,
			UniqueKeys: rj.UniqueKeys, Global: rj.Global, WritableGlobal: rj.WritableGlobal,
			Reads: rj.Reads, Calls: rj.Calls, Builtin: rj.Builtin,
		}
		for _, col := range rj.Columns {
			r.Columns = append(r.Columns, Column(col))
		}
		if c.Relations[r.Schema] == nil {
			c.Relations[r.Schema] = map[string]*Relation{}
		}
		c.Relations[r.Schema][r.Name] = r
	}
	for _, o := range in.Operators {
		k := OpKey{Name: o.Name, Left: o.Left, Right: o.Right}
		c.Operators[k] = o.Leakproof
		if o.Immutable {
			c.ImmutableOperators[k] = true
		}
		if o.Result != 0 {
			c.OperatorResults[k] = o.Result
		}
	}
	for _, cj := range in.Casts {
		c.Casts[CastKey{cj.Source, cj.Target}] = CastInfo{Immutable: cj.Immutable, Leakproof: cj.Leakproof}
	}
	for _, fj := range in.Functions {
		if c.Functions[fj.Schema] == nil {
			c.Functions[fj.Schema] = map[string]*Function{}
		}
		f := Function(fj)
		c.Functions[fj.Schema][fj.Name] = &f
	}
	return c, nil
}
