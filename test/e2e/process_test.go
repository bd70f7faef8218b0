package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Pdeathsig fires when the thread that forked the child exits, and Go may
// end a thread that a locked goroutine ran on. Every child is therefore
// forked from one goroutine that locks its thread and never returns, so that
// a test binary that panics or times out leaves no gateway or fleetsim
// behind (test/kafkatest does the same for the brokers).
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startChild starts cmd in its own process group, killed if we die.
func startChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// rssKiB returns the resident set size of process pid (VmRSS), in KiB.
func rssKiB(pid int) (int64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// tailFile returns the last n lines of a file, for failure reports.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// keepFile copies a file of a failed test out of its t.TempDir, which goes
// with the test, into a new file in os.TempDir named after pattern, and
// returns the copy's path (the original's if copying failed).
func keepFile(path, pattern string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return path
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return path
	}
	return f.Name()
}
