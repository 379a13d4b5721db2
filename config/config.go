package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/tenant"
)

// Mode says what the proxy does with statements.
type Mode string

// The modes.
const (
	// ModeEnforce rewrites every statement so it only touches the workspace's rows, and refuses what it
	// cannot scope.
	ModeEnforce Mode = "enforce"
	// ModeVerify rewrites nothing and refuses statements that the application did not scope itself.
	ModeVerify Mode = "verify"
	// ModeAudit forwards statements unchanged and reports those enforce would have changed or refused.
	ModeAudit Mode = "audit"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address clients connect to. Default "127.0.0.1:6432".
	Listen string `yaml:"listen"`
	// Upstream is the pgx/libpq connection string of the real database (URL or key=value form). Its user
	// should be a dedicated role that is neither superuser nor owner of the tenant tables; its password may
	// come from the string, PGPASSWORD or a pgpass file. Its database is the only one clients may name.
	// Required.
	Upstream string `yaml:"upstream"`
	// UpstreamRoles is shared (every session runs as the upstream role) or per_workspace: each session
	// runs as its workspace's own role (the workspace's role, by default "tenantproxy_" + slug), set in
	// the startup packet, so the role is the session's from its first statement and RESET ROLE, RESET ALL
	// and DISCARD ALL return to it. The upstream role must be a member of each (`tenantproxy provision`
	// creates them, with the tenant setting as the role's default, which is how a Citus worker learns a
	// session's workspace). Default shared.
	UpstreamRoles UpstreamRoles `yaml:"upstream_roles"`
	// Tenant says how workspaces' rows are told apart.
	Tenant Tenant `yaml:"tenant"`
	// Mode is enforce, verify or audit, for workspaces that do not set their own. Default enforce.
	Mode Mode `yaml:"mode"`
	// GlobalTables are shared reference tables without the tenant column that every workspace may read,
	// as "name" (resolved through the search path) or "schema.name". Default none.
	GlobalTables []string `yaml:"global_tables"`
	// WritableGlobalTables are global tables every workspace may also write. Default none.
	WritableGlobalTables []string `yaml:"writable_global_tables"`
	// AllowedFunctions are user-defined functions statements may call, as "schema.name" or "name":
	// anything initdb did not create, extension members and objects in pg_catalog included.
	// User-defined functions can read any row, so none is allowed by default.
	AllowedFunctions []string `yaml:"allowed_functions"`
	// AllowedExtensions are extensions all of whose functions (and so operators and types) statements may
	// use, for ones that compute on their arguments (citext, pg_trgm, uuid-ossp, hstore). Those whose
	// functions run SQL or read relations by name (rewrite.DeniedExtensions: citus, dblink, ...) are
	// refused here. Default none.
	AllowedExtensions []string `yaml:"allowed_extensions"`
	// DeniedFunctions are built-in functions to refuse in addition to tenantproxy's denylist (see the
	// README); a trailing * matches a prefix. Default none.
	DeniedFunctions []string `yaml:"denied_functions"`
	// MaxStatementBytes refuses statement texts longer than this (statement_too_large) before they are
	// read into memory, at most 1 GiB (PostgreSQL's message limit). Default 64 MiB: no ordinary
	// application's statement, an 8 MB JSON document included, comes near it.
	MaxStatementBytes int `yaml:"max_statement_bytes"`
	// Catalog configures how the proxy reads the upstream catalog.
	Catalog Catalog `yaml:"catalog"`
	// RLS says row-level security is part of the deployment: isolation checks then require it, with a
	// policy on the tenant setting, on every tenant table (`tenantproxy rls` prints the SQL). Default false.
	RLS bool `yaml:"rls"`
	// Limits are the per-workspace limits of each tier; a workspace's own limits override them.
	// Default: see DefaultLimits.
	Limits map[tenant.Tier]Limits `yaml:"limits"`
	// Workspaces are the tenants allowed to connect.
	Workspaces []Workspace `yaml:"workspaces"`
	// Diagnostics configures what the proxy reports.
	Diagnostics Diagnostics `yaml:"diagnostics"`
	// Admin configures the HTTP endpoint for health checks.
	Admin Admin `yaml:"admin"`
	// TLS configures TLS between clients and the proxy.
	TLS TLS `yaml:"tls"`
	// Timeouts bound the phases of a connection's life.
	Timeouts Timeouts `yaml:"timeouts"`
}

