// Command switchboard runs a switchboard node.
//
// With no flags it serves on 127.0.0.1:8080 from an embedded SQLite file
// under ./data and an in-process bus. Every setting is a flag or a
// SWITCHBOARD_* environment variable (flag name upper-cased, '-' as '_');
// flags win. `switchboard migrate` applies the store's migrations and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "serve") {
		cmd, args = args[0], args[1:]
	}
	m := NewMain()
	if err := m.ParseFlags(args, os.Getenv); err != nil {
		return err
	}
	if cmd == "migrate" {
		return m.Migrate(ctx)
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return m.Close()
}
