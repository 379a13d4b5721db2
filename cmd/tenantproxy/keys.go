package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/config"
)

func newKeysCommand(e env) *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Create and hash workspace API keys"}

	var workspace, configPath string
	newCmd := &cobra.Command{
		Use:   "new --workspace <slug>",
		Short: "Print a fresh API key and the verifier to put in the config",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if workspace == "" {
				return errors.New("--workspace is required")
			}
			salt, iterations, err := keyFactors(configPath, workspace)
			if err != nil {
				return err
			}
			key, err := auth.NewKey()
			if err != nil {
				return err
			}
			v, err := auth.HashKey(key, salt, iterations)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "# API key of workspace %q. Give it to the workspace's application now:\n"+
				"# tenantproxy keeps only the verifier, and the key cannot be recovered from it.\n"+
				"key: %s\n"+
				"# Add the verifier to the workspace's keys in the config:\n"+
				"#   - slug: %s\n"+
				"#     keys: [%q]\n"+
				"verifier: %s\n", workspace, key, workspace, v.String(), v.String())
			return nil
		},
	}
	newCmd.Flags().StringVar(&workspace, "workspace", "", "slug of the workspace the key is for")
	newCmd.Flags().StringVar(&configPath, "config", "", "config file; when the workspace already has keys there, "+
		"the new key reuses their salt so both work during a rotation")

	var hashWorkspace, hashConfig string
	hashCmd := &cobra.Command{
		Use:   "hash < key",
		Short: "Print the verifier of an existing API key read from standard input",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			key := strings.TrimRight(line, "\r\n")
			if key == "" {
				if err != nil {
					return fmt.Errorf("reading the key from standard input: %w", err)
				}
				return errors.New("no key on standard input")
			}
			salt, iterations, err := keyFactors(hashConfig, hashWorkspace)
			if err != nil {
				return err
			}
			v, err := auth.HashKey(key, salt, iterations)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, v.String())
			return nil
		},
	}
	hashCmd.Flags().StringVar(&hashWorkspace, "workspace", "", "with --config: reuse this workspace's salt")
	hashCmd.Flags().StringVar(&hashConfig, "config", "", "config file whose workspace's salt to reuse")

	keys.AddCommand(newCmd, hashCmd)
	return keys
}

// keyFactors returns the salt and iteration count for a new verifier of workspace: those of its existing
// keys in the config at path, so old and new keys can be tried in one SCRAM exchange, or fresh ones.
func keyFactors(path, workspace string) ([]byte, int, error) {
	if path != "" && workspace != "" {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, 0, err
		}
		if w, ok := cfg.Workspace(workspace); ok {
			vs, err := w.Verifiers()
			if err != nil {
				return nil, 0, err
			}
			if len(vs) > 0 {
				return vs[0].Salt, vs[0].Iterations, nil
			}
		}
	}
	salt, err := auth.NewSalt()
	return salt, auth.DefaultIterations, err
}
