package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// recordingHook stands in for the gateway: it turns every PUBLISH into the
// record the default rule would produce (topic message-<type>, key
// device_no, one partition), in arrival order. fault, when set, decides per
// message whether the broker stores it and whether it then drops the
// connection without a PUBACK, as the gateway does when Kafka fails.
type recordingHook struct {
	mochi.HookBase
	mu    sync.Mutex
	recs  []kafkaRecord
	offs  map[string]int64
	n     int
	fault func(n int) (store, drop bool)
	noAck bool        // never acknowledge (and keep the connection)
	ackIf func() bool // when set, acknowledge only when it says so
}

func (h *recordingHook) ID() string { return "recording" }

func (h *recordingHook) Provides(b byte) bool {
	return b == mochi.OnPublish || b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *recordingHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (h *recordingHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

func (h *recordingHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	var v struct {
		Type     string `json:"type"`
		DeviceNo string `json:"device_no"`
	}
	_ = json.Unmarshal(pk.Payload, &v)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	store, drop := true, false
	if h.fault != nil {
		store, drop = h.fault(h.n)
	}
	if store {
		topic := topicOf(v.Type)
		h.recs = append(h.recs, kafkaRecord{Topic: topic, Offset: h.offs[topic], Key: []byte(v.DeviceNo),
			Value: append([]byte(nil), pk.Payload...)})
		h.offs[topic]++
	}
	if drop {
		cl.Stop(errors.New("test: dropped"))
		return pk, packets.ErrRejectPacket
	}
	if h.noAck || (h.ackIf != nil && !h.ackIf()) {
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

func (h *recordingHook) records() []kafkaRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]kafkaRecord(nil), h.recs...)
}

// startBroker starts a mochi broker on a free port and returns its address.
func startBroker(t *testing.T, h *recordingHook) string {
	t.Helper()
	h.offs = map[string]int64{}
	return serveHook(t, h)
}

// serveHook starts a mochi broker with hook on a free port.
func serveHook(t *testing.T, hook mochi.Hook) string {
	t.Helper()
	s := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := s.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Close() })
	return tcp.Address()
}

