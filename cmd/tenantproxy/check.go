package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/internal/pgcatalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// errRefused makes check exit with status 1 after printing a refusal.
var errRefused = errors.New("refused")

func newCheckCommand(e env) *cobra.Command {
	var configPath, workspace, schemaPath, mode string
	cmd := &cobra.Command{
		Use:   `check --config tenantproxy.yaml --workspace <slug> [--schema schema.sql] "SQL"`,
		Short: "Show what the proxy does with a statement: the decision, the reason code and the rewritten SQL",
		Long: "check decides about a statement as the proxy would for the workspace, with the live catalog of the\n" +
			"config's upstream, or offline with --schema (a schema dump or migration file). It exits 0 when the\n" +
			"statement would be forwarded and 1 when it would be refused.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			w, ok := cfg.Workspace(workspace)
			if !ok {
				return fmt.Errorf("workspace %q is not in %s", workspace, configPath)
			}
			cat, err := checkCatalog(cmd.Context(), cfg, schemaPath, e.stderr)
			if err != nil {
				return err
			}
			in := rewrite.Input{SQL: args[0], Tenant: w.Context(), Mode: rewrite.Mode(w.Mode)}
			if mode != "" {
				in.Mode = rewrite.Mode(mode)
			}
			res, err := rewrite.New(cat, cfg.Policy()).Rewrite(in)
			printDecision(e.stdout, in, res, err)
			if err != nil {
				return errRefused
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "tenantproxy.yaml", "configuration file")
	cmd.Flags().StringVar(&workspace, "workspace", "", "slug of the workspace that sends the statement")
	cmd.Flags().StringVar(&schemaPath, "schema", "", "decide offline with the catalog of this SQL schema file instead of the upstream's")
	cmd.Flags().StringVar(&mode, "mode", "", "enforce, verify or audit (default: the workspace's mode)")
	_ = cmd.MarkFlagRequired("workspace")
	return cmd
}

// checkCatalog reads the catalog from the schema file, or from the upstream.
func checkCatalog(ctx context.Context, cfg *config.Config, schemaPath string, warn io.Writer) (*rewrite.Catalog, error) {
	column, _ := cfg.Tenant.ColumnName()
	var cat *rewrite.Catalog
	var warnings []string
	if schemaPath != "" {
		ddl, err := os.ReadFile(schemaPath)
		if err != nil {
			return nil, err
		}
		if cat, err = rewrite.CatalogFromDDL(string(ddl), column, rewrite.Builtin()); err != nil {
			return nil, fmt.Errorf("%s: %w", schemaPath, err)
		}
		warnings = cat.MarkGlobal(cfg.GlobalTables, cfg.WritableGlobalTables)
	} else {
		conn, err := pgx.Connect(ctx, cfg.Upstream)
		if err != nil {
			return nil, fmt.Errorf("connecting to the upstream to read its catalog (or use --schema): %w", err)
		}
		defer func() { _ = conn.Close(context.Background()) }()
		cat, warnings, err = pgcatalog.Load(ctx, conn, pgcatalog.Options{
			TenantColumn: column, Global: cfg.GlobalTables, WritableGlobal: cfg.WritableGlobalTables,
		})
		if err != nil {
			return nil, err
		}
	}
	for _, w := range warnings {
		fmt.Fprintln(warn, "warning:", w)
	}
	return cat, nil
}

// printDecision writes a decision for a human reader.
func printDecision(w io.Writer, in rewrite.Input, res *rewrite.Result, err error) {
	fmt.Fprintf(w, "workspace: %s (%s), mode %s\n", in.Tenant.Slug, in.Tenant.ID, in.Mode)
	var refusal *rewrite.Error
	if errors.As(err, &refusal) {
		fmt.Fprintf(w, "decision:  refused\nreason:    %s (SQLSTATE %s)\nmessage:   %s\n", refusal.Reason, refusal.Code, refusal.Error())
		if refusal.Position > 0 {
			fmt.Fprintf(w, "position:  %d\n", refusal.Position)
		}
		return
	}
	decision := "forwarded unchanged"
	switch {
	case res.Changed && res.Fenced:
		decision = "rewritten (fenced: a filter is not leakproof, so tenant rows are read before it)"
	case res.Changed:
		decision = "rewritten"
	}
	fmt.Fprintf(w, "decision:  %s\n", decision)
	if len(res.Relations) > 0 {
		fmt.Fprintf(w, "relations: %s\n", strings.Join(res.Relations, ", "))
	}
	for _, c := range res.Checks {
		fmt.Fprintf(w, "check:     $%d must be bound to the workspace's id\n", c.Index+1)
	}
	for _, a := range res.Alerts {
		fmt.Fprintf(w, "alert:     %s: %s\n", a.Reason, a.Text)
	}
	fmt.Fprintf(w, "sql:\n  %s\n", strings.ReplaceAll(res.SQL, "\n", "\n  "))
}
