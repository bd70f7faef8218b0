package broker

import (
	"crypto/x509"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/policy"
	"github.com/fleetgate/fleetgate/router"
)

// authHook decides who may connect (mqtt.auth) and what they may publish
// and subscribe (mqtt.acl_file). It is a mochi hook of its own, apart from
// the ingest hook, so that identity and delivery stay separate concerns.
//
// Each connection has one identity, its principal: the verified client
// certificate's identity (mqtt.auth.cert_identity) when mutual TLS gave
// one, which no username can override; otherwise the users-file username
// whose password matched; "" for an anonymous client.
//
// SUBSCRIBE filters and deliveries to subscribers are checked in
// OnACLCheck. PUBLISH is checked by the ingest hook calling allowPublish at
// the top of its OnPublish: mochi's own publish check disconnects an MQTT
// 3.1.1 client on a refusal, and a terminal that reconnects and re-sends
// the same message forever is worse than one refused message.
type authHook struct {
	mqtt.HookBase
	cfg     Config
	obs     Observer
	log     *zap.Logger // sampled: refusals can come in floods
	backoff *backoff    // nil: no back-off
	// answer sends the PUBACK (PUBREC) of a denied PUBLISH in the
	// connection's PUBLISH order, after its earlier messages' acks (the
	// ingest hook's answerInOrder); nil writes it at once.
	answer func(cl *mqtt.Client, ack packets.Packet)
	// deliver admits a message allowed to subscriber cl into its write
	// queue (writeQueueHook.admit); nil admits all.
	deliver func(cl *mqtt.Client, topic string) bool

	users  atomic.Pointer[userTable]
	policy atomic.Pointer[policySource]
	idents sync.Map // client id -> *identity, from authentication until the session ends

	done chan struct{} // closed by stop: held refusals give up waiting
	once sync.Once
}

// policySource is the policy in force and where it came from.
type policySource struct {
	p    *policy.Policy
	from string
}

// identity is what authentication established about a connection.
type identity struct {
	cl        *mqtt.Client
	principal string
	username  string // the users-file username that authenticated; "" otherwise
	certCN    string
	willTopic string // "" without a will
}

func newAuthHook(cfg Config, users *userTable, pol *policy.Policy, from string, obs Observer, log *zap.Logger) *authHook {
	h := &authHook{
		cfg:  cfg,
		obs:  obs,
		log:  sampledRefusals(log),
		done: make(chan struct{}),
	}
	if len(cfg.Auth.Backoff.Keys) > 0 {
		h.backoff = newBackoff(cfg.Auth.Backoff)
	}
	h.users.Store(users)
	h.policy.Store(&policySource{p: pol, from: from})
	return h
}

// ID implements mqtt.Hook.
func (h *authHook) ID() string { return "fleetgate-auth" }

// Provides implements mqtt.Hook.
func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// Stages of Observer.AccessRefused.
const (
	stageConnect   = "connect"
	stagePublish   = "publish"
	stageSubscribe = "subscribe"
	// stageSession is a live connection or session ended by a reload.
	stageSession = "session"
)

// Reasons a connection is refused (Observer.AccessRefused, stage connect).
const (
	refuseUnknownUser      = "unknown_user"
	refuseBadPassword      = "bad_password"
	refuseNoCredentials    = "no_credentials"
	refuseNoCertIdentity   = "cert_no_identity"
	refuseIdentityMismatch = router.ReasonIdentityMismatch
	refuseWillDenied       = "will_denied"
	refuseBackoff          = "backoff"
	refuseClientIDInvalid  = "client_id_invalid"
	refuseSessionOwned     = "session_owned"
	// refuseRevoked ends a connection whose user left the users file or
	// got a new password (stage session); refuseWillWithdrawn takes back
	// a will the reloaded policy denies.
	refuseRevoked = "credential_revoked"
	// refuseCertRevoked ends a connection (and its session) whose client
	// certificate a changed mqtt.tls.crl_file revokes (stage session).
	refuseCertRevoked = "certificate_revoked"
	// refuseInvalidTopic counts a PUBLISH topic with a wildcard (mochi
	// closes the connection) or an invalid SUBSCRIBE filter (mochi refuses
	// it), which mochi decides before any hook.
	refuseInvalidTopic  = router.ReasonInvalidTopic
	refuseWillWithdrawn = "will_withdrawn"
	// refuseNotAuthorized is the reason of a PUBLISH or SUBSCRIBE the
	// policy denies.
	refuseNotAuthorized = router.ReasonNotAuthorized
)

// Refusal is one label pair of Observer.AccessRefused
// (fleetgate_mqtt_refusals_total{stage,reason}).
type Refusal struct{ Stage, Reason string }