// runAndCheck runs fleetsim against the broker and checks what it stored
// against the acked file, as verify does against Kafka.
func runAndCheck(t *testing.T, h *recordingHook, args ...string) (*Summary, *ackedFile, *Report) {
	t.Helper()
	addr := startBroker(t, h)
	ackedPath := filepath.Join(t.TempDir(), "acked.jsonl")
	cfg := testRunConfig(t, append([]string{"--mqtt", addr, "--acked", ackedPath, "--progress", "0", "--drain", "10s"}, args...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := simulate(ctx, ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(ackedPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	acked, err := readAcked(f)
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker(acked, []string{"message-log", "message-gps", "message-kinematic", "message-adas"}, nil, 20)
	for _, r := range h.records() {
		c.observe(r)
	}
	rep := c.report()
	if !rep.OK {
		var b bytesBuffer
		rep.writeText(&b, ackedPath)
		t.Errorf("verification failed:\n%s", b.String())
	}
	return sum, acked, rep
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) String() string              { return string(w.b) }

func TestMQTTLoadMultiplexed(t *testing.T) {
	h := &recordingHook{}
	sum, acked, rep := runAndCheck(t, h, "--devices", "6", "--connections", "2", "--inflight", "4", "--messages", "25", "--warmup")
	m := sum.MQTT
	if m.Sent != 150 || m.Acked != 150 || m.Failed != 0 || m.Unacked != 0 || m.Resent != 0 || m.Latency.Max == 0 {
		t.Fatalf("summary %+v", m)
	}
	if rep.Total.Found != 150 || rep.Total.Records != 150 {
		t.Errorf("found %d of %d records", rep.Total.Found, rep.Total.Records)
	}
	devices := map[string]bool{}
	for _, l := range acked.Lines {
		devices[l.Device] = true
	}
	if len(devices) != 6 || !devices["SIM-000006"] {
		t.Errorf("devices in the acked file: %v", devices)
	}
}

// TestMQTTReconnectResends drops connections now and then, sometimes after
// storing the message (the ack is lost: the re-send is a duplicate),
// sometimes before (the re-send fills the gap). With --reconnect every
// message ends up acked, in order, duplicates only where re-sent.
func TestMQTTReconnectResends(t *testing.T) {
	h := &recordingHook{fault: func(n int) (bool, bool) {
		switch {
		case n%37 == 0:
			return true, true // stored, ack lost
		case n%53 == 0:
			return false, true // not stored
		}
		return true, false
	}}
	sum, acked, rep := runAndCheck(t, h, "--devices", "4", "--connections", "2", "--inflight", "8", "--messages", "60", "--reconnect",
		"--publish-timeout", "200ms")
	m := sum.MQTT
	if m.Acked != 240 || m.Unacked != 0 || m.Resent == 0 || m.ConnectionLosses == 0 || m.Sent != 240+m.Resent {
		t.Fatalf("summary %+v", m)
	}
	var resent int64
	for _, l := range acked.Lines {
		resent += l.Resent.count()
	}
	if resent == 0 || rep.Total.DupAllowed == 0 || rep.Total.Found != 240 {
		t.Errorf("resent seqs %d, allowed duplicates %d, found %d", resent, rep.Total.DupAllowed, rep.Total.Found)
	}
}

// TestMQTTWithoutReconnect: a dropped connection ends its devices; what it
// had in flight is unacked, and may or may not be stored.
func TestMQTTWithoutReconnect(t *testing.T) {
	h := &recordingHook{fault: func(n int) (bool, bool) { return true, n == 20 }}
	sum, _, rep := runAndCheck(t, h, "--devices", "2", "--inflight", "4", "--messages", "30")
	m := sum.MQTT
	if m.ConnectionLosses != 1 || m.Failed == 0 || m.Unacked != m.Failed || m.Acked+m.Unacked != m.Sent || m.Acked < 30 {
		t.Fatalf("summary %+v", m)
	}
	if rep.Total.UnackedExtras == 0 {
		t.Errorf("the stored message whose ack was lost is not an unacked extra: %+v", rep.Total)
	}
}

func TestMQTTQoS0AndRate(t *testing.T) {
	h := &recordingHook{}
	start := time.Now()
	sum, acked, rep := runAndCheck(t, h, "--devices", "3", "--qos", "0", "--messages", "20", "--rate", "300")
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("60 messages at 300/s took %v", el)
	}
	if sum.MQTT.Acked != 60 {
		t.Fatalf("summary %+v", sum.MQTT)
	}
	for _, l := range acked.Lines {
		if len(l.Seq) > 0 {
			t.Fatalf("QoS 0 message listed as acked: %+v", l)
		}
	}
	if rep.Expected != 0 || rep.Total.Checked != rep.Total.Records {
		t.Errorf("report %+v", rep.Total)
	}
}

func TestMQTTConnectFailure(t *testing.T) {
	cfg := testRunConfig(t, "--mqtt", "127.0.0.1:1", "--devices", "2", "--messages", "5", "--progress", "0", "--connect-timeout", "2s")
	sum, err := simulate(context.Background(), context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if sum.MQTT.ConnectFailures != 2 || sum.MQTT.Sent != 0 {
		t.Fatalf("summary %+v", sum.MQTT)
	}
}

// TestMQTTDrainBoundsWait: a broker that never acks; the run ends --drain
// after --duration, with what was in flight unacked.
func TestMQTTDrainBoundsWait(t *testing.T) {
	h := &recordingHook{noAck: true}
	addr := startBroker(t, h)
	cfg := testRunConfig(t, "--mqtt", addr, "--devices", "2", "--inflight", "3", "--duration", "200ms",
		"--drain", "300ms", "--progress", "0")
	start := time.Now()
	sum, err := simulate(context.Background(), context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 500*time.Millisecond || el > 5*time.Second {
		t.Errorf("run took %v with --duration 200ms --drain 300ms", el)
	}
	if m := sum.MQTT; m.Sent != 6 || m.Acked != 0 || m.Unacked != 6 {
		t.Errorf("summary %+v, want 6 sent (3 in flight per connection), none acked", m)
	}
}

// TestMessagesEndSending: with --messages, sending ends when every device
// has made its last message, so --drain bounds the wait for the last acks
// even without --duration.
func TestMessagesEndSending(t *testing.T) {
	var mu sync.Mutex
	n := 0
	h := &recordingHook{}
	h.ackIf = func() bool { // ack the first 8 messages only
		mu.Lock()
		defer mu.Unlock()
		n++
		return n <= 8
	}
	addr := startBroker(t, h)
	cfg := testRunConfig(t, "--mqtt", addr, "--devices", "2", "--inflight", "8", "--messages", "5",
		"--drain", "300ms", "--progress", "0")
	start := time.Now()
	sum, err := simulate(context.Background(), context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("run took %v with --drain 300ms", el)
	}
	if m := sum.MQTT; m.Sent != 10 || m.Acked != 8 || m.Unacked != 2 {
		t.Errorf("summary %+v, want 10 sent, 8 acked", m)
	}
}

func TestBrokerURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1883":              "tcp://127.0.0.1:1883",
		"ssl://broker:8883":           "ssl://broker:8883",
		"ws://127.0.0.1:8080/mqtt":    "ws://127.0.0.1:8080/mqtt",
		"wss://broker.example:443/mq": "wss://broker.example:443/mq",
	} {
		if got := brokerURL(in); got != want {
			t.Errorf("brokerURL(%q) = %q, want %q", in, got, want)
		}
	}
}
