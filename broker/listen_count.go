package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleetgate/fleetgate/tlsconf"
)

// Reasons given to LimitObserver.ConnectionRefused.
const (
	// reasonConnectTimeout: no CONNECT (TLS handshake and WebSocket upgrade
	// included) within mqtt.connect_timeout.
	reasonConnectTimeout = "connect_timeout"
	// reasonTLSHandshake: the TLS handshake failed (no or an untrusted
	// client certificate, no common protocol version or cipher suite).
	reasonTLSHandshake = "tls_handshake"
	// reasonCertRevoked: the client certificate is listed by a revocation
	// list of mqtt.tls.crl_file.
	reasonCertRevoked = "certificate_revoked"
	// reasonWSOrigin: a WebSocket upgrade from an Origin not in
	// mqtt.ws_allowed_origins.
	reasonWSOrigin = "ws_origin"
	// reasonWSUpgrade: a request on a WebSocket listener that is not a
	// valid WebSocket upgrade (malformed, over 16 KiB, a plain HTTP GET).
	reasonWSUpgrade = "ws_upgrade"
)

// RefusalReasons lists every reason given to LimitObserver.ConnectionRefused.
var RefusalReasons = []string{reasonConnectTimeout, reasonTLSHandshake, reasonCertRevoked, reasonWSOrigin, reasonWSUpgrade}

// countedListener counts the connections of a mochi listener that ended
// before CONNECT for a reason worth counting. A connection closed by its
// client before CONNECT (a load balancer's TCP health check) is not.
type countedListener struct {
	listeners.Listener
	refused refuseConn
}

// Serve implements listeners.Listener.
func (l countedListener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		err := establish(id, c)
		if r := preConnectReason(c, err); r != "" {
			l.refused(r, c.RemoteAddr(), err)
		}
		return err
	})
}

// counted wraps l so that its refusals before CONNECT are counted.
func (b *Broker) counted(l listeners.Listener) listeners.Listener {
	return countedListener{Listener: l, refused: b.connRefuser(l.ID())}
}

// refuseConn counts and logs a connection refused before CONNECT: why,
// from where, and the error that ended it.
type refuseConn func(reason string, remote net.Addr, err error)

// connRefuser returns the refuseConn of one listener: it counts every
// refusal (LimitObserver.ConnectionRefused) and logs it, sampled (the
// first 10 lines a second of each reason, then 1 in 100), naming the
// listener and the remote address. There is no client id or principal yet.
func (b *Broker) connRefuser(listener string) refuseConn {
	obs := b.limitObserver()
	log := sampledRefusals(b.log)
	return func(reason string, remote net.Addr, err error) {
		obs.ConnectionRefused(reason)
		addr := ""
		if remote != nil {
			addr = remote.String()
		}
		log.Info("mqtt connection refused", zap.String("reason", reason), zap.String("listener", listener),
			zap.String("remote", addr), zap.Error(err))
	}
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
		if errors.Is(err, tlsconf.ErrRevoked) {
			return reasonCertRevoked
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

// sampledRefusals is log sampled for refusals, which can come in floods:
// the first 10 lines a second of each message, then 1 in 100.
func sampledRefusals(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 100)
	}))
}
