package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/tenantproxy/tenantproxy/config"
	"github.com/tenantproxy/tenantproxy/diagnostics"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// errIsolation makes verify exit with status 1 after printing its findings.
var errIsolation = errors.New("isolation checks failed")

func newVerifyCommand(e env) *cobra.Command {
	var configPath, format string
	cmd := &cobra.Command{
		Use:   "verify --config tenantproxy.yaml",
		Short: "Check that the database and the rewriter keep workspaces isolated; exit 1 on a critical finding",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			cat, err := checkCatalog(cmd.Context(), cfg, "", e.stderr)
			if err != nil {
				return err
			}
			conn, err := pgx.Connect(cmd.Context(), cfg.Upstream)
			if err != nil {
				return fmt.Errorf("connecting to the upstream: %w", err)
			}
			defer func() { _ = conn.Close(cmd.Context()) }()
			findings, err := diagnostics.Verify(cmd.Context(), conn, diagnostics.VerifyOptions{
				Rewriter: rewrite.New(cat, cfg.Policy()), TenantSetting: cfg.Tenant.Setting, RLS: cfg.RLS,
				WorkspaceIDs: cfg.WorkspaceIDs(),
			})
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(findings); err != nil {
					return err
				}
			} else {
				printFindings(e, findings)
			}
			if diagnostics.Failed(findings) {
				return errIsolation
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "tenantproxy.yaml", "configuration file")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func printFindings(e env, findings []diagnostics.Finding) {
	if len(findings) == 0 {
		fmt.Fprintln(e.stdout, "No findings: isolation checks passed.")
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "severity\tcheck\trelation\tfinding")
	critical := 0
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Check, f.Relation, f.Message)
		if f.Severity == diagnostics.SeverityCritical {
			critical++
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "\n%d findings, %d critical.\n", len(findings), critical)
}

func newRLSCommand(e env) *cobra.Command {
	var configPath, schemaPath string
	cmd := &cobra.Command{
		Use:   "rls --config tenantproxy.yaml [--schema schema.sql]",
		Short: "Print SQL enabling row-level security on every tenant table, with a policy on the tenant setting",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			cat, err := checkCatalog(cmd.Context(), cfg, schemaPath, e.stderr)
			if err != nil {
				return err
			}
			fmt.Fprint(e.stdout, diagnostics.RLSScript(cat, cfg.Tenant.Setting))
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "tenantproxy.yaml", "configuration file")
	cmd.Flags().StringVar(&schemaPath, "schema", "", "use the tables of this SQL schema file instead of the upstream's")
	return cmd
}
