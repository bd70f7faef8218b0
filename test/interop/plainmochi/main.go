// Command plainmochi runs mochi-mqtt, the version fleetgate is built with,
// with the capabilities and server options fleetgate's broker gives it
// (broker.Config.Capabilities, broker.Config.ServerOptions, for the
// default configuration) and none of fleetgate's hooks: only one that lets
// every client connect and denies subscriptions to the topic filters given
// with -deny-subscribe (the Paho suite expects "test/nosubscribe" to be
// refused). It is the reference test/interop/paho-suite compares fleetgate
// with. -paho-compat adds the compatibility modes mochi's own example for
// the suite turns on, to tell the suite's false negatives from real
// differences. test/bench/mqtt-vs-mosquitto runs it too, as the broker
// library alone beside mosquitto and fleetgate (-pprof profiles it there).
//
//	go run ./test/interop/plainmochi -listen 127.0.0.1:1884 [-pprof 127.0.0.1:6060]
//
// It prints "listening ADDR" once it accepts connections and stops on
// SIGINT or SIGTERM.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/broker"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plainmochi:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("plainmochi", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1883", "TCP address to listen on")
	deny := fs.String("deny-subscribe", "test/nosubscribe", "comma-separated topic filters no client may subscribe to")
	verbose := fs.Bool("v", false, "log mochi's warnings too (default: errors only)")
	compat := fs.Bool("paho-compat", false, "turn on the compatibility modes mochi's own Paho example uses (examples/paho.testing): obscure not-authorized codes, passive client disconnect, no inherited properties on acks")
	prof := fs.String("pprof", "", "serve Go's profiler (/debug/pprof/) on this address; off when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prof != "" {
		pl, err := net.Listen("tcp", *prof)
		if err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
		go http.Serve(pl, nil) //nolint:errcheck // ends with the process
	}
	cfg := broker.DefaultConfig()
	opts := cfg.ServerOptions()
	opts.Capabilities = cfg.Capabilities()
	if *compat {
		opts.Capabilities.Compatibilities.ObscureNotAuthorized = true
		opts.Capabilities.Compatibilities.PassiveClientDisconnect = true
		opts.Capabilities.Compatibilities.NoInheritedPropertiesOnAck = true
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	server := mqtt.New(opts)
	if err := server.AddHook(&allowHook{denySubscribe: strings.Split(*deny, ",")}, nil); err != nil {
		return fmt.Errorf("add hook: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if err := server.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("add listener: %w", err)
	}
	if err := server.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Println("listening", ln.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	return server.Close()
}

// allowHook lets every client connect and publish, and subscribe to
// anything but denySubscribe.
type allowHook struct {
	mqtt.HookBase
	denySubscribe []string
}

func (h *allowHook) ID() string { return "plainmochi-allow" }

func (h *allowHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck is asked for subscribe filters (write false) and publish
// topics (write true).
func (h *allowHook) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	return write || !slices.Contains(h.denySubscribe, topic)
}
