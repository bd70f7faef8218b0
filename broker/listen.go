package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// listenTCP listens on addr (with TLS when tc is set) and gives every
// accepted connection connectTimeout to finish the TLS handshake and send
// its CONNECT. mochi waits for the first packet without a deadline, so
// sockets that never speak would otherwise hold a file descriptor and two
// goroutines each, forever; once CONNECT is read mochi replaces the deadline
// with the client's keep-alive.
func listenTCP(addr string, connectTimeout time.Duration, tc *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	var out net.Listener = connectDeadlineListener{Listener: ln, timeout: connectTimeout}
	if tc != nil {
		out = tls.NewListener(out, tc)
	}
	return out, nil
}

// connectDeadlineListener sets a deadline on each connection it accepts.
type connectDeadlineListener struct {
	net.Listener
	timeout time.Duration
}

// Accept implements net.Listener. An error from Accept stops mochi's
// accept loop for good, so only the listener's closing is returned: a
// connection whose deadline cannot be set is closed and the next one
// accepted, and a failure to accept (out of file descriptors, the very
// state a flood of silent sockets aims for) is waited out.
func (l connectDeadlineListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !waitToAccept(err, &delay) {
				return nil, err
			}
			continue
		}
		delay = 0
		if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
			c.Close()
			continue
		}
		return c, nil
	}
}

// waitToAccept reports whether the accept loop should go on after err: not
// when the listener is closed; otherwise (EMFILE and other resource errors)
// after a pause that doubles from 5ms to 1s while the errors last, as
// net/http's server does.
func waitToAccept(err error, delay *time.Duration) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	*delay = min(max(2**delay, 5*time.Millisecond), time.Second)
	time.Sleep(*delay)
	return true
}
