// Command tenantproxy is a PostgreSQL proxy that scopes every statement to the workspace a client
// authenticated as. Run `tenantproxy --help` for its commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, os.Args[1:]); err != nil {
		if !errors.Is(err, errRefused) && !errors.Is(err, errIsolation) { // the command printed why
			fmt.Fprintln(os.Stderr, "tenantproxy:", err)
		}
		os.Exit(1)
	}
}
