package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// env is what commands get from the process, so tests can run them in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// stopSignals restores default signal handling, so a second Ctrl-C kills a process that is draining.
	stopSignals func()
}

// run executes the command line args.
func run(ctx context.Context, stopSignals func(), args []string) error {
	root := newRootCommand(env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stopSignals: stopSignals})
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func newRootCommand(e env) *cobra.Command {
	root := &cobra.Command{
		Use:           "tenantproxy",
		Short:         "A PostgreSQL proxy that scopes every statement to the client's workspace",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.AddCommand(newServeCommand(e), newKeysCommand(e), newDemoCommand(e), newCheckCommand(e), newReportCommand(e), newVerifyCommand(e), newRLSCommand(e), newProvisionCommand(e))
	return root
}

// newLogger returns the JSON logger of long-running commands, writing to w.
func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), level)
	return zap.New(core)
}
