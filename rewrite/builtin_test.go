package rewrite

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Type OIDs are fixed by PostgreSQL for built-in types (they are in pg_type.dat), so tests may name them.
const (
	testOIDBool    = 16
	testOIDName    = 19
	testOIDInt8    = 20
	testOIDInt4    = 23
	testOIDText    = 25
	testOIDOid     = 26
	testOIDFloat4  = 700
	testOIDInt4Arr = 1007
	testOIDVarchar = 1043
	testOIDNumeric = 1700
	testOIDUUID    = 2950
)

func TestBuiltin(t *testing.T) {
	c := Builtin()

	pgClass := c.Relation("pg_catalog", "pg_class")
	if pgClass == nil {
		t.Fatal("Builtin() has no pg_catalog.pg_class")
	}
	if col, ok := pgClass.Column("reltuples"); !ok || col.Type != testOIDFloat4 {
		t.Errorf("pg_class.reltuples = %+v, %v; want a float4 (%d) column", col, ok, testOIDFloat4)
	}
	if pgClass.Kind != KindTable || pgClass.IsTenant() || pgClass.Global {
		t.Errorf("pg_class: kind %q, tenant %d, global %v; want a table without tenant column, not global",
			pgClass.Kind, pgClass.Tenant, pgClass.Global)
	}
	if pgClass.Columns[0].Name != "oid" {
		t.Errorf("pg_class's first column is %q, want oid (columns in attnum order)", pgClass.Columns[0].Name)
	}

	tables := c.Relation("information_schema", "tables")
	if tables == nil || tables.Kind != KindView {
		t.Fatalf("information_schema.tables = %+v, want a view", tables)
	}
	// information_schema columns are of domain types (sql_identifier over name); columns carry the base.
	if col, ok := tables.Column("table_name"); !ok || col.Type != testOIDName {
		t.Errorf("information_schema.tables.table_name = %+v, %v; want its domain's base type name (%d)", col, ok, testOIDName)
	}

	for _, tt := range []struct {
		op        OpKey
		leakproof bool
	}{
		{OpKey{"=", testOIDInt4, testOIDInt4}, true},
		{OpKey{"=", testOIDText, testOIDText}, true},
		{OpKey{"=", testOIDNumeric, testOIDNumeric}, false},
		{OpKey{"~~", testOIDText, testOIDText}, false},
	} {
		lp, ok := c.Operators[tt.op]
		if !ok || lp != tt.leakproof {
			t.Errorf("Operators[%v] = %v, %v; want %v, true", tt.op, lp, ok, tt.leakproof)
		}
	}

	for name, want := range map[string]uint32{
		"int4": testOIDInt4, "pg_catalog.int4": testOIDInt4, "text": testOIDText, "_int4": testOIDInt4Arr,
		"varchar": testOIDVarchar, "uuid": testOIDUUID,
		"information_schema.sql_identifier": testOIDName, // a domain: its base type
	} {
		if got := c.Types[name]; got != want {
			t.Errorf("Types[%q] = %d, want %d", name, got, want)
		}
	}
	if got := c.BinaryCoercible[testOIDVarchar]; got != testOIDText {
		t.Errorf("BinaryCoercible[varchar] = %d, want text (%d)", got, testOIDText)
	}
	if _, ok := c.BinaryCoercible[testOIDText]; ok {
		t.Errorf("BinaryCoercible has text, the preferred string type: its own operators apply")
	}
	for _, want := range []*Function{
		{Schema: "pg_catalog", Name: "lower", Stable: true, Immutable: true, Builtin: true,
			Overloads: []Overload{{Args: []uint32{testOIDText}, Result: testOIDText}, {Args: []uint32{3831}}, {Args: []uint32{4537}}}},
		{Schema: "pg_catalog", Name: "int4eq", Leakproof: true, Stable: true, Immutable: true, Result: 16, Builtin: true},
		{Schema: "pg_catalog", Name: "now", Stable: true, Result: 1184, Builtin: true},
		{Schema: "pg_catalog", Name: "random", Result: 701, Builtin: true},
		{Schema: "pg_catalog", Name: "count", Aggregate: true, Stable: true, Immutable: true, Result: 20, Builtin: true},
		{Schema: "information_schema", Name: "_pg_expandarray", Stable: true, Immutable: true, Builtin: true},
		// Created by initdb, but as a member of the plpgsql extension: not PostgreSQL's own.
		{Schema: "pg_catalog", Name: "plpgsql_call_handler", Extension: "plpgsql"},
	} {
		if diff := cmp.Diff(want, c.Function(want.Schema, want.Name)); diff != "" {
			t.Errorf("Function(%s, %s) (-want +got):\n%s", want.Schema, want.Name, diff)
		}
	}
	if want := []string{"pg_catalog", "public"}; !slices.Equal(c.SearchPath, want) {
		t.Errorf("SearchPath = %q, want %q", c.SearchPath, want)
	}
	if c.ServerVersion < 10 {
		t.Errorf("ServerVersion = %d, want the snapshot server's major version", c.ServerVersion)
	}
	for _, r := range c.Relations["pg_catalog"] {
		if !r.Builtin {
			t.Errorf("%s is not marked built-in", r.QualifiedName())
		}
	}
	b := EmbeddedBuiltins()
	if b.ServerVersion != c.ServerVersion {
		t.Errorf("EmbeddedBuiltins().ServerVersion = %d, want %d", b.ServerVersion, c.ServerVersion)
	}
	for _, sig := range []string{"f:information_schema._pg_expandarray(2277)2249", "r:pg_catalog.pg_class:r", "t:pg_catalog.int4", "o:pg_catalog.=(23,23)16", "c:23>20"} {
		if !b.Signatures[sig] {
			t.Errorf("the embedded built-in list lacks %s", sig)
		}
	}
	if len(c.UserOperators)+len(c.UserTypes)+len(c.UserCasts) != 0 {
		t.Errorf("the snapshot holds objects that are not built-in: %v %v %v", c.UserOperators, c.UserTypes, c.UserCasts)
	}
}

