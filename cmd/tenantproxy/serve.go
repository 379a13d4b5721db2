package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/proxy"
)

func newServeCommand(e env) *cobra.Command {
	var path, listen, upstream, cpuProfile string
	var debug bool
	cmd := &cobra.Command{
		Use:   "serve --config tenantproxy.yaml",
		Short: "Run the proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			load := func() (*config.Config, error) {
				cfg, err := config.Load(path)
				if err != nil {
					return nil, err
				}
				if listen != "" || upstream != "" {
					cfg.Listen = cmp.Or(listen, cfg.Listen)
					cfg.Upstream = cmp.Or(upstream, cfg.Upstream)
					if err := cfg.Validate(); err != nil {
						return nil, err
					}
				}
				return cfg, nil
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			level := zapcore.InfoLevel
			if debug {
				level = zapcore.DebugLevel
			}
			log := newLogger(e.stderr, level)
			defer func() { _ = log.Sync() }()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			return serve(cmd.Context(), e, cfg, log, serveOptions{reload: load})
		},
	}
	cmd.Flags().StringVar(&path, "config", "tenantproxy.yaml", "configuration file")
	cmd.Flags().StringVar(&listen, "listen", "", "address to accept clients on (overrides the config's listen)")
	cmd.Flags().StringVar(&upstream, "upstream", "", "upstream connection string (overrides the config's upstream)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the proxy stops (for go tool pprof)")
	return cmd
}

// serveOptions are the optional parts of serve.
type serveOptions struct {
	// reload reads the configuration again, on SIGHUP; nil reloads only the catalog and the log.
	reload func() (*config.Config, error)
	// ready is called with the listening address once clients can connect.
	ready func(addr net.Addr)
}

// serve runs the proxy until ctx ends, then drains it.
func serve(ctx context.Context, e env, cfg *config.Config, log *zap.Logger, opts serveOptions) error {
	diag, err := diagnostics.Open(cfg.Diagnostics.Log)
	if err != nil {
		return err
	}
	defer func() { _ = diag.Close() }()

	metrics := diagnostics.NewMetrics()
	srv, err := proxy.New(cfg, proxy.Options{Logger: log, Diagnostics: diag, Metrics: metrics})
	if err != nil {
		return err
	}
	// Without a catalog every statement is refused; a proxy that cannot read it yet still starts, and
	// keeps trying, so that it comes up before its database does.
	loadCtx, cancel := context.WithTimeout(ctx, cfg.Timeouts.Startup)
	if err := srv.LoadCatalog(loadCtx); err != nil {
		log.Error("reading the catalog failed; statements are refused until it succeeds", zap.Error(err))
	}
	cancel()
	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go srv.RefreshCatalog(bgCtx, cfg.Catalog.Refresh)
	go srv.RunIsolationChecks(bgCtx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			reload(bgCtx, log, srv, diag, metrics, opts.reload)
		}
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening for clients: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	if addr := *cfg.Admin.Listen; addr != "" {
		adminLn, err := net.Listen("tcp", addr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listening for admin requests: %w", err)
		}
		ready := func() error {
			readyCtx, cancel := context.WithTimeout(bgCtx, 5*time.Second)
			defer cancel()
			return srv.Ready(readyCtx)
		}
		token, err := cfg.Admin.AdminToken()
		if err != nil {
			_ = srv.Close()
			return err
		}
		if host, _, _ := net.SplitHostPort(addr); token == "" && !isLoopback(host) {
			log.Warn("the admin endpoint listens beyond localhost without admin.token: anyone who reaches it reads /metrics, which names workspaces",
				zap.String("addr", addr))
		}
		handler := diagnostics.AdminHandler(diagnostics.AdminOptions{Metrics: metrics, Ready: ready, Token: token})
		admin := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- admin.Serve(adminLn) }()
		defer func() { _ = admin.Close() }()
		log.Info("admin endpoint listening", zap.Stringer("addr", adminLn.Addr()))
	}
	log.Info("tenantproxy listening", zap.Stringer("addr", ln.Addr()), zap.String("mode", string(cfg.Mode)),
		zap.Int("workspaces", len(cfg.Workspaces)))
	if opts.ready != nil {
		opts.ready(ln.Addr())
	}

	select {
	case err := <-errc:
		_ = srv.Close()
		return err
	case <-ctx.Done():
	}
	if e.stopSignals != nil {
		e.stopSignals() // a second signal now kills the process
	}
	log.Info("shutting down: draining sessions", zap.Duration("drain_timeout", cfg.Timeouts.Drain))
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Drain)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("shut down")
	return nil
}

// reload handles SIGHUP: it reopens the diagnostics log (for logrotate), and applies the configuration
// file again, or, without one, rereads the catalog. An invalid configuration is rejected and the running
// one kept.
func reload(ctx context.Context, log *zap.Logger, srv *proxy.Server, diag *diagnostics.Log, metrics *diagnostics.Metrics,
	load func() (*config.Config, error)) {
	if err := diag.Reopen(); err != nil {
		log.Error("SIGHUP: reopening the diagnostics log failed; writing to the old file", zap.Error(err))
	}
	if load == nil {
		log.Info("SIGHUP: reloading the catalog")
		srv.ReloadCatalog()
		return
	}
	log.Info("SIGHUP: reloading the configuration")
	cfg, err := load()
	if err != nil {
		metrics.Reloaded(false)
		log.Error("SIGHUP: the new configuration was rejected; the running one is kept", zap.Error(err))
		return
	}
	reloadCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Reload(reloadCtx, cfg); err != nil {
		log.Error("SIGHUP: the new configuration was rejected; the running one is kept", zap.Error(err))
	}
}

// isLoopback reports whether a listen host only accepts connections from this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