// Refusals returns every stage and reason the broker refuses with: the
// one list of them, which the metrics start at zero so that an alert sees
// the first refusal after a start. A new slice on every call.
func Refusals() []Refusal {
	var rs []Refusal
	for _, r := range []string{refuseClientIDInvalid, refuseBackoff, refuseUnknownUser, refuseBadPassword,
		refuseNoCredentials, refuseNoCertIdentity, refuseIdentityMismatch, refuseWillDenied, refuseSessionOwned} {
		rs = append(rs, Refusal{stageConnect, r})
	}
	for _, r := range []string{refuseNotAuthorized, refuseInvalidTopic, refuseTopicTooLong} {
		rs = append(rs, Refusal{stagePublish, r}, Refusal{stageSubscribe, r})
	}
	return append(rs, Refusal{stageSubscribe, refuseSubscriptionLimit},
		Refusal{stageSession, refuseRevoked}, Refusal{stageSession, refuseCertRevoked}, Refusal{stageSession, refuseWillWithdrawn})
}

// OnPacketRead implements mqtt.Hook. It refuses a PUBLISH to $SYS (see
// refusePublish), counts the invalid topics mochi refuses itself, and
// answers an MQTT 3.1.1 CONNECT with
// an empty client id and clean session 0 with CONNACK 0x02 (identifier
// rejected, MQTT-3.1.3-8); mochi would answer 0x80, which 3.1.1 does not
// have.
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch {
	case cl.Net.Inline:
		return pk, nil
	case pk.FixedHeader.Type == packets.Publish && strings.ContainsAny(pk.TopicName, "+#"):
		// mochi closes the connection (protocol error): count it.
		_, id, _ := h.decide(cl, policy.Publish, pk.TopicName)
		h.refused(cl, stagePublish, refuseInvalidTopic, id.username, id.principal, pk.TopicName)
		return pk, nil
	case pk.FixedHeader.Type == packets.Publish:
		// mochi drops a PUBLISH to $SYS before any hook, unanswered: refuse
		// it here as the policy would, and let mochi drop it.
		if len(pk.TopicName) >= len(mqtt.SysPrefix) && strings.EqualFold(pk.TopicName[:len(mqtt.SysPrefix)], mqtt.SysPrefix) {
			_, id, _ := h.decide(cl, policy.Publish, pk.TopicName)
			h.refusePublish(cl, pk, id, policy.Decision{Rule: sysPublishRule, Index: -1})
		}
		return pk, nil
	case pk.FixedHeader.Type == packets.Subscribe:
		// mochi refuses an invalid filter (SUBACK 0x8F/0x80) before any
		// hook: count it.
		for _, f := range pk.Filters {
			if !mqtt.IsValidFilter(f.Filter, false) {
				_, id, _ := h.decide(cl, policy.Subscribe, f.Filter)
				h.refused(cl, stageSubscribe, refuseInvalidTopic, id.username, id.principal, f.Filter)
			}
		}
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Connect || pk.ProtocolVersion >= 5 || pk.Connect.Clean || pk.Connect.ClientIdentifier != "" {
		return pk, nil
	}
	h.refused(cl, stageConnect, refuseClientIDInvalid, string(pk.Connect.Username), "", "")
	_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: packets.Err3ClientIdentifierNotValid.Code})
	return pk, packets.ErrClientIdentifierNotValid
}

// OnConnectAuthenticate implements mqtt.Hook (mqtt.auth). A refusal gets
// CONNACK 0x86 (MQTT 5) or 0x05 (3.1.1).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	a, ok := h.backoff.admit(h.backoff.keysOf(cl.Net.Remote, user))
	if !ok {
		h.refused(cl, stageConnect, refuseBackoff, user, "", "")
		return false
	}
	defer a.release()
	id, reason := h.authenticate(cl, pk)
	if reason != "" {
		h.refused(cl, stageConnect, reason, user, "", "")
		h.hold(cl, a.fail())
		return false
	}
	if id.username != "" {
		a.release() // its own slot must not keep the key
		h.backoff.succeed(userKey(id.username))
	}
	return h.authorizeConnect(cl, id, user, pk.Connect.Clean)
}