// TestBuiltinIndependent checks each Builtin() is a copy: additions and changes to one are invisible to
// the next, down to the relations' column slices.
func TestBuiltinIndependent(t *testing.T) {
	a := Builtin()
	a.Relations["public"] = map[string]*Relation{"x": {Schema: "public", Name: "x", Tenant: -1}}
	a.Relation("pg_catalog", "pg_class").Columns[0].Name = "changed"
	a.Relation("pg_catalog", "pg_class").Name = "changed"
	a.Types["public.email"] = testOIDText
	a.Operators[OpKey{"=", testOIDInt4, testOIDInt4}] = false
	a.Functions["pg_catalog"]["lower"].Leakproof = true
	a.BinaryCoercible[testOIDText] = testOIDVarchar
	a.SearchPath[1] = "changed"

	b := Builtin()
	if b.Relation("public", "x") != nil {
		t.Error("a relation added to one Builtin() shows in the next")
	}
	if pgClass := b.Relation("pg_catalog", "pg_class"); pgClass.Name != "pg_class" || pgClass.Columns[0].Name != "oid" {
		t.Errorf("a change to one Builtin()'s pg_class shows in the next: %q, first column %q", pgClass.Name, pgClass.Columns[0].Name)
	}
	if _, ok := b.Types["public.email"]; ok {
		t.Error("a type added to one Builtin() shows in the next")
	}
	if !b.Operators[OpKey{"=", testOIDInt4, testOIDInt4}] {
		t.Error("an operator changed in one Builtin() shows in the next")
	}
	if b.Function("pg_catalog", "lower").Leakproof {
		t.Error("a function changed in one Builtin() shows in the next")
	}
	if _, ok := b.BinaryCoercible[testOIDText]; ok {
		t.Error("a cast added to one Builtin() shows in the next")
	}
	if b.SearchPath[1] != "public" {
		t.Error("a change to one Builtin()'s search path shows in the next")
	}
}

