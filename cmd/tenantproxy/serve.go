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
	var path, listen, upstream string
	var debug bool
	cmd := &cobra.Command{
		Use:   "serve --config tenantproxy.yaml",
		Short: "Run the proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if listen != "" || upstream != "" {
				cfg.Listen = cmp.Or(listen, cfg.Listen)
				cfg.Upstream = cmp.Or(upstream, cfg.Upstream)
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			level := zapcore.InfoLevel
			if debug {
				level = zapcore.DebugLevel
			}
			log := newLogger(e.stderr, level)
			defer func() { _ = log.Sync() }()
			return serve(cmd.Context(), e, cfg, log, nil)
		},
	}
	cmd.Flags().StringVar(&path, "config", "tenantproxy.yaml", "configuration file")
	cmd.Flags().StringVar(&listen, "listen", "", "address to accept clients on (overrides the config's listen)")
	cmd.Flags().StringVar(&upstream, "upstream", "", "upstream connection string (overrides the config's upstream)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	return cmd
}

// serve runs the proxy until ctx ends, then drains it. ready, when not nil, is called with the listening
// address once clients can connect.
func serve(ctx context.Context, e env, cfg *config.Config, log *zap.Logger, ready func(addr net.Addr)) error {
	diag, err := diagnostics.Open(cfg.Diagnostics.Log)
	if err != nil {
		return err
	}
	defer func() { _ = diag.Close() }()

	srv, err := proxy.New(cfg, proxy.Options{Logger: log, Diagnostics: diag})
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
	refreshCtx, stopRefresh := context.WithCancel(context.Background())
	defer stopRefresh()
	go srv.RefreshCatalog(refreshCtx, cfg.Catalog.Refresh)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading the catalog")
			srv.ReloadCatalog()
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
		admin := &http.Server{Handler: diagnostics.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- admin.Serve(adminLn) }()
		defer func() { _ = admin.Close() }()
		log.Info("admin endpoint listening", zap.Stringer("addr", adminLn.Addr()))
	}
	log.Info("tenantproxy listening", zap.Stringer("addr", ln.Addr()), zap.String("mode", string(cfg.Mode)),
		zap.Int("workspaces", len(cfg.Workspaces)))
	if ready != nil {
		ready(ln.Addr())
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
