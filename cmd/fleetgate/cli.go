package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `fleetgate: MQTT and legacy HTTPS to Kafka gateway for vehicle terminals.

Usage:
  fleetgate [serve] [--config FILE]     run the gateway (no config: the development default)
  fleetgate rules check --config FILE   validate the configuration and every rule
  fleetgate version                     print version and build information
`

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "version":
		printVersion(stdout)
		return 0
	case "rules":
		return rules(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "fleetgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "fleetgate %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				fmt.Fprintf(w, "%s=%s\n", s.Key, s.Value)
			}
		}
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); none: the development default")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "fleetgate: %v\n", err)
		return 1
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "fleetgate: %v\n", err)
		return 1
	}
	defer log.Sync()
	// sarama logs through a package variable; set it once, here.
	// Its chatter (every metadata refresh) is debug-level for us.
	if stdlog, err := zap.NewStdLogAt(log.Named("sarama"), zapcore.DebugLevel); err == nil {
		sarama.Logger = stdlog
	}
	if *path == "" {
		log.Info("no --config given: running the development default (embedded Kafka, default rule)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g := gateway.New(cfg, log)
	if err := g.Start(ctx); err != nil {
		log.Error("fleetgate could not start", zap.Error(err))
		return 1
	}
	<-ctx.Done()
	stop() // a second signal now ends the process at once
	log.Info("shutting down: no new connections or messages; waiting for in-flight messages")
	sctx, cancel := context.WithTimeout(context.Background(), gateway.DrainTimeout(cfg))
	defer cancel()
	if err := g.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("shutdown was not clean", zap.Error(err))
	}
	log.Info("fleetgate stopped")
	return 0
}

func rules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintf(stderr, "fleetgate rules: want 'check'\n\n%s", usage)
		return 2
	}
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d rules valid\n", len(cfg.Rules))
	return 0
}

func newLogger(c config.LogConfig) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.Development = false
	}
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	// Hot error paths (a dead Kafka under load) log through the sampler:
	// the first 10 lines a second of each message, then one in 100.
	zc.Sampling = &zap.SamplingConfig{Initial: 10, Thereafter: 100}
	zc.DisableStacktrace = true
	return zc.Build()
}
