package diagnostics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions are what the admin endpoint serves.
type AdminOptions struct {
	// Metrics are served on /metrics; nil serves none.
	Metrics *Metrics
	// Ready reports why the proxy cannot serve statements yet (upstream unreachable, catalog not loaded),
	// or nil when it can; nil means always ready.
	Ready func() error
	// Token, when set, is the bearer token every endpoint but /healthz and /readyz requires.
	Token string
}

// AdminHandler serves the operator HTTP endpoint: /healthz answers 200 while the process runs, /readyz
// 200 when the proxy can serve statements and 503 with the reason otherwise, and /metrics the
// Prometheus metrics. With a token, everything but /healthz and /readyz answers 401 unless the request
// carries it as a bearer token.
func AdminHandler(opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", requireToken(opts.Token, promhttp.HandlerFor(opts.Metrics.Registry(), promhttp.HandlerOpts{})))
	}
	return mux
}

// requireToken wraps h so it answers 401 to requests without the bearer token, when token is set. The
// comparison is of SHA-256 digests in constant time: it reveals neither the token nor its length.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		digest := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(digest[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tenantproxy"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
