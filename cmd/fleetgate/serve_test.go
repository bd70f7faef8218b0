package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/kafka"
)

// TestServeHelperProcess is not a test: the tests below run the test binary
// again with FLEETGATE_SERVE_HELPER=1 to get a real `fleetgate serve`
// process (signals, exit code) without building the binary.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv("FLEETGATE_SERVE_HELPER") != "1" {
		t.Skip("runs only as the child of the serve tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// serveProc is a `fleetgate serve` child process.
type serveProc struct {
	cmd   *exec.Cmd
	out   *bytes.Buffer // guarded by outMu
	outMu *sync.Mutex
	done  chan struct{}
	err   error // of Wait, once done is closed

	mqtt, admin string
}

// lockedWriter serialises the child's stdout and stderr into one buffer.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `fleetgate serve` against the Kafka at brokers and waits
// until /readyz says it is ready.
func startServe(t *testing.T, brokers string, deliveryTimeout time.Duration) *serveProc {
	t.Helper()
	p := &serveProc{mqtt: freeAddr(t), admin: freeAddr(t), out: &bytes.Buffer{}, outMu: &sync.Mutex{}, done: make(chan struct{})}
	cfg := fmt.Sprintf(`log: {level: info, format: json}
admin: {listen: %q}
mqtt: {listen: %q}
telematics: {listen: %q}
kafka:
  brokers: [%q]
  delivery_timeout: %s
`, p.admin, p.mqtt, freeAddr(t), brokers, deliveryTimeout)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$", "--", "serve", "--config", path)
	p.cmd.Env = append(os.Environ(), "FLEETGATE_SERVE_HELPER=1")
	w := lockedWriter{p.outMu, p.out}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("fleetgate output:\n%s", p.output())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("fleetgate exited before it was ready: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("fleetgate not ready in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *serveProc) output() string {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	return p.out.String()
}

func (p *serveProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// exit waits up to d for the process to end and returns its exit code.
func (p *serveProc) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("fleetgate still running %s after the signal", d)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(p.err)
	return -1
}

// startKafka runs a Kafka-protocol broker in the test process, so that it
// outlives the gateway process and can be read afterwards.
func startKafka(t *testing.T) *kafka.Embedded {
	t.Helper()
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
		Listen:     "127.0.0.1:0",
		Topics:     kafka.DefaultConfig().Topics.Names,
		Partitions: 6,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// readValues returns the values of every record of topic: it reads until
// it has at least want and nothing more comes for a moment.
func readValues(t *testing.T, brokers, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		wait := 500 * time.Millisecond
		if len(out) < want {
			wait = time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		n := len(out)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		if len(out) == n {
			return out
		}
	}
}

// TestSIGTERMDrainsAndExitsZero publishes from several terminals while
// Kafka is slow, sends SIGTERM in the middle, and checks that the process
// exits 0 after the drain and that every message that got a PUBACK is in
// Kafka: the drain never acknowledges what was not stored.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process")
	}
	k := startKafka(t)
	cluster := k.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		cluster.SleepControl(func() { time.Sleep(50 * time.Millisecond) })
		return nil, nil, false
	})
	p := startServe(t, k.Addr(), 10*time.Second)

	const terminals = 8
	var mu sync.Mutex
	acked := map[string]bool{}
	var signalled time.Time // when SIGTERM was sent
	ackedAfter := 0         // acks that arrived after it: the drain finished them
	var wg sync.WaitGroup
	for i := range terminals {
		device := fmt.Sprintf("T%02d", i)
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.mqtt).SetClientID(device).
			SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", device, tok.Error())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(0)
			// Four in flight per terminal, in order, until the gateway
			// goes away.
			var window []paho.Token
			for seq := 0; ; seq++ {
				payload := fmt.Sprintf(`{"type":"log","device_no":%q,"seq":%d}`, device, seq)
				window = append(window, c.Publish("report", 1, false, payload))
				if len(window) < 4 {
					continue
				}
				if tok := window[0]; !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
					return
				}
				mu.Lock()
				acked[fmt.Sprintf("%s/%d", device, seq-3)] = true
				if !signalled.IsZero() {
					ackedAfter++
				}
				mu.Unlock()
				window = window[1:]
			}
		}()
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d messages acked before SIGTERM", got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(40)
	mu.Lock()
	signalled = time.Now()
	mu.Unlock()
	p.signal(t, syscall.SIGTERM)
	code := p.exit(t, 20*time.Second)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	out := p.output()
	if !strings.Contains(out, "shutting down") || !strings.Contains(out, "fleetgate stopped") {
		t.Errorf("the log does not tell the shutdown story")
	}
	if strings.Contains(out, "shutdown was not clean") {
		t.Errorf("the drain did not finish in time")
	}

	mu.Lock()
	defer mu.Unlock()
	stored := readValues(t, k.Addr(), "message-log", len(acked))
	have := map[string]bool{}
	for _, v := range stored {
		var r struct {
			Device string `json:"device_no"`
			Seq    int    `json:"seq"`
		}
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatalf("record %q: %v", v, err)
		}
		have[fmt.Sprintf("%s/%d", r.Device, r.Seq)] = true
	}
	var missing []string
	for a := range acked {
		if !have[a] {
			missing = append(missing, a)
		}
	}
	slices.Sort(missing)
	t.Logf("%d messages acked (%d of them after SIGTERM), %d records stored", len(acked), ackedAfter, len(stored))
	if ackedAfter == 0 {
		t.Error("no message in flight at SIGTERM was acknowledged: the drain did not let them finish")
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged messages missing from Kafka, e.g. %s", len(missing), missing[0])
	}
}

// TestSecondSignalExitsAtOnce holds every produce request so that the drain
// would wait for the whole delivery timeout; a second SIGTERM ends the
// process at once, without acknowledging anything.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process")
	}
	k := startKafka(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := startServe(t, k.Addr(), 30*time.Second)
	cluster := k.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.mqtt).SetClientID("D1").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Publish("report", 1, false, `{"type":"log","device_no":"D1"}`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrapeText(t, p.admin), "fleetgate_inflight_messages 1") {
		if time.Now().After(deadline) {
			t.Fatal("the message never got in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.signal(t, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond) // draining: the message is held by Kafka
	select {
	case <-p.done:
		t.Fatal("the first signal did not wait for the in-flight message")
	default:
	}
	began := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.exit(t, 3*time.Second)
	t.Logf("second signal: exit code %d after %s", code, time.Since(began))
	if code == 0 {
		t.Error("exit code 0 after giving up on in-flight messages; want non-zero")
	}
	if tok.WaitTimeout(time.Second) && tok.Error() == nil {
		t.Fatal("the held message was acknowledged")
	}
}

func scrapeText(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}
