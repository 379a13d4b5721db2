package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/tenant"
)

func verifier(t *testing.T, salt []byte) string {
	t.Helper()
	key, _ := auth.NewKey()
	v, err := auth.HashKey(key, salt, auth.DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	return v.String()
}

func TestParseFullExample(t *testing.T) {
	salt, _ := auth.NewSalt()
	v1, v2 := verifier(t, salt), verifier(t, salt)
	doc := `
listen: 127.0.0.1:7000
upstream: postgres://tenantproxy@127.0.0.1:5432/app
tenant:
  column: '"workspaceId"'
  setting: app.tenant
mode: verify
workspaces:
  - id: 7f3c2a
    slug: acme
    tier: enterprise
    region: eu
    permissions: [read]
    entitlements: [exports]
    keys: ["` + v1 + `", "` + v2 + `"]
diagnostics:
  log: /var/log/tp.jsonl
admin:
  listen: ""
tls: {cert_file: a.pem, key_file: a.key, require: true}
timeouts: {startup: 3s, drain: 1m}
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	col, _ := c.Tenant.ColumnName()
	if col != "workspaceId" {
		t.Errorf("column = %q, want workspaceId", col)
	}
	if c.Mode != ModeVerify || *c.Admin.Listen != "" || c.Timeouts.Startup != 3*time.Second || c.Timeouts.Drain != time.Minute {
		t.Errorf("fields not decoded: %+v", c)
	}
	w, ok := c.Workspace("acme")
	if !ok {
		t.Fatal("workspace acme missing")
	}
	want := &tenant.Context{ID: "7f3c2a", Slug: "acme", Permissions: []tenant.Permission{"read"},
		Entitlements: []string{"exports"}, Region: "eu", Tier: tenant.TierEnterprise}
	if diff := cmp.Diff(want, w.Context()); diff != "" {
		t.Errorf("Context() (-want +got):\n%s", diff)
	}
	if vs, err := w.Verifiers(); err != nil || len(vs) != 2 {
		t.Errorf("Verifiers() = %d, %v", len(vs), err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("upstream: postgres://u@localhost/app\nworkspaces: [{id: '1', slug: a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	col, _ := c.Tenant.ColumnName()
	got := []any{c.Listen, col, c.Tenant.Setting, c.Mode, c.Diagnostics.Log, *c.Admin.Listen,
		c.Timeouts.Startup, c.Timeouts.Drain, c.Workspaces[0].Tier, c.Workspaces[0].Permissions}
	want := []any{"127.0.0.1:6432", "workspace_id", "tenantproxy.workspace_id", ModeEnforce,
		"./tenantproxy-diagnostics.jsonl", "127.0.0.1:9187", 10 * time.Second, 30 * time.Second,
		tenant.TierStandard, []tenant.Permission{"read", "write"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestWorkspaceRoles checks upstream_roles: shared gives no roles, and per_workspace each workspace's own
// (its role, or tenantproxy_ and its slug) in its context and WorkspaceRoles.
func TestWorkspaceRoles(t *testing.T) {
	c, err := Parse([]byte("upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamRoles != RolesShared || c.WorkspaceRoles() != nil || c.Workspaces[0].Context().Role != "" {
		t.Errorf("shared: %q, %v, %q; want no roles", c.UpstreamRoles, c.WorkspaceRoles(), c.Workspaces[0].Context().Role)
	}
	c, err = Parse([]byte("upstream: postgres://u@h/app\nupstream_roles: per_workspace\nworkspaces: [{id: '1', slug: a}, {id: '2', slug: b, role: app_b}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"1": "tenantproxy_a", "2": "app_b"}, c.WorkspaceRoles()); diff != "" {
		t.Errorf("WorkspaceRoles (-want +got):\n%s", diff)
	}
	if got := c.Workspaces[1].Context().Role; got != "app_b" {
		t.Errorf("context role %q, want app_b", got)
	}
}

func TestValidateErrors(t *testing.T) {
	salt1, _ := auth.NewSalt()
	salt2, _ := auth.NewSalt()
	key, _ := auth.NewKey()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"no upstream", "workspaces: []", "upstream: required"},
		{"bad upstream", "upstream: 'postgres://a:b@host:notaport/db'", "upstream:"},
		{"unknown field", "upstream: postgres://u@h/app\nlisten_addr: x", "field listen_addr not found"},
		{"bad mode", "upstream: postgres://u@h/app\nmode: yolo", `mode: "yolo"`},
		{"bad column", "upstream: postgres://u@h/app\ntenant: {column: 'workspace id'}", "tenant.column"},
		{"unbalanced quotes", "upstream: postgres://u@h/app\ntenant: {column: '\"ws'}", "tenant.column"},
		{"bad setting", "upstream: postgres://u@h/app\ntenant: {setting: search_path}", "tenant.setting"},
		{"tls half", "upstream: postgres://u@h/app\ntls: {cert_file: a}", "set together"},
		{"tls require", "upstream: postgres://u@h/app\ntls: {require: true}", "tls.require"},
		{"dup slug", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a}, {id: '2', slug: a}]", "duplicate slug"},
		{"dup id", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a}, {id: '1', slug: b}]", "duplicate id"},
		{"no id", "upstream: postgres://u@h/app\nworkspaces: [{slug: a}]", "id is required"},
		{"no slug", "upstream: postgres://u@h/app\nworkspaces: [{id: '1'}]", "slug is required"},
		{"bad tier", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, tier: gold}]", `tier "gold"`},
		{"bad permission", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, permissions: [admin]}]", `permission "admin"`},
		{"plaintext key", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, keys: ['" + key + "']}]", "never plaintext keys"},
		{"mixed salts", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, keys: ['" + verifier(t, salt1) + "', '" + verifier(t, salt2) + "']}]", "share salt"},
		{"bad duration", "upstream: postgres://u@h/app\ntimeouts: {startup: soon}", "parsing YAML"},
		{"negative statement timeout", "upstream: postgres://u@h/app\ntimeouts: {statement: -1s}", "timeouts: must not be negative"},
		{"denied extension", "upstream: postgres://u@h/app\nallowed_extensions: [citext, citus]", `allowed_extensions: "citus"`},
		{"two admin tokens", "upstream: postgres://u@h/app\nadmin: {token: a, token_file: /x}", "token or token_file"},
		{"bad limit tier", "upstream: postgres://u@h/app\nlimits: {gold: {max_connections: 1}}", `limits: "gold"`},
		{"negative limit", "upstream: postgres://u@h/app\nlimits: {free: {statements_per_second: -1}}", "limits.free: statements_per_second"},
		{"bad upstream_roles", "upstream: postgres://u@h/app\nupstream_roles: each", `upstream_roles: "each"`},
		{"role without per_workspace", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, role: r}]", "upstream_roles is not per_workspace"},
		{"shared role", "upstream: postgres://u@h/app\nupstream_roles: per_workspace\nworkspaces: [{id: '1', slug: a, role: r}, {id: '2', slug: b, role: r}]", "each workspace needs its own"},
		{"login as role", "upstream: postgres://u@h/app\nupstream_roles: per_workspace\nworkspaces: [{id: '1', slug: a, role: u}]", "each workspace needs its own"},
		{"reserved role", "upstream: postgres://u@h/app\nupstream_roles: per_workspace\nworkspaces: [{id: '1', slug: a, role: pg_monitor}]", "reserved"},
		{"long default role", "upstream: postgres://u@h/app\nupstream_roles: per_workspace\nworkspaces: [{id: '1', slug: " + strings.Repeat("s", 60) + "}]", "set a shorter role"},
		{"negative statement memory", "upstream: postgres://u@h/app\nlimits: {free: {statement_memory: -1}}", "limits.free: statement_memory"},
		{"huge statement limit", "upstream: postgres://u@h/app\nmax_statement_bytes: 2000000000", "max_statement_bytes"},
		{"negative override", "upstream: postgres://u@h/app\nworkspaces: [{id: '1', slug: a, limits: {max_connections: -2}}]", `workspace "a": limits: max_connections`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		admin Admin
		want  string
	}{{Admin{}, ""}, {Admin{Token: "inline"}, "inline"}, {Admin{TokenFile: file}, "from-file"}} {
		if got, err := tc.admin.AdminToken(); err != nil || got != tc.want {
			t.Errorf("AdminToken(%+v) = %q, %v; want %q", tc.admin, got, err, tc.want)
		}
	}
	if _, err := (&Admin{TokenFile: filepath.Join(t.TempDir(), "missing")}).AdminToken(); err == nil {
		t.Error("AdminToken of a missing file succeeded")
	}
}

func TestLimitFor(t *testing.T) {
	c, err := Parse([]byte(`
upstream: postgres://u@h/app
limits:
  free: {max_connections: 2}
  enterprise: {statements_per_second: 10000}
workspaces:
  - {id: '1', slug: a, tier: free}
  - {id: '2', slug: b, tier: free, limits: {statements_per_second: 5, max_connections: 0, statement_memory: 1000}}
  - {id: '3', slug: c}
  - {id: '4', slug: d, tier: enterprise}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Limit{
		"a": {MaxConnections: 2, StatementsPerSecond: DefaultLimits[tenant.TierFree].StatementsPerSecond, StatementMemory: 64 << 20},
		"b": {MaxConnections: 0, StatementsPerSecond: 5, StatementMemory: 1000},
		"c": DefaultLimits[tenant.TierStandard],
		"d": {MaxConnections: 0, StatementsPerSecond: 10000, StatementMemory: 1 << 30},
	}
	for _, w := range c.Workspaces {
		if got := c.LimitFor(w); got != want[w.Slug] {
			t.Errorf("LimitFor(%s) = %+v, want %+v", w.Slug, got, want[w.Slug])
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tp.yaml")
	if err := os.WriteFile(path, []byte("upstream: postgres://u@h/app\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path + ".missing"); err == nil {
		t.Fatal("loading a missing file succeeded")
	}
}