// TestMarshalCatalog checks the snapshot encoding round-trips and is deterministic, which is what
// makes a regenerated snapshot byte-identical.
func TestMarshalCatalog(t *testing.T) {
	c := &Catalog{
		Relations: map[string]map[string]*Relation{
			"public": {
				"orders": {Schema: "public", Name: "orders", Kind: KindTable, Tenant: 0,
					Columns:    []Column{{"workspace_id", testOIDText}, {"id", testOIDInt8}},
					UniqueKeys: [][]string{{"workspace_id", "id"}}},
				"plans": {Schema: "public", Name: "plans", Kind: KindTable, Tenant: -1, Global: true, WritableGlobal: true,
					Columns: []Column{{"id", testOIDInt4}}},
				"s": {Schema: "public", Name: "s", Kind: KindSequence, Tenant: -1},
			},
			"other": {"v": {Schema: "other", Name: "v", Kind: KindView, Tenant: -1, Reads: []string{"column:x", "public.t"}, Calls: []string{"pg_catalog.lower"}}},
		},
		SearchPath: []string{"pg_catalog", "public"},
		Operators: map[OpKey]bool{
			{"=", testOIDInt4, testOIDInt4}: true, {"=", testOIDNumeric, testOIDNumeric}: false, {"<", testOIDInt4, testOIDInt4}: true,
		},
		Functions: map[string]map[string]*Function{
			"pg_catalog": {"lower": {Schema: "pg_catalog", Name: "lower"}, "int4eq": {Schema: "pg_catalog", Name: "int4eq", Leakproof: true, Immutable: true}},
		},
		OperatorResults:    map[OpKey]uint32{{"=", testOIDInt4, testOIDInt4}: 16},
		ImmutableOperators: map[OpKey]bool{{"=", testOIDInt4, testOIDInt4}: true},
		Casts:              map[CastKey]CastInfo{{testOIDInt4, testOIDNumeric}: {Immutable: true}, {testOIDVarchar, testOIDText}: {Immutable: true, Leakproof: true}},
		Types:              map[string]uint32{"int4": testOIDInt4, "pg_catalog.int4": testOIDInt4, "text": testOIDText},
		BinaryCoercible:    map[uint32]uint32{testOIDVarchar: testOIDText, testOIDInt4: testOIDOid},
		ServerVersion:      15,
		UserOperators:      map[string][]UserOperator{"%": {{Function: "public.similarity_op", Left: testOIDText, Right: testOIDText}}},
		UserTypes: map[string]*UserType{"public.citext": {Input: "public.citextin"}, "public.status": {Enum: true},
			"public.email": {Calls: []string{"pg_catalog.lower"}, Over: []string{"public.citext"}}},
		UserCasts: map[CastKey]string{{testOIDInt4, testOIDText}: "public.evil"},
		Shards:    map[string]string{"public.orders_102008": "public.orders"},
		Builtins:  &Builtins{ServerVersion: 15, Signatures: map[string]bool{"f:pg_catalog.lower(25)25": true, "t:pg_catalog.int4": true}},
	}
	c.Relations["public"]["plans"].Builtin = true
	c.Functions["pg_catalog"]["lower"].Builtin = true
	data, err := MarshalCatalog(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := MarshalCatalog(c.clone())
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(data) {
			t.Fatalf("MarshalCatalog is not deterministic:\n%s\n%s", data, again)
		}
	}
	got, err := UnmarshalCatalog(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	for _, bad := range []string{`{"format": 2}`, `{"format": 3, "relations": [{"schema": "s", "name": "r", "kind": "r", "tenant": 3}]}`, `[`} {
		if _, err := UnmarshalCatalog([]byte(bad)); err == nil {
			t.Errorf("UnmarshalCatalog(%s) succeeded, want an error", bad)
		}
	}
}