// authorizeConnect checks an authenticated connection's client id, session
// and will, and remembers its identity. A connection that would resume
// (clean false) a session of another principal is refused.
func (h *authHook) authorizeConnect(cl *mqtt.Client, id *identity, user string, clean bool) bool {
	if h.cfg.Auth.EnforceDeviceIdentity && (id.principal == "" || id.principal != cl.ID) {
		h.refused(cl, stageConnect, refuseIdentityMismatch, user, id.principal, "")
		return false
	}
	if prev, ok := h.idents.Load(cl.ID); ok && !clean && resumable(prev.(*identity)) && prev.(*identity).principal != id.principal {
		// The session was filled under its principal's policy (its
		// subscriptions, the messages queued while it was offline): mochi
		// would hand them to this connection unchecked.
		h.refused(cl, stageConnect, refuseSessionOwned, user, id.principal, "", zap.String("session_principal", prev.(*identity).principal))
		return false
	}
	if prev, ok := h.idents.Load(cl.ID); ok && !clean && resumable(prev.(*identity)) {
		h.recheckQueued(prev.(*identity).cl, id, cl)
	}
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 1 {
		if d := h.decideFor(id, cl.ID, policy.Publish, cl.Properties.Will.TopicName); !d.Allow {
			h.refused(cl, stageConnect, refuseWillDenied, user, id.principal, cl.Properties.Will.TopicName, zap.String("rule", d.Rule))
			return false
		}
	}
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 1 {
		id.willTopic = cl.Properties.Will.TopicName
	}
	h.idents.Store(cl.ID, id)
	return true
}

// authenticate establishes the connection's identity, or says why not.
func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) (*identity, string) {
	id := &identity{cl: cl}
	if cert := peerCertificate(cl); cert != nil {
		id.certCN = cert.Subject.CommonName
		id.principal = certIdentity(cert, h.cfg.Auth.CertIdentity)
		if id.principal == "" {
			return nil, refuseNoCertIdentity
		}
		return id, "" // a username, if any, is not an identity here
	}
	user := string(pk.Connect.Username)
	users := h.users.Load()
	// Without a users file, the development default ignores usernames:
	// they are unauthenticated names, not identities.
	if user != "" && (h.cfg.Auth.UsersFile != "" || !h.cfg.Auth.AllowAnonymous) {
		cred := users.lookup(user)
		if cred == nil {
			users.spend(pk.Connect.Password) // as long as a wrong password
			return nil, refuseUnknownUser
		}
		if !cred.verify(pk.Connect.Password) {
			return nil, refuseBadPassword
		}
		id.principal, id.username = user, user
		return id, ""
	}
	if h.cfg.Auth.AllowAnonymous {
		return id, ""
	}
	return nil, refuseNoCredentials
}

// resumable tells whether a new connection of id's client id with clean
// false would inherit id's session: mochi wipes a 3.1.1 clean session
// instead.
func resumable(id *identity) bool {
	return id.cl == nil || !id.cl.Properties.Clean || id.cl.Properties.ProtocolVersion >= 5
}

// certIdentity is the principal a verified certificate gives.
func certIdentity(cert *x509.Certificate, which string) string {
	switch which {
	case "san_dns":
		if len(cert.DNSNames) > 0 {
			return cert.DNSNames[0]
		}
	case "san_uri":
		if len(cert.URIs) > 0 {
			return cert.URIs[0].String()
		}
	default:
		return cert.Subject.CommonName
	}
	return ""
}

// hold delays a refusal by d, unless the broker stops first.
func (h *authHook) hold(cl *mqtt.Client, d time.Duration) {
	if d <= 0 {
		return
	}
	if cl.Net.Conn != nil {
		_ = cl.Net.Conn.SetDeadline(time.Now().Add(d + 5*time.Second)) // room to write the CONNACK after
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.done:
	}
}

// OnACLCheck implements mqtt.Hook. mochi asks it for each SUBSCRIBE filter
// (a refusal: SUBACK 0x87 for MQTT 5, 0x80 for 3.1.1) and for each message
// it is about to deliver to a subscriber, retained ones included (a
// refusal: not delivered). PUBLISH is decided in allowPublish instead.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write || cl.Net.Inline {
		return true
	}
	// A connection being taken over by a newer one of its client id is
	// decided with the newer one's identity: the session, and the messages
	// queued for it, are passing to that connection.
	d, id, _ := h.decide(cl, policy.Subscribe, topic)
	if !d.Allow {
		h.refused(cl, stageSubscribe, refusalReason(d), id.username, id.principal, topic, zap.String("rule", d.Rule))
	}
	// mochi lets one hook's yes win, so the write queue cap is asked here.
	return d.Allow && (h.deliver == nil || h.deliver(cl, topic))
}

