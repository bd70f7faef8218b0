package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// node is one Kafka process (broker and controller) and its directory.
type node struct {
	id       int // Kafka node.id, 1-based
	dir      string
	port     int // PLAINTEXT listener
	ctrlPort int // CONTROLLER listener

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once the running process has been reaped
}

func (n *node) addr() string          { return fmt.Sprintf("127.0.0.1:%d", n.port) }
func (n *node) dataDir() string       { return filepath.Join(n.dir, "data") }
func (n *node) propsPath() string     { return filepath.Join(n.dir, "server.properties") }
func (n *node) pidPath() string       { return filepath.Join(n.dir, "pid") }
func (n *node) stdoutPath() string    { return filepath.Join(n.dir, "stdout.log") }
func (n *node) serverLogPath() string { return filepath.Join(n.dir, "server.log") }

// javaBin is $JAVA_HOME/bin/java when that exists, else java from PATH.
func javaBin() string {
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		p := filepath.Join(jh, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "java"
}

// jvmArgs are the JVM options shared by the broker and the storage tool.
func (n *node) jvmArgs(h *kafkaHome, heap string) []string {
	return []string{
		"-Xms64m", "-Xmx" + heap,
		// One GC thread and no concurrent marking: up to three JVMs and the
		// tests share 2 cores, and the heap is small.
		"-XX:+UseSerialGC",
		"-XX:+ExitOnOutOfMemoryError",
		"-XX:-UsePerfData", // no /tmp/hsperfdata_* files left behind
		"-XX:ErrorFile=" + filepath.Join(n.dir, "hs_err_%p.log"),
		"-Djava.awt.headless=true",
		"-Dkafka.logs.dir=" + n.dir,
		"-Dlog4j2.configurationFile=" + h.log4j,
		"-cp", h.classpath,
	}
}

// format runs kafka.tools.StorageTool to format the node's log dir for the
// cluster id; a node already formatted is left as it is.
func (n *node) format(ctx context.Context, h *kafkaHome, clusterID string) error {
	args := append(n.jvmArgs(h, "256m"),
		// A short-lived tool: the C1 compiler alone starts it faster.
		"-XX:TieredStopAtLevel=1",
		"kafka.tools.StorageTool", "format",
		// --cluster-id=ID, not "-t ID": a base64url id may begin with "-",
		// which the tool would take for an option.
		"--cluster-id="+clusterID, "-c", n.propsPath(), "--ignore-formatted")
	cmd := exec.CommandContext(ctx, javaBin(), args...)
	cmd.Dir = n.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kafkatest: format node %d: %w\n%s%s", n.id, err, out, tail(n.serverLogPath(), 20))
	}
	return nil
}

// start launches the broker. The JVM gets its own process group (so that
// signals reach it and nothing else) and dies with the process that started it
// (Pdeathsig), so a test binary that panics or times out leaves no broker behind.
func (n *node) start(h *kafkaHome, heap string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("kafkatest: node %d is already running", n.id)
	}
	out, err := os.OpenFile(n.stdoutPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kafkatest: node %d: %w", n.id, err)
	}
	fmt.Fprintf(out, "--- kafkatest: start %s\n", time.Now().Format(time.RFC3339Nano))
	args := n.jvmArgs(h, heap)
	// Extra JVM options last, so they override ours.
	args = append(args, strings.Fields(os.Getenv(EnvJVMOpts))...)
	args = append(args, "kafka.Kafka", n.propsPath())
	cmd := exec.Command(javaBin(), args...)
	cmd.Dir = n.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startOnLockedThread(cmd); err != nil {
		out.Close()
		return fmt.Errorf("kafkatest: start node %d: %w", n.id, err)
	}
	_ = os.WriteFile(n.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() {
		_ = cmd.Wait()
		out.Close()
		n.mu.Lock()
		if n.cmd == cmd {
			n.cmd = nil
			_ = os.Remove(n.pidPath())
		}
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited returns a channel closed when the current process ends, or nil when
// no process runs.
func (n *node) exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	return n.done
}

func (n *node) running() bool { return n.exited() != nil }

// stop sends SIGTERM to the node's process group and SIGKILL after grace; it
// returns once the process is reaped. Stopping a stopped node does nothing.
func (n *node) stop(grace time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	if grace > 0 {
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kafkatest: stop node %d: %w", n.id, err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-t.C:
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kafkatest: kill node %d: %w", n.id, err)
	}
	<-done
	return nil
}

// tail returns the last lines of a file, indented, for error messages.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	ls := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	var s strings.Builder
	fmt.Fprintf(&s, "  --- last lines of %s:\n", path)
	for _, l := range ls {
		s.WriteString("  ")
		s.Write(l)
		s.WriteByte('\n')
	}
	return s.String()
}

// logs returns the tails of the node's stdout and server log.
func (n *node) logs() string {
	return tail(n.stdoutPath(), 15) + tail(n.serverLogPath(), 25)
}

// Pdeathsig fires when the *thread* that forked the child exits, not only the
// process. Go keeps its threads, except that one whose goroutine exits while
// locked to it (runtime.LockOSThread, as network-namespace code does) is
// ended, and any goroutine may have run on it before. So every broker is
// forked from one goroutine that locks its thread and never returns.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnLockedThread(cmd *exec.Cmd) error {
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
