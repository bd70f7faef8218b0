package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// haproxyConfig is the configuration TestInstancesBehindHAProxy runs
// HAProxy with (docs/operations.md shows it): TCP mode for MQTT, every
// gateway instance checked over HTTP on its admin port (/readyz), a dead or
// unready instance taken out within two checks and its sessions shut down,
// connection attempts to a dead instance redispatched to another. The stats
// page (CSV) lets the test see what HAProxy thinks.
const haproxyConfig = `global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    timeout client 90s
    timeout server 90s
    retries 2
    option redispatch

frontend mqtt
    bind {{frontend}}
    default_backend fleetgate

backend fleetgate
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{{servers}}
listen stats
    mode http
    bind {{stats}}
    stats enable
    stats uri /stats
`

// haproxy is HAProxy running as a plain child process.
type haproxy struct {
	Addr      string // the MQTT frontend
	statsAddr string
	cmd       *exec.Cmd
	logPath   string
}

// startHAProxy writes the configuration for the gateways and starts HAProxy
// in the foreground; it waits until the frontend accepts connections and
// every server is UP.
func startHAProxy(t *testing.T, gws ...*gateway) *haproxy {
	t.Helper()
	needTools(t, "haproxy")
	ports := freePorts(t, 2)
	h := &haproxy{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), statsAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	var servers strings.Builder
	for i, g := range gws {
		_, adminPort, _ := net.SplitHostPort(g.AdminAddr)
		fmt.Fprintf(&servers, "    server g%d %s check port %s\n", i+1, g.MQTTAddr, adminPort)
	}
	cfg := strings.NewReplacer("{{frontend}}", h.Addr, "{{stats}}", h.statsAddr, "{{servers}}", servers.String()).Replace(haproxyConfig)
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	h.logPath = filepath.Join(dir, "haproxy.log")
	logf, err := os.Create(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command("haproxy", "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := startChild(h.cmd); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
		_ = h.cmd.Wait()
		logf.Close()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", tailFile(h.logPath, 30))
		}
	})
	waitFor(t, 30*time.Second, "HAProxy serving with every gateway UP", func() error {
		st, err := h.servers()
		if err != nil {
			return err
		}
		for i := range gws {
			if s := st[fmt.Sprintf("g%d", i+1)]; s != "UP" {
				return fmt.Errorf("g%d is %q", i+1, s)
			}
		}
		return nil
	})
	return h
}

// servers returns HAProxy's status of each server of the fleetgate backend
// ("UP", "DOWN", ...), from its stats CSV.
func (h *haproxy) servers() (map[string]string, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + h.statsAddr + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("stats csv: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > col["status"] && row[col["pxname"]] == "fleetgate" {
			out[row[col["svname"]]] = strings.Fields(row[col["status"]] + " ")[0]
		}
	}
	return out, nil
}

// TestInstancesBehindHAProxy runs two gateway instances (the real binary)
// behind HAProxy in TCP mode, health-checked on /readyz, against one real
// Kafka. Under MQTT load from fleetsim (re-send on reconnect) one instance
// gets SIGKILL: HAProxy marks it DOWN, its terminals reconnect through
// HAProxy to the other instance and re-send what got no PUBACK. fleetsim
// verify must find nothing acknowledged lost, each device's order held and
// duplicates only as exact re-sends (the memory of recent packet ids is per
// instance, so re-sends of messages the killed instance had stored are
// stored again).
func TestInstancesBehindHAProxy(t *testing.T) {
	kc := sharedKafka(t)
	g1 := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 10 * time.Second, Admin: true})
	g2 := startGateway(t, kc, gatewayConfig{DeliveryTimeout: 10 * time.Second, Admin: true})
	lb := startHAProxy(t, g1, g2)
	base, err := endOffsets(kc, reportTopics...)
	if err != nil {
		t.Fatal(err)
	}

	run := newRunID()
	sim := startSim(t, "--mqtt", lb.Addr, "--devices", "60", "--inflight", "4", "--reconnect",
		"--rate", "400", "--duration", "20s", "--drain", "60s", "--run-id", run, "--prefix", "HA-")
	waitRecords(t, kc, base, 1500, 30*time.Second, reportTopics...)

	killed := time.Now()
	if _, _, err := g1.stop(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "HAProxy marks the killed instance DOWN", func() error {
		st, err := lb.servers()
		if err != nil {
			return err
		}
		if st["g1"] == "UP" || st["g2"] != "UP" {
			return fmt.Errorf("servers %v", st)
		}
		return nil
	})
	t.Logf("instance 1 killed (SIGKILL); HAProxy marked it DOWN %s later", time.Since(killed).Round(time.Millisecond))
	after, err := endOffsets(kc, reportTopics...)
	if err != nil {
		t.Fatal(err)
	}
	// Load goes on through the surviving instance.
	waitRecords(t, kc, after, 500, 30*time.Second, reportTopics...)

	sum := sim.wait(3 * time.Minute)
	t.Logf("fleetsim run: %s", sum.brief())
	simVerify(t, kc, sim)
	acked, unacked, resent := sum.total()
	if unacked != 0 {
		t.Errorf("%d messages never acknowledged although instance 2 kept serving", unacked)
	}
	if resent == 0 {
		t.Errorf("no message was re-sent (acked %d): the kill interrupted nothing", acked)
	}
}
