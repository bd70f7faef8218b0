package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// gatewayConfig is what a test changes in the generated configuration file.
type gatewayConfig struct {
	// DeliveryTimeout is kafka.delivery_timeout. Default 10s: short enough
	// that a Kafka outage of 20 s makes messages fail, as the fault tests
	// want.
	DeliveryTimeout time.Duration
	// ReplicationFactor and TopicConfig are kafka.topics.replication_factor
	// and kafka.topics.config. Default: 1 and none.
	ReplicationFactor int
	TopicConfig       map[string]string
	// Extra is YAML appended to the file (top-level keys such as limits:).
	Extra string
	// KafkaExtra is YAML added to the kafka: section, each line indented
	// by two spaces (for example "  retry_budget: 2s\n").
	KafkaExtra string
	// Admin gives the gateway an admin listener (/readyz) on a free port.
	Admin bool
}

// gateway is the real fleetgate binary running as a child process with a
// generated configuration: MQTT and the legacy HTTPS endpoint on free
// loopback ports, Kafka at a kafkatest cluster, topics created at start, no
// admin listener. Its log (JSON lines, stderr) goes to a file whose tail is
// printed if the test fails. Restarting it keeps the ports.
type gateway struct {
	t         *testing.T
	cfgPath   string
	logPath   string
	MQTTAddr  string
	HTTPSAddr string
	AdminAddr string // "" unless gatewayConfig.Admin

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	exit error
	runs int
}

// startGateway writes the configuration, starts the gateway and waits until
// both listeners accept connections.
func startGateway(t *testing.T, kc *kafkatest.Cluster, gc gatewayConfig) *gateway {
	t.Helper()
	if gc.DeliveryTimeout == 0 {
		gc.DeliveryTimeout = 10 * time.Second
	}
	if gc.ReplicationFactor == 0 {
		gc.ReplicationFactor = 1
	}
	ports := freePorts(t, 3)
	dir := t.TempDir()
	g := &gateway{
		t:         t,
		cfgPath:   filepath.Join(dir, "fleetgate.yaml"),
		logPath:   filepath.Join(dir, "fleetgate.log"),
		MQTTAddr:  fmt.Sprintf("127.0.0.1:%d", ports[0]),
		HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: info, format: json}\n")
	if gc.Admin {
		g.AdminAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	}
	fmt.Fprintf(&b, "admin: {listen: %q}\n", g.AdminAddr)
	fmt.Fprintf(&b, "mqtt:\n  listen: %q\n", g.MQTTAddr)
	fmt.Fprintf(&b, "telematics:\n  listen: %q\n", g.HTTPSAddr)
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n", strings.Join(kc.Brokers(), ", "))
	fmt.Fprintf(&b, "  version: %q\n", kc.SaramaVersion().String())
	fmt.Fprintf(&b, "  delivery_timeout: %s\n", gc.DeliveryTimeout)
	b.WriteString(gc.KafkaExtra)
	fmt.Fprintf(&b, "  topics:\n    create: true\n    partitions: %d\n    replication_factor: %d\n", topicPartitions, gc.ReplicationFactor)
	if len(gc.TopicConfig) > 0 {
		fmt.Fprintf(&b, "    config:\n")
		keys := make([]string, 0, len(gc.TopicConfig))
		for k := range gc.TopicConfig {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, gc.TopicConfig[k])
		}
	}
	b.WriteString(gc.Extra)
	if err := os.WriteFile(g.cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.cleanup)
	g.start()
	return g
}

// topicPartitions is the partition count of every topic the gateway creates
// (the default, as SPEC section 7's D1 → partition 2 assumes).
const topicPartitions = 6

