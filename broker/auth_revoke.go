package broker

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/policy"
	"github.com/fleetgate/fleetgate/tlsconf"
)

// revoke ends the connections and sessions authenticated by a users-file
// line that the reload from old to users removed or changed.
func (h *authHook) revoke(old, users *userTable, server *mqtt.Server) {
	h.end(server, refuseRevoked, func(id *identity) (bool, []zap.Field) {
		return id.username != "" && !users.unchanged(old, id.username), nil
	})
}

// revokeCertificates ends the connections and sessions whose verified
// client certificate (or a CA between it and the client CA) revoked says
// is revoked: the revocation lists changed. Both TLS listeners count: the
// TLS one and secure WebSocket, whose handshake checked the certificate
// as well.
func (h *authHook) revokeCertificates(revoked func(tls.ConnectionState) error, server *mqtt.Server) {
	h.end(server, refuseCertRevoked, func(id *identity) (bool, []zap.Field) {
		tc := tlsConn(id.cl.Net.Conn)
		if tc == nil {
			return false, nil
		}
		if err := revoked(tc.ConnectionState()); err != nil {
			return true, []zap.Field{zap.Error(err)}
		}
		return false, nil
	})
}

// tlsConn returns the TLS connection c runs over (the TLS listener's
// connection itself, or the one under a secure WebSocket stream), or nil.
func tlsConn(c net.Conn) *tls.Conn {
	if ws, ok := c.(*wsStream); ok {
		c = ws.Conn
	}
	tc, _ := c.(*tls.Conn)
	return tc
}

// end ends the connections and sessions whose identity ended says so: the
// identity is forgotten (so deliveries to an offline session are denied
// from now on), a live connection is closed and the session emptied. Each
// is counted and logged under reason, with the fields ended gives.
func (h *authHook) end(server *mqtt.Server, reason string, ended func(*identity) (bool, []zap.Field)) {
	h.idents.Range(func(k, v any) bool {
		id := v.(*identity)
		yes, fields := ended(id)
		if !yes {
			return true
		}
		if !h.idents.CompareAndDelete(k, v) {
			return true // replaced meanwhile by a newer authentication
		}
		h.refused(id.cl, stageSession, reason, id.username, id.principal, "", fields...)
		if !id.cl.Closed() {
			_ = server.DisconnectClient(id.cl, packets.ErrNotAuthorized)
		}
		// Empty the session, as a clean takeover does: once the identity is
		// forgotten, nothing says whose it was (session_owned), and
		// another principal could inherit its subscriptions and queue.
		server.UnsubscribeClient(id.cl)
		id.cl.ClearInflights()
		return true
	})
}

// watchRevocations checks mqtt.tls's files every tlsconf.CheckInterval
// until Shutdown and, each time the revocation lists in force changed,
// ends the connections and sessions of the certificates they revoke: a
// handshake checks a new connection, this the ones already open.
func (b *Broker) watchRevocations(r *tlsconf.Reloader) {
	tick := time.NewTicker(tlsconf.CheckInterval)
	defer tick.Stop()
	seen := r.Reloads()
	for {
		select {
		case <-b.stopped:
			return
		case <-tick.C:
		}
		r.Check()
		if n := r.Reloads(); n != seen {
			seen = n
			b.auth.revokeCertificates(r.Revoked, b.server)
		}
	}
}

// withdrawWills takes back the wills of connected clients that the policy
// in force denies (a reload narrowed it): mochi checks nothing when it
// publishes a will, and its topic was only decided at CONNECT.
func (h *authHook) withdrawWills() {
	h.idents.Range(func(_, v any) bool {
		id := v.(*identity)
		if id.willTopic == "" || id.cl.Closed() || atomic.LoadUint32(&id.cl.Properties.Will.Flag) == 0 {
			return true
		}
		if d := h.decideFor(id, id.cl.ID, policy.Publish, id.willTopic); !d.Allow {
			atomic.StoreUint32(&id.cl.Properties.Will.Flag, 0) // sendLWT returns at once
			h.refused(id.cl, stageSession, refuseWillWithdrawn, id.username, id.principal, id.willTopic, zap.String("rule", d.Rule))
		}
		return true
	})
}

// recheckQueued drops from the session being resumed (old's in-flight
// window, which mochi hands to the new connection and re-sends without
// asking the policy) the messages queued for delivery that the policy in
// force denies id: a reload may have narrowed it since they were queued.
func (h *authHook) recheckQueued(old *mqtt.Client, id *identity, cl *mqtt.Client) {
	if old == nil {
		return
	}
	for _, pk := range old.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if d := h.decideFor(id, cl.ID, policy.Subscribe, pk.TopicName); !d.Allow && old.State.Inflight.Delete(pk.PacketID) {
			h.refused(cl, stageSubscribe, refusalReason(d), id.username, id.principal, pk.TopicName, zap.String("rule", d.Rule))
		}
	}
}
