package tenant

import "slices"

// Permission names a kind of statement a workspace may run.
type Permission string

// The permissions a workspace can hold.
const (
	// PermRead allows statements that only read tenant data.
	PermRead Permission = "read"
	// PermWrite allows statements that change tenant data (INSERT, UPDATE, DELETE, MERGE, COPY FROM).
	PermWrite Permission = "write"
	// PermExplain allows EXPLAIN (never EXPLAIN ANALYZE). A plan is chosen from statistics over every
	// workspace's rows, so it reveals something of them.
	PermExplain Permission = "explain"
)

// Tier is a workspace's service tier; limits and reporting are keyed by it.
type Tier string

// The tiers a workspace can be on.
const (
	TierFree       Tier = "free"
	TierStandard   Tier = "standard"
	TierEnterprise Tier = "enterprise"
)

// Context is the authenticated identity of one client connection. It is immutable once built: the proxy
// shares one value between goroutines without locking.
type Context struct {
	// ID is the value stored in the tenant column for this workspace's rows (text, uuid or integer, always
	// carried as its text form).
	ID string
	// Slug is the workspace's name; clients use it as the PostgreSQL user name.
	Slug string
	// Permissions the workspace holds.
	Permissions []Permission
	// Entitlements are free-form feature flags from the configuration (for example "exports").
	Entitlements []string
	// Region is where the workspace's data lives, as configured (informational).
	Region string
	// Tier selects the workspace's limits.
	Tier Tier
	// Role is the database role the workspace's sessions run as, or "" when they run as the proxy's
	// upstream role (upstream_roles: shared).
	Role string
}

// Can reports whether the workspace holds permission p.
func (c *Context) Can(p Permission) bool {
	return slices.Contains(c.Permissions, p)
}

// Entitled reports whether the workspace has the named entitlement.
func (c *Context) Entitled(name string) bool {
	return slices.Contains(c.Entitlements, name)
}
