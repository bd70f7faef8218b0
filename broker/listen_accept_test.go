package broker

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts as a process out of file
// descriptors does, then accepts.
type flakyListener struct {
	net.Listener
	fails int
	conn  net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	if l.conn == nil {
		return nil, net.ErrClosed
	}
	c := l.conn
	l.conn = nil
	return c, nil
}

// TestAcceptOutlivesFileDescriptorExhaustion: mochi's accept loop ends at
// the first error from Accept, so running out of file descriptors (what a
// flood of silent sockets does) must not reach it: the listener waits and
// accepts again, and only its closing ends the loop.
func TestAcceptOutlivesFileDescriptorExhaustion(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	l := connectDeadlineListener{Listener: &flakyListener{fails: 3, conn: server}, timeout: time.Second}
	began := time.Now()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v after EMFILE; mochi would stop accepting for good", err)
	}
	c.Close()
	if d := time.Since(began); d < 30*time.Millisecond {
		t.Fatalf("retried after %s: no pause between failed accepts", d)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}