// UpstreamRoles says which database role a workspace's sessions run as.
type UpstreamRoles string

// The upstream role modes.
const (
	RolesShared       UpstreamRoles = "shared"
	RolesPerWorkspace UpstreamRoles = "per_workspace"
)

// Catalog configures the catalog reader.
type Catalog struct {
	// Refresh is how often the proxy rereads the upstream catalog (tables, views, functions). It is also
	// reread on SIGHUP and when a statement names a relation the proxy does not know. Default 60s.
	Refresh time.Duration `yaml:"refresh"`
	// RefusedRelations are the system catalogs statements may not read, as "schema.name" with an optional
	// trailing *. Setting it replaces the default list, which the README documents. Default: that list.
	RefusedRelations []string `yaml:"refused_relations"`
}

// Tenant names the tenant column and the session setting that carries the workspace id upstream.
type Tenant struct {
	// Column is the tenant column, written as an SQL identifier: workspace_id, or "workspaceId" (with the
	// double quotes) for a case-sensitive name; unquoted names fold to lower case as in PostgreSQL.
	// Default workspace_id.
	Column string `yaml:"column"`
	// Setting is the custom setting (class.name) the proxy sets to the workspace id on every upstream
	// session, for row-level security policies and triggers. Default tenantproxy.workspace_id.
	Setting string `yaml:"setting"`
}

// Workspace is one tenant.
type Workspace struct {
	// ID is the value of the tenant column for this workspace's rows, in its text form (text, uuid or
	// integer). Required, unique.
	ID string `yaml:"id"`
	// Slug is the workspace's name and the user name its clients connect with. Required, unique.
	Slug string `yaml:"slug"`
	// Tier is free, standard or enterprise. Default standard.
	Tier tenant.Tier `yaml:"tier"`
	// Region is informational (reported in logs and diagnostics). Default "".
	Region string `yaml:"region"`
	// Permissions are read, write and explain. Default [read, write]. explain allows EXPLAIN (never
	// ANALYZE), whose plans are chosen from statistics over every workspace's rows: grant it only to
	// workspaces trusted to learn the shape of the shared tables.
	Permissions []tenant.Permission `yaml:"permissions"`
	// Entitlements are free-form feature names carried in the tenant context. Default none.
	Entitlements []string `yaml:"entitlements"`
	// Mode overrides the global mode for this workspace. Default: the global mode.
	Mode Mode `yaml:"mode"`
	// Limits override the limits of the workspace's tier, field by field. Default: none.
	Limits Limits `yaml:"limits"`
	// Role is the database role the workspace's sessions run as with upstream_roles: per_workspace.
	// Default "tenantproxy_" + slug; set only with per_workspace.
	Role string `yaml:"role"`
	// Keys are SCRAM-SHA-256 verifiers of the workspace's API keys (from `tenantproxy keys new` or
	// `tenantproxy keys hash`); never plaintext keys. Several keys allow rotation; they must share salt and
	// iteration count. A workspace without keys cannot connect.
	Keys []string `yaml:"keys"`
}

// Limits bound what one workspace may use, so that one busy workspace cannot starve the others. A nil
// field is unset: a workspace's falls back to its tier's, and a tier's to its default.
type Limits struct {
	// MaxConnections is how many client connections the workspace may have open at once; more are
	// refused with FATAL 53300. 0 is unlimited.
	MaxConnections *int `yaml:"max_connections"`
	// StatementsPerSecond is the sustained rate of statements (Query and Execute messages) the workspace
	// may run, with bursts of up to one second's worth; more are refused with ErrorResponse 53400 and
	// not run. 0 is unlimited.
	StatementsPerSecond *float64 `yaml:"statements_per_second"`
	// StatementMemory bounds the bytes of statement text (Query and Parse messages) the proxy holds for
	// the workspace's sessions at once while it reads, parses and rewrites them, which costs a few times
	// their size; a message that would pass it is refused with ErrorResponse 53200 without being read
	// into memory. 0 is unlimited.
	StatementMemory *int64 `yaml:"statement_memory"`
}

// Limit is a resolved Limits: every field set. 0 is unlimited.
type Limit struct {
	MaxConnections      int
	StatementsPerSecond float64
	StatementMemory     int64
}

