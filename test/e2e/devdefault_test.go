package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevelopmentDefaultTour runs the binary with no configuration file, as
// a new user does with `go run ./cmd/fleetgate`: the embedded Kafka broker,
// the default rule, and the SPEC section 7 commands. Only the ports are moved
// (through FLEETGATE_* variables) so the test cannot collide with others.
func TestDevelopmentDefaultTour(t *testing.T) {
	needTools(t, "mosquitto_pub", "kcat")
	ports := freePorts(t, 4)
	mqtt := "127.0.0.1:" + strconv.Itoa(ports[0])
	kafka := "127.0.0.1:" + strconv.Itoa(ports[1])
	logPath := filepath.Join(t.TempDir(), "fleetgate.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(fleetgateBin)
	cmd.Env = append(os.Environ(),
		"FLEETGATE_MQTT_LISTEN="+mqtt,
		"FLEETGATE_KAFKA_EMBEDDED_LISTEN="+kafka,
		"FLEETGATE_TELEMATICS_LISTEN=127.0.0.1:"+strconv.Itoa(ports[2]),
		"FLEETGATE_ADMIN_LISTEN=127.0.0.1:"+strconv.Itoa(ports[3]),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := startChild(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("fleetgate log:\n%s", tailFile(logPath, 30))
		}
		cmd.Process.Kill()
	}()
	for _, addr := range []string{kafka, mqtt} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening after 30 s", addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	host, port, _ := net.SplitHostPort(mqtt)
	mustTool(t, 30*time.Second, "", "mosquitto_pub", "-h", host, "-p", port, "-t", "report", "-q", "1",
		"-m", `{"type":"log","device_no":"D1","ts":1763780000000,"ignition":true}`)
	res := mustTool(t, 60*time.Second, "", "kcat", "-b", kafka, "-C", "-t", "message-log", "-e", "-q", "-f", `%k %p %s\n`)
	line := strings.TrimSpace(res.Stdout)
	// D1 is on partition 2 of 6, where Java's default partitioner puts it.
	if !strings.HasPrefix(line, `D1 2 {"type":"log","device_no":"D1","ts":1763780000000,"ignition":true,"timestamp":"`) ||
		!strings.HasSuffix(line, `UTC"}`) {
		t.Fatalf("kcat printed %q; want key D1, partition 2 and the record with a timestamp", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}
