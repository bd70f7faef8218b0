package kafkatest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperDirEnv = "KAFKATEST_HELPER_DIR"

// TestHelperStartAndHang is not a test: TestBrokerDiesWithTestProcess runs the
// test binary again with only this, to start a broker and be killed.
func TestHelperStartAndHang(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestBrokerDiesWithTestProcess")
	}
	c, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(c.Bootstrap()), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute) // until killed
}

// TestBrokerDiesWithTestProcess kills a test process that started a broker,
// as a panic or a go test timeout would end it, and checks that the broker
// does not outlive it.
func TestBrokerDiesWithTestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Kafka")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartAndHang$", "-test.v")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(DefaultStartTimeout)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("helper exited before its broker was ready: %v\n%s", err, out.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("helper's broker not ready\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "node-1", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatalf("broker pid %d is not running while its parent is", pid)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }) // if the test fails

	cmd.Process.Kill()
	<-exited
	for end := time.Now().Add(15 * time.Second); alive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("broker pid %d still runs 15 s after its parent was killed", pid)
		}
	}
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