// allowPublish decides a PUBLISH (retained or not) before the ingest hook
// takes it. A denied one is answered here and goes nowhere: not to the
// rules, subscribers or the retained store. MQTT 5 gets PUBACK (PUBREC)
// 0x87; MQTT 3.1.1, which has no refusal code, gets a plain PUBACK
// (PUBREC) so that it does not re-send the message forever, and keeps its
// connection; QoS 0 is dropped. The answer goes out in PUBLISH order
// (MQTT-4.6.0-2), after the acks of the connection's earlier messages
// still on their way to Kafka. Every refusal is counted and logged. An
// allowed one comes with cl's authenticated principal ("" when anonymous),
// from the same identity lookup as the decision.
func (h *authHook) allowPublish(cl *mqtt.Client, pk packets.Packet) (principal string, ok bool) {
	if cl.Net.Inline {
		return "", true
	}
	d, id, current := h.decide(cl, policy.Publish, pk.TopicName)
	if !current {
		// A newer connection of this client id has authenticated and mochi
		// is closing this one: leave the message unanswered, so that the
		// terminal re-sends it on its current connection.
		return "", false
	}
	if d.Allow {
		return id.principal, true
	}
	h.refusePublish(cl, pk, id, d)
	return "", false
}

// sysPublishRule is the rule named when a PUBLISH to $SYS is refused.
const sysPublishRule = "($SYS is the broker's)"

// refusePublish counts, logs and answers (QoS 1/2) a PUBLISH that goes
// nowhere: MQTT 5 gets PUBACK (PUBREC) 0x87, MQTT 3.1.1 a plain one.
func (h *authHook) refusePublish(cl *mqtt.Client, pk packets.Packet, id *identity, d policy.Decision) {
	h.refused(cl, stagePublish, refusalReason(d), id.username, id.principal, pk.TopicName,
		zap.String("rule", d.Rule), zap.Uint8("qos", pk.FixedHeader.Qos))
	if pk.FixedHeader.Qos == 0 {
		return
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	if pk.FixedHeader.Qos == 2 {
		ack.FixedHeader.Type = packets.Pubrec
	}
	if cl.Properties.ProtocolVersion >= 5 {
		ack.ReasonCode = packets.ErrNotAuthorized.Code
		ack.Properties.ReasonString = "not authorized by the policy"
	}
	if h.answer != nil {
		h.answer(cl, ack)
	} else {
		writeRefusalAck(cl, ack, h.log)
	}
}

// decide asks the policy in force about cl's request, with the identity
// that last authenticated cl's client id. current is false when that was
// not cl but a newer connection taking cl's session over; without any
// identity the request is denied.
func (h *authHook) decide(cl *mqtt.Client, a policy.Action, topic string) (d policy.Decision, id *identity, current bool) {
	v, ok := h.idents.Load(cl.ID)
	if !ok {
		return policy.Decision{Rule: "(no identity)", Index: -1}, &identity{}, false
	}
	id = v.(*identity)
	return h.decideFor(id, cl.ID, a, topic), id, id.cl == cl
}

func (h *authHook) decideFor(id *identity, clientID string, a policy.Action, topic string) policy.Decision {
	if !h.cfg.Topics.fits(topic) {
		return policy.Decision{Rule: topicTooLongRule, Index: -1}
	}
	p := h.policy.Load().p
	return p.Decide(policy.Request{Principal: id.principal, ClientID: clientID, Username: id.username, CertCN: id.certCN, Action: a, Topic: topic})
}

// OnDisconnect implements mqtt.Hook: a session that ends with its
// connection forgets its identity; a persistent one keeps it, for
// deliveries to it while it is offline.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire && !cl.IsTakenOver() {
		h.forget(cl)
	}
}

// OnClientExpired implements mqtt.Hook.
func (h *authHook) OnClientExpired(cl *mqtt.Client) { h.forget(cl) }

func (h *authHook) forget(cl *mqtt.Client) {
	if v, ok := h.idents.Load(cl.ID); ok && v.(*identity).cl == cl {
		h.idents.CompareAndDelete(cl.ID, v)
	}
}

// refused counts and logs (sampled) one refusal.
func (h *authHook) refused(cl *mqtt.Client, stage, reason, username, principal, topic string, more ...zap.Field) {
	if stage == stageConnect {
		h.obs.ClientRefused()
	}
	h.obs.AccessRefused(stage, reason)
	fields := append([]zap.Field{zap.String("stage", stage), zap.String("reason", reason), zap.String("client_id", cl.ID),
		zap.String("principal", principal), zap.String("username", username), zap.String("remote", cl.Net.Remote)}, more...)
	if topic != "" {
		fields = append(fields, zap.String("mqtt_topic", topic))
	}
	h.log.Info("mqtt refused", fields...)
}

// stop ends the refusals being held.
func (h *authHook) stop() { h.once.Do(func() { close(h.done) }) }
