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
  fleetgate rules test [--config FILE] --topic T [--client-id ID] --payload JSON
                                        dry-run the rules on one message (no broker)
  fleetgate acl test [--config FILE] --principal P [--clientid C] --publish|--subscribe TOPIC
                                        ask the MQTT policy; prints allow/deny and the rule
  fleetgate config print [--config FILE]
                                        print the effective configuration, secrets masked
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
	case "acl":
		return acl(args, stdout, stderr)
	case "config":
		return configCmd(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "fleetgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// printVersion prints fleetgate's version, Go's, and the versions of the
// modules that decide its behaviour on the wire (mochi, sarama), from the
// build information the Go linker embeds. A module replaced by a directory
// (mochi: third_party/mochi) is shown as its required version, "patched",
// and the directory.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "fleetgate %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "no build information (not built with module support)")
		return
	}
	fmt.Fprintf(w, "go %s\n", bi.GoVersion)
	deps := map[string]string{}
	for _, d := range bi.Deps {
		v := d.Version
		if r := d.Replace; r != nil {
			v = r.Version
			if v == "" || v == "(devel)" { // replaced by a directory: mochi is our patched copy
				v = d.Version + " patched (" + r.Path + ")"
			}
		}
		deps[d.Path] = v
	}
	for _, m := range versionModules {
		v := deps[m]
		if v == "" {
			v = "(not linked)"
		}
		fmt.Fprintf(w, "%s %s\n", m, v)
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
			fmt.Fprintf(w, "%s=%s\n", s.Key, s.Value)
		}
	}
}

// versionModules are the modules `fleetgate version` names.
var versionModules = []string{
	"github.com/mochi-mqtt/server/v2",
	"github.com/IBM/sarama",
	"github.com/prometheus/client_golang",
	"github.com/spf13/viper",
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

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onSignals(ctx, cancel, log)
	hup, stopHangups := hangups()
	defer stopHangups()
	g := gateway.New(cfg, log)
	if err := g.Start(ctx); err != nil {
		log.Error("fleetgate could not start", zap.Error(err))
		return 1
	}
	waitReloads := reloadOnHangup(ctx, hup, g, log)
	<-ctx.Done()
	waitReloads()
	drain := gateway.DrainTimeout(cfg)
	log.Info("shutting down: not ready, listeners closed, new messages refused; waiting for in-flight messages",
		zap.Duration("drain_timeout", drain))
	sctx, scancel := context.WithTimeout(context.Background(), drain)
	defer scancel()
	if err := g.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("shutdown was not clean", zap.Error(err))
	}
	log.Info("fleetgate stopped")
	return 0
}

// onSignals cancels ctx (start the drain) on the first SIGINT or SIGTERM and
// exits the process at once on the second. Both are handled here rather
// than by restoring the default action after the first: as PID 1 in a
// container, a signal without a handler is ignored by the kernel. After the
// first signal it listens until the process exits.
func onSignals(ctx context.Context, cancel context.CancelFunc, log *zap.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		var s os.Signal
		select {
		case s = <-sigs:
		case <-ctx.Done(): // serve is returning without a signal
			signal.Stop(sigs)
			return
		}
		log.Info("signal received: draining; a second signal exits at once", zap.Stringer("signal", s))
		cancel()
		s = <-sigs
		log.Warn("second signal: exiting now; messages still in flight are not acknowledged and will be re-sent by their terminals",
			zap.Stringer("signal", s))
		_ = log.Sync()
		os.Exit(1)
	}()
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
	// Readable by people and parsed by every log pipeline.
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.EncoderConfig.EncodeDuration = zapcore.StringDurationEncoder
	// Hot error paths (a dead Kafka under load) log through the sampler:
	// the first 10 lines a second of each message, then one in 100.
	zc.Sampling = &zap.SamplingConfig{Initial: 10, Thereafter: 100}
	zc.DisableStacktrace = true
	return zc.Build()
}
