// Package tenant defines Context, the identity a client connection carries once it has authenticated as a
// workspace. It is the one type that every stage of the pipeline shares: the proxy creates it, the rewriter
// scopes statements with it, and diagnostics report it. It lives in its own package so that rewrite and
// diagnostics can depend on it without depending on each other or on proxy.
package tenant
