package broker

import (
	"crypto/tls"
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

// Accept implements net.Listener. A connection whose deadline cannot be
// set is closed and the next one accepted: an error from Accept would stop
// mochi's accept loop for good.
func (l connectDeadlineListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
			c.Close()
			continue
		}
		return c, nil
	}
}
