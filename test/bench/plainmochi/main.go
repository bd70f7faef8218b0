// Command plainmochi is the broker library fleetgate embeds, alone: mochi-mqtt/server v2
// as fleetgate builds it (third_party/mochi, with its patches), at mochi's default
// options, anyone allowed, no hooks of fleetgate's, no rules and no Kafka. A PUBACK from
// it means only that the broker got the message.
//
// test/bench/mqtt-vs-mosquitto runs it beside mosquitto and fleetgate, so that the gap
// between fleetgate and a plain broker splits into the library's share and the
// gateway's own (rules, Kafka, acknowledging after Kafka).
//
//	plainmochi -listen 127.0.0.1:1883
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:1883", "TCP address of the MQTT listener")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "plainmochi:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := mqtt.New(&mqtt.Options{Logger: log})
	if err := s.AddHook(new(allowAll), nil); err != nil {
		return fmt.Errorf("add allow hook: %w", err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := s.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return s.Close()
}

// allowAll lets every client connect and use every topic, as mochi's own auth.AllowHook
// does (which would pull in a YAML library for its ledger).
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