// DefaultLimits are the limits of tiers the configuration does not set: free workspaces get a small
// share; standard ones (the tier of workspaces that name none) room for a connection pool and no rate
// limit, so that a configuration written before limits existed keeps working under load; enterprise ones
// no limits.
var DefaultLimits = map[tenant.Tier]Limit{
	tenant.TierFree:       {MaxConnections: 5, StatementsPerSecond: 50, StatementMemory: 64 << 20},
	tenant.TierStandard:   {MaxConnections: 100, StatementsPerSecond: 0, StatementMemory: 256 << 20},
	tenant.TierEnterprise: {MaxConnections: 0, StatementsPerSecond: 0, StatementMemory: 1 << 30},
}

// LimitFor returns the workspace's limits: its own fields, else its tier's, else the tier's defaults.
func (c *Config) LimitFor(w Workspace) Limit {
	l := DefaultLimits[w.Tier]
	for _, o := range []Limits{c.Limits[w.Tier], w.Limits} {
		if o.MaxConnections != nil {
			l.MaxConnections = *o.MaxConnections
		}
		if o.StatementsPerSecond != nil {
			l.StatementsPerSecond = *o.StatementsPerSecond
		}
		if o.StatementMemory != nil {
			l.StatementMemory = *o.StatementMemory
		}
	}
	return l
}

func (l Limits) validate(where string, bad func(string, ...any)) {
	if l.MaxConnections != nil && *l.MaxConnections < 0 {
		bad("%s: max_connections must not be negative", where)
	}
	if l.StatementsPerSecond != nil && *l.StatementsPerSecond < 0 {
		bad("%s: statements_per_second must not be negative", where)
	}
	if l.StatementMemory != nil && *l.StatementMemory < 0 {
		bad("%s: statement_memory must not be negative", where)
	}
}

// Diagnostics configures the diagnostics event log.
type Diagnostics struct {
	// Log is the JSON-lines file refusals and alerts are appended to; "-" is standard output.
	// Default ./tenantproxy-diagnostics.jsonl.
	Log string `yaml:"log"`
	// Audit adds one event per executed statement: who accessed which workspace's data. Default false.
	Audit bool `yaml:"audit"`
	// VerifyInterval is how often the running proxy checks isolation (as `tenantproxy verify` does); 0
	// disables the check. Default 5m.
	VerifyInterval *time.Duration `yaml:"verify_interval"`
	// UnscopedAlertWindow is how often one statement shape of one workspace that enforce mode had to
	// scope (unscoped_query: the application relies on the proxy there) is written to the log: at most
	// once per window, with a count of how often it ran since the last time. Default 1m.
	UnscopedAlertWindow time.Duration `yaml:"unscoped_alert_window"`
}