// start starts the gateway process and waits until it serves.
func (g *gateway) start() {
	g.t.Helper()
	g.mu.Lock()
	if g.cmd != nil {
		g.mu.Unlock()
		g.t.Fatal("gateway already running")
	}
	g.runs++
	log, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.mu.Unlock()
		g.t.Fatal(err)
	}
	fmt.Fprintf(log, "=== e2e: start #%d at %s\n", g.runs, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(fleetgateBin, "serve", "--config", g.cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := startChild(cmd); err != nil {
		log.Close()
		g.mu.Unlock()
		g.t.Fatalf("start %s: %v", fleetgateBin, err)
	}
	done := make(chan struct{})
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	go func() {
		err := cmd.Wait()
		log.Close()
		g.mu.Lock()
		g.exit = err
		g.mu.Unlock()
		close(done)
	}()

	began := time.Now()
	deadline := began.Add(60 * time.Second)
	for _, addr := range []string{g.MQTTAddr, g.HTTPSAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				g.t.Fatalf("fleetgate exited during start-up (%v); log:\n%s", g.exitErr(), tailFile(g.logPath, 40))
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				g.t.Fatalf("fleetgate does not listen on %s after 60 s; log:\n%s", addr, tailFile(g.logPath, 40))
			}
		}
	}
	g.t.Logf("fleetgate #%d (pid %d) serving MQTT %s, HTTPS %s after %s", g.runs, cmd.Process.Pid, g.MQTTAddr, g.HTTPSAddr,
		time.Since(began).Round(time.Millisecond))
}

func (g *gateway) exitErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exit
}

// Pid returns the running process's id.
func (g *gateway) Pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// Running reports whether the process runs.
func (g *gateway) Running() bool {
	g.mu.Lock()
	done := g.done
	g.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to wait for the process to exit. It returns
// the exit code (-1 for a signal death) and how long the exit took.
func (g *gateway) stop(sig syscall.Signal, wait time.Duration) (code int, took time.Duration, err error) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if cmd == nil {
		return 0, 0, errors.New("gateway not running")
	}
	began := time.Now()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("fleetgate did not exit within %s of %v; killed", wait, sig)
	}
	took = time.Since(began)
	g.mu.Lock()
	g.cmd, g.done = nil, nil
	g.mu.Unlock()
	return cmd.ProcessState.ExitCode(), took, err
}

// cleanup stops a gateway still running and shows its log if the test
// failed.
func (g *gateway) cleanup() {
	if g.Running() {
		if _, _, err := g.stop(syscall.SIGTERM, 20*time.Second); err != nil {
			g.t.Log(err)
		}
	}
	if g.t.Failed() {
		kept := keepFile(g.logPath, "fleetgate-e2e-*.log")
		g.t.Logf("fleetgate log (all of it in %s), last lines:\n%s", kept, tailFile(g.logPath, 60))
	}
}

// logSize is the log's length now, for logLines.
func (g *gateway) logSize() int64 {
	fi, err := os.Stat(g.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logLines returns the gateway log lines after offset from that contain s.
func (g *gateway) logLines(from int64, s string) []string {
	b, _ := os.ReadFile(g.logPath)
	b = b[min(from, int64(len(b))):]
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// rssSampler samples a process's VmRSS every interval until stopped.
type rssSampler struct {
	once    sync.Once
	mu      sync.Mutex
	samples []rssSample
	stop    chan struct{}
	done    chan struct{}
}

type rssSample struct {
	at  time.Time
	kib int64
}

func sampleRSS(pid func() int, interval time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			if p := pid(); p != 0 {
				if kib, ok := rssKiB(p); ok {
					s.mu.Lock()
					s.samples = append(s.samples, rssSample{time.Now(), kib})
					s.mu.Unlock()
				}
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

// Stop ends sampling. It may be called more than once.
func (s *rssSampler) Stop() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// Max returns the largest sample taken in [from, to] (KiB) and how many
// samples fell there.
func (s *rssSampler) Max(from, to time.Time) (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	n := 0
	for _, x := range s.samples {
		if !x.at.Before(from) && !x.at.After(to) {
			m = max(m, x.kib)
			n++
		}
	}
	return m, n
}

func mib(kib int64) string { return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) + " MiB" }
