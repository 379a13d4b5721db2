package diagnostics

import "net/http"

// AdminHandler serves the operator HTTP endpoint: /healthz answers 200 while the process runs.
func AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