// Admin configures the operator HTTP endpoint.
type Admin struct {
	// Listen is the address of the HTTP endpoint serving /healthz; "" disables it. Default "127.0.0.1:9187".
	Listen *string `yaml:"listen"`
	// Token, when set, is the bearer token every endpoint but /healthz and /readyz requires
	// ("Authorization: Bearer <token>"): /metrics names workspaces. TokenFile names a file holding it
	// instead (its content, without the trailing newline). Default "": no token.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// AdminToken returns the admin endpoint's bearer token: Token, or TokenFile's content.
func (a *Admin) AdminToken() (string, error) {
	if a.TokenFile == "" {
		return a.Token, nil
	}
	data, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	token := strings.TrimRight(string(data), "\r\n")
	if token == "" {
		return "", errors.New("admin.token_file: the file is empty")
	}
	return token, nil
}

// TLS configures TLS for client connections.
type TLS struct {
	// CertFile and KeyFile are PEM files; when both are set the proxy accepts SSLRequest. Default "": no TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Require refuses clients that do not use TLS. Default false.
	Require bool `yaml:"require"`
}

// Timeouts bound connection phases. Durations are Go durations such as "10s" or "1m30s".
type Timeouts struct {
	// Startup bounds the time from accept to ready-for-query, authentication and upstream connection
	// included. Default 10s.
	Startup time.Duration `yaml:"startup"`
	// Drain is how long a shutdown waits for sessions to reach an idle point before closing them; the
	// statements still running then are cancelled. Default 30s.
	Drain time.Duration `yaml:"drain"`
	// Statement bounds how long the server may work on a request before the proxy cancels it (a
	// CancelRequest: the client gets SQLSTATE 57014 and keeps its session), whatever the client set as
	// statement_timeout. Default 0: no limit.
	Statement time.Duration `yaml:"statement"`
}

// Default values of optional fields.
const (
	DefaultListen         = "127.0.0.1:6432"
	DefaultAdminListen    = "127.0.0.1:9187"
	DefaultColumn         = "workspace_id"
	DefaultSetting        = "tenantproxy.workspace_id"
	DefaultLog            = "./tenantproxy-diagnostics.jsonl"
	DefaultStartup        = 10 * time.Second
	DefaultDrain          = 30 * time.Second
	DefaultRefresh        = 60 * time.Second
	DefaultVerifyInterval = 5 * time.Minute
	DefaultAlertWindow    = time.Minute
	DefaultRolePrefix     = "tenantproxy_"
	maxIdentifierLength   = 63 // PostgreSQL's NAMEDATALEN-1
)

// Load reads, defaults and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, defaults and validates a configuration document. Unknown fields are errors, so a typo
// cannot silently disable a setting.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills every optional field left empty with its default.
func (c *Config) SetDefaults() {
	c.Listen = cmp.Or(c.Listen, DefaultListen)
	c.Tenant.Column = cmp.Or(c.Tenant.Column, DefaultColumn)
	c.Tenant.Setting = cmp.Or(c.Tenant.Setting, DefaultSetting)
	c.Mode = cmp.Or(c.Mode, ModeEnforce)
	c.UpstreamRoles = cmp.Or(c.UpstreamRoles, RolesShared)
	c.Diagnostics.Log = cmp.Or(c.Diagnostics.Log, DefaultLog)
	if c.Admin.Listen == nil {
		l := DefaultAdminListen
		c.Admin.Listen = &l
	}
	if c.Timeouts.Startup == 0 {
		c.Timeouts.Startup = DefaultStartup
	}
	if c.Timeouts.Drain == 0 {
		c.Timeouts.Drain = DefaultDrain
	}
	if c.Catalog.Refresh == 0 {
		c.Catalog.Refresh = DefaultRefresh
	}
	if c.Diagnostics.UnscopedAlertWindow == 0 {
		c.Diagnostics.UnscopedAlertWindow = DefaultAlertWindow
	}
	if c.Diagnostics.VerifyInterval == nil {
		d := DefaultVerifyInterval
		c.Diagnostics.VerifyInterval = &d
	}
	for i := range c.Workspaces {
		w := &c.Workspaces[i]
		w.Tier = cmp.Or(w.Tier, tenant.TierStandard)
		w.Mode = cmp.Or(w.Mode, c.Mode)
		if w.Permissions == nil {
			w.Permissions = []tenant.Permission{tenant.PermRead, tenant.PermWrite}
		}
		if c.UpstreamRoles == RolesPerWorkspace && w.Role == "" {
			w.Role = DefaultRolePrefix + w.Slug
		}
	}
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$`)

// WorkspaceIDs returns the ids of the configured workspaces.
func (c *Config) WorkspaceIDs() []string {
	ids := make([]string, len(c.Workspaces))
	for i, w := range c.Workspaces {
		ids[i] = w.ID
	}
	return ids
}

// WorkspaceRoles maps each workspace's id to its own role with upstream_roles: per_workspace; it is nil
// with shared.
func (c *Config) WorkspaceRoles() map[string]string {
	if c.UpstreamRoles != RolesPerWorkspace {
		return nil
	}
	roles := make(map[string]string, len(c.Workspaces))
	for _, w := range c.Workspaces {
		roles[w.ID] = w.Role
	}
	return roles
}

// Validate checks the whole configuration and reports every problem it finds at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %v", err)
	}
	var login string // the upstream role, which no workspace role may be
	if c.Upstream == "" {
		bad("upstream: required")
	} else if up, err := pgconn.ParseConfig(c.Upstream); err != nil {
		bad("upstream: %v", err)
	} else {
		login = up.User
	}
	if _, err := c.Tenant.ColumnName(); err != nil {
		bad("tenant.column: %v", err)
	}
	if !settingName.MatchString(c.Tenant.Setting) {
		bad("tenant.setting: %q is not a custom setting name of the form class.name", c.Tenant.Setting)
	}
	if !validMode(c.Mode) {
		bad("mode: %q is not enforce, verify or audit", c.Mode)
	}
	if c.UpstreamRoles != RolesShared && c.UpstreamRoles != RolesPerWorkspace {
		bad("upstream_roles: %q is not shared or per_workspace", c.UpstreamRoles)
	}
	if c.Catalog.Refresh < time.Second {
		bad("catalog.refresh: must be at least 1s")
	}
	if c.MaxStatementBytes < 0 || c.MaxStatementBytes > 1<<30 {
		bad("max_statement_bytes: must be at most 1073741824 (1 GiB); 0 is the default")
	}
	for _, name := range slices.Concat(c.GlobalTables, c.WritableGlobalTables, c.AllowedFunctions) {
		if parts := strings.Split(name, "."); len(parts) > 2 || slices.Contains(parts, "") {
			bad("%q is not a name or schema.name", name)
		}
	}
	for _, ext := range c.AllowedExtensions {
		if slices.Contains(rewrite.DeniedExtensions, ext) {
			bad("allowed_extensions: %q runs SQL or reads relations by name; allow its functions one by one in allowed_functions, if at all", ext)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file must be set together")
	}
	if c.TLS.Require && c.TLS.CertFile == "" {
		bad("tls.require: needs cert_file and key_file")
	}
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		bad("admin: set token or token_file, not both")
	}
	if c.Admin.Listen != nil && *c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(*c.Admin.Listen); err != nil {
			bad("admin.listen: %v", err)
		}
	}
	if c.Diagnostics.UnscopedAlertWindow < 0 {
		bad("diagnostics.unscoped_alert_window: must not be negative")
	}
	if c.Diagnostics.VerifyInterval != nil && *c.Diagnostics.VerifyInterval < 0 {
		bad("diagnostics.verify_interval: must not be negative")
	}
	if c.Timeouts.Startup < 0 || c.Timeouts.Drain < 0 || c.Timeouts.Statement < 0 {
		bad("timeouts: must not be negative")
	}

	for tier, l := range c.Limits {
		if _, ok := DefaultLimits[tier]; !ok {
			bad("limits: %q is not free, standard or enterprise", tier)
		}
		l.validate(fmt.Sprintf("limits.%s", tier), bad)
	}

	slugs, ids, roles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, w := range c.Workspaces {
		where := fmt.Sprintf("workspaces[%d]", i)
		if w.Slug != "" {
			where = fmt.Sprintf("workspace %q", w.Slug)
		}
		switch {
		case w.Slug == "":
			bad("%s: slug is required", where)
		case len(w.Slug) > maxIdentifierLength || strings.ContainsRune(w.Slug, 0):
			bad("%s: slug must be 1-%d bytes without NUL", where, maxIdentifierLength)
		case slugs[w.Slug]:
			bad("%s: duplicate slug", where)
		}
		slugs[w.Slug] = true
		switch {
		case w.ID == "" || strings.ContainsRune(w.ID, 0):
			bad("%s: id is required and must not contain NUL", where)
		case ids[w.ID]:
			bad("%s: duplicate id %q", where, w.ID)
		case slices.Contains(canaryIDs, w.ID):
			bad("%s: id %q is reserved for tenantproxy's isolation canary", where, w.ID)
		}
		ids[w.ID] = true
		switch {
		case w.Role == "":
		case c.UpstreamRoles != RolesPerWorkspace:
			bad("%s: role is set but upstream_roles is not per_workspace", where)
		case len(w.Role) > maxIdentifierLength || strings.ContainsRune(w.Role, 0):
			bad("%s: role %q must be 1-%d bytes without NUL (set a shorter role)", where, w.Role, maxIdentifierLength)
		case roles[w.Role] || w.Role == login:
			bad("%s: role %q is another workspace's or the upstream role: each workspace needs its own", where, w.Role)
		case reservedRole(w.Role):
			bad("%s: role %q is reserved by PostgreSQL", where, w.Role)
		}
		roles[w.Role] = true
		if !validMode(w.Mode) {
			bad("%s: mode %q is not enforce, verify or audit", where, w.Mode)
		}
		if !slices.Contains([]tenant.Tier{tenant.TierFree, tenant.TierStandard, tenant.TierEnterprise}, w.Tier) {
			bad("%s: tier %q is not free, standard or enterprise", where, w.Tier)
		}
		for _, p := range w.Permissions {
			if p != tenant.PermRead && p != tenant.PermWrite && p != tenant.PermExplain {
				bad("%s: permission %q is not read, write or explain", where, p)
			}
		}
		if _, err := w.Verifiers(); err != nil {
			bad("%s: %v", where, err)
		}
		w.Limits.validate(where+": limits", bad)
	}
	return errors.Join(errs...)
}

// reservedRole reports role names PostgreSQL keeps for itself: pg_* roles and the keywords SET ROLE
// reads as something other than a role.
func reservedRole(name string) bool {
	return strings.HasPrefix(name, "pg_") || slices.Contains([]string{"public", "none", "current_user", "session_user", "current_role"}, strings.ToLower(name))
}

// canaryIDs are the ids of the workspace that owns no rows, which isolation checks count as
// (diagnostics.CanaryID).
var canaryIDs = []string{"tenantproxy-canary", "ffffffff-ffff-4fff-bfff-ffffffffffff", "-32768"}

func validMode(m Mode) bool { return slices.Contains([]Mode{ModeEnforce, ModeVerify, ModeAudit}, m) }

// ColumnName returns the tenant column's name as stored in the catalog: the text between the double quotes
// of a quoted identifier, or the lower-cased text of an unquoted one.
func (t Tenant) ColumnName() (string, error) {
	return identifier(t.Column)
}

var regularIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

func identifier(s string) (string, error) {
	var name string
	if inner, ok := strings.CutPrefix(s, `"`); ok {
		inner, ok = strings.CutSuffix(inner, `"`)
		if !ok || strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			return "", fmt.Errorf("%s: unbalanced double quotes", s)
		}
		name = strings.ReplaceAll(inner, `""`, `"`)
	} else {
		if !regularIdentifier.MatchString(s) {
			return "", fmt.Errorf("%q is not a valid identifier (quote it with double quotes)", s)
		}
		name = strings.ToLower(s)
	}
	if name == "" || len(name) > maxIdentifierLength || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%s: identifier must be 1-%d bytes without NUL", s, maxIdentifierLength)
	}
	return name, nil
}

