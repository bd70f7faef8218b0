package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Reasons given to LimitObserver.ConnectionRefused.
const (
	// reasonConnectTimeout: no CONNECT (TLS handshake and WebSocket upgrade
	// included) within mqtt.connect_timeout.
	reasonConnectTimeout = "connect_timeout"
	// reasonTLSHandshake: the TLS handshake failed (no or an untrusted
	// client certificate, no common protocol version or cipher suite).
	reasonTLSHandshake = "tls_handshake"
	// reasonWSOrigin: a WebSocket upgrade from an Origin not in
	// mqtt.ws_allowed_origins.
	reasonWSOrigin = "ws_origin"
)

// RefusalReasons lists every reason given to LimitObserver.ConnectionRefused.
var RefusalReasons = []string{reasonConnectTimeout, reasonTLSHandshake, reasonWSOrigin}

// countedListener counts the connections of a mochi listener that ended
// before CONNECT for a reason worth counting. A connection closed by its
// client before CONNECT (a load balancer's TCP health check) is not.
type countedListener struct {
	listeners.Listener
	refused func(reason string)
}

// Serve implements listeners.Listener.
func (l countedListener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		err := establish(id, c)
		if r := preConnectReason(c, err); r != "" {
			l.refused(r)
		}
		return err
	})
}

// counted wraps l so that its refusals before CONNECT are counted.
func (b *Broker) counted(l listeners.Listener) listeners.Listener {
	return countedListener{Listener: l, refused: b.limitObserver().ConnectionRefused}
}

// preConnectReason tells why mochi's handling of c ended with err before
// CONNECT, or "" when it did not, or for no reason worth counting.
func preConnectReason(c net.Conn, err error) string {
	if err == nil {
		return ""
	}
	if tc, ok := c.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		if isTimeout(err) {
			return reasonConnectTimeout
		}
		if isEOF(err) {
			return ""
		}
		return reasonTLSHandshake
	}
	// mochi v2.7.9 wraps the errors of reading the first packet so.
	if strings.HasPrefix(err.Error(), "read connection: ") && isTimeout(err) {
		return reasonConnectTimeout
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isEOF(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")
}

// limitObserver returns the LimitObserver of WithObserver, or a no-op.
func (b *Broker) limitObserver() LimitObserver {
	if obs, ok := b.hook.obs.(LimitObserver); ok {
		return obs
	}
	return nopLimitObserver{}
}
