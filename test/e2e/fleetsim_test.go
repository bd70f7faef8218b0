package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// simRun is a `fleetsim run` in the background.
type simRun struct {
	t          *testing.T
	ackedPath  string
	outPath    string
	errPath    string
	cmd        *exec.Cmd
	done       chan struct{}
	err        error
	summary    *simSummary
	finishedAt time.Time
}

// simSummary is what the tests read of `fleetsim run --json`.
type simSummary struct {
	Run     string     `json:"run"`
	Records int64      `json:"records"`
	MQTT    *simSource `json:"mqtt"`
	HTTPS   *simSource `json:"https"`
}

type simSource struct {
	Sent             int64            `json:"sent"`
	Acked            int64            `json:"acked"`
	Failed           int64            `json:"failed"`
	Resent           int64            `json:"resent"`
	Unacked          int64            `json:"unacked"`
	Records          int64            `json:"records"`
	ConnectionLosses int64            `json:"connection_losses"`
	Errors           map[string]int64 `json:"errors"`
}

// startSim starts `fleetsim run` with args plus --acked, --json and
// --progress; its progress lines are shown if the test fails.
func startSim(t *testing.T, args ...string) *simRun {
	t.Helper()
	dir := t.TempDir()
	s := &simRun{t: t, ackedPath: filepath.Join(dir, "acked.jsonl"), outPath: filepath.Join(dir, "run.json"),
		errPath: filepath.Join(dir, "run.log"), done: make(chan struct{})}
	out, err := os.Create(s.outPath)
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(s.errPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"run", "--acked", s.ackedPath, "--json", "--progress", "2s"}, args...)
	s.cmd = exec.Command(fleetsimBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = out, errf
	if err := startChild(s.cmd); err != nil {
		t.Fatal(err)
	}
	t.Logf("fleetsim %s", strings.Join(args, " "))
	go func() {
		s.err = s.cmd.Wait()
		s.finishedAt = time.Now()
		out.Close()
		errf.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		if t.Failed() {
			kept := keepFile(s.ackedPath, "fleetgate-e2e-*.acked.jsonl")
			t.Logf("fleetsim run progress (acked file kept in %s):\n%s", kept, tailFile(s.errPath, 40))
		}
	})
	return s
}

// wait waits for the run to end and returns its summary.
func (s *simRun) wait(timeout time.Duration) *simSummary {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.t.Fatalf("fleetsim run still running after %s", timeout)
	}
	if s.err != nil {
		s.t.Fatalf("fleetsim run: %v\n%s", s.err, tailFile(s.errPath, 40))
	}
	b, err := os.ReadFile(s.outPath)
	if err != nil {
		s.t.Fatal(err)
	}
	var sum simSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		s.t.Fatalf("fleetsim run --json printed %q: %v", b, err)
	}
	s.summary = &sum
	return &sum
}

// simVerify runs `fleetsim verify` on a finished run and fails the test with
// its report if it finds a violation: a lost acknowledged message, a
// reordering within a device, a duplicate of a message that was not re-sent,
// a wrong key or partition.
func simVerify(t *testing.T, kc *kafkatest.Cluster, s *simRun) string {
	t.Helper()
	res := runTool(t, 3*time.Minute, "", fleetsimBin, "verify", "--acked", s.ackedPath, "--brokers", kc.Bootstrap(),
		"--kafka-version", kc.SaramaVersion().String(), "--partitions-check", "--timeout", "30s", "--max-list", "10")
	if res.Code != 0 {
		t.Errorf("fleetsim verify: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	} else {
		t.Logf("fleetsim verify:\n%s", res.Stdout)
	}
	return res.Stdout
}

// total returns acked, unacked and resent over both sources.
func (s *simSummary) total() (acked, unacked, resent int64) {
	for _, src := range []*simSource{s.MQTT, s.HTTPS} {
		if src != nil {
			acked += src.Acked
			unacked += src.Unacked
			resent += src.Resent
		}
	}
	return
}

func (s *simSummary) brief() string {
	var b strings.Builder
	for name, src := range map[string]*simSource{"mqtt": s.MQTT, "https": s.HTTPS} {
		if src != nil {
			fmt.Fprintf(&b, " %s: sent %d acked %d failed %d resent %d unacked %d conn-losses %d;", name, src.Sent, src.Acked,
				src.Failed, src.Resent, src.Unacked, src.ConnectionLosses)
		}
	}
	return strings.TrimSuffix(strings.TrimSpace(b.String()), ";")
}