// Policy returns the rewriter's policy.
func (c *Config) Policy() rewrite.Policy {
	column, _ := c.Tenant.ColumnName()
	return rewrite.Policy{
		TenantColumn:      column,
		TenantSetting:     c.Tenant.Setting,
		AllowedFunctions:  c.AllowedFunctions,
		AllowedExtensions: c.AllowedExtensions,
		DeniedFunctions:   c.DeniedFunctions,
		RefusedRelations:  c.Catalog.RefusedRelations,
		MaxStatementBytes: c.MaxStatementBytes,
	}
}

// Verifiers parses the workspace's key verifiers and checks they can be tried in one SCRAM exchange.
func (w Workspace) Verifiers() ([]auth.Verifier, error) {
	vs := make([]auth.Verifier, 0, len(w.Keys))
	for i, k := range w.Keys {
		v, err := auth.ParseVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w (keys hold verifiers from `tenantproxy keys new`, never plaintext keys)", i, err)
		}
		vs = append(vs, v)
	}
	if !auth.SameFactors(vs) {
		return nil, errors.New("keys must share salt and iteration count: create a rotation key with " +
			"`tenantproxy keys new --workspace <slug> --config <this file>`, which reuses them")
	}
	return vs, nil
}

// Context returns the tenant context of the workspace.
func (w Workspace) Context() *tenant.Context {
	return &tenant.Context{
		ID:           w.ID,
		Slug:         w.Slug,
		Permissions:  slices.Clone(w.Permissions),
		Entitlements: slices.Clone(w.Entitlements),
		Region:       w.Region,
		Tier:         w.Tier,
		Role:         w.Role,
	}
}

// Workspace returns the workspace with the given slug.
func (c *Config) Workspace(slug string) (Workspace, bool) {
	for _, w := range c.Workspaces {
		if w.Slug == slug {
			return w, true
		}
	}
	return Workspace{}, false
}
