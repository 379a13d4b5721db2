package diagnostics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions are what the admin endpoint serves.
type AdminOptions struct {
	// Metrics are served on /metrics; nil serves none.
	Metrics *Metrics
	// Ready reports why the proxy cannot serve statements yet (upstream unreachable, catalog not loaded),
	// or nil when it can; nil means always ready.
	Ready func() error
}

// AdminHandler serves the operator HTTP endpoint: /healthz answers 200 while the process runs, /readyz
// 200 when the proxy can serve statements and 503 with the reason otherwise, and /metrics the
// Prometheus metrics.
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
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry(), promhttp.HandlerOpts{}))
	}
	return mux
}
