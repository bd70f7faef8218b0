package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetgate/fleetgate/policy"
)

// TestDeniedPublishAckKeepsOrder: a PUBLISH the policy denies is answered
// in PUBLISH order (MQTT-4.6.0-2), after the earlier messages of the
// connection that are still on their way to Kafka, not at once.
func TestDeniedPublishAckKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		version byte
		user    string
		pass    string
		denied  byte // reason code of the denied message's PUBACK
	}{
		{4, "D1", "s3cret", 0},
		{5, "D2", "other", packets.ErrNotAuthorized.Code},
	} {
		t.Run(fmt.Sprintf("mqtt-v%d", tc.version), func(t *testing.T) {
			p := newFakePipeline()
			b := securedBroker(t, p, nil)
			c := login(t, b, tc.version, tc.user, tc.pass)
			c.publish(1, 1, "report", []byte(`{"device_no":"`+tc.user+`"}`))
			p.waitFor(t, 1)
			c.publish(2, 1, "alerts/someone-else", []byte(`{}`))
			if pk := c.read(300 * time.Millisecond); pk.FixedHeader.Type != 0 {
				t.Fatalf("got packet type %d id %d before message 1 was stored: acks out of PUBLISH order", pk.FixedHeader.Type, pk.PacketID)
			}
			p.complete(0, nil)
			for _, want := range []struct {
				id   uint16
				code byte
			}{{1, 0}, {2, tc.denied}} {
				pk := c.read(2 * time.Second)
				if pk.FixedHeader.Type != packets.Puback || pk.PacketID != want.id || pk.ReasonCode != want.code {
					t.Fatalf("got type %d id %d reason %#x, want PUBACK %d reason %#x", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, want.id, want.code)
				}
			}
			if n := p.count(); n != 1 {
				t.Fatalf("pipeline got %d messages, want 1 (the denied one is not stored)", n)
			}
		})
	}
}

// TestBackoffKeysAreShort: the back-off keeps max_tracked keys, and a key
// holds a username the client chose (up to mqtt.max_packet_bytes): a long
// one is kept as its hash, so max_tracked bounds the table's memory.
func TestBackoffKeysAreShort(t *testing.T) {
	b, _ := testBackoff()
	long := strings.Repeat("u", 200<<10)
	keys := b.keysOf("10.0.0.1:1", long)
	failOnce(t, b, keys)
	for k := range b.keys {
		if len(k) > maxKeyBytes {
			t.Fatalf("a back-off key of %d bytes, want at most %d", len(k), maxKeyBytes)
		}
	}
	// The same long username is the same key; another is another.
	if k2 := b.keysOf("10.0.0.1:1", long); k2[1] != keys[1] {
		t.Fatalf("keys of one username differ: %q, %q", keys[1], k2[1])
	}
	if k3 := b.keysOf("10.0.0.1:1", long+"x"); k3[1] == keys[1] {
		t.Fatal("two long usernames share a key")
	}
	// A successful login forgets the long username's failures too.
	b.succeed(userKey(long))
	if _, ok := b.keys[keys[1]]; ok {
		t.Fatal("succeed did not forget the long username's failures")
	}
}

// countingCredential counts its checks.
type countingCredential struct{ n *int }

func (c countingCredential) verify([]byte) bool { *c.n++; return false }

// TestUnknownUserCostsAHashCheck: refusing an unknown username checks the
// password against a stored hash (its answer ignored), as a wrong password
// does, so that the time of the refusal does not tell which usernames
// exist.
func TestUnknownUserCostsAHashCheck(t *testing.T) {
	var checks int
	users := &userTable{creds: map[string]credential{"D1": countingCredential{&checks}}}
	if err := users.parse([]byte("D9:$2y$04$abcdefghijklmnopqrstuuLmOs/VbtvM3WRnKd8QfWbJxiUf.JS1.\n")); err != nil {
		t.Fatal(err)
	}
	users.decoy = countingCredential{&checks}
	h := newAuthHook(Config{Auth: AuthConfig{UsersFile: "users"}}, users, nil, "", nil, zap.NewNop())
	for _, user := range []string{"D1", "nobody"} {
		pk := packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), Password: []byte("guess")}}
		before := checks
		if _, reason := h.authenticate(&mqtt.Client{}, pk); reason == "" || checks != before+1 {
			t.Errorf("%s: reason %q, %d password checks, want a refusal after 1", user, reason, checks-before)
		}
	}
	// The decoy a users file gets is one of its hashes.
	parsed := &userTable{creds: map[string]credential{}}
	if err := parsed.parse([]byte("P plain\nD9:$2y$04$abcdefghijklmnopqrstuuLmOs/VbtvM3WRnKd8QfWbJxiUf.JS1.\n")); err != nil {
		t.Fatal(err)
	}
	if _, ok := parsed.decoy.(bcryptHash); !ok {
		t.Fatalf("decoy %T, want the file's bcrypt hash", parsed.decoy)
	}
}

// TestUsersFileHashEdges: hashes no password can match, or whose check
// would take the CPU for minutes, are refused at load, naming the line; a
// UTF-8 byte-order mark does not become part of the first username.
func TestUsersFileHashEdges(t *testing.T) {
	const good = "$2y$05$ZiSNcyXKJ.CpEUCyd8pTqOpir2/PSdo1FqlYyUCXWAcIdcCvUC/f2"
	for _, tc := range []struct{ name, line, want string }{
		{"bcrypt with trailing text", "u:" + good + "garbage", "bcrypt hash"},
		{"bcrypt with a second field", "u:" + good + " x", "bcrypt hash"},
		{"bcrypt outside its alphabet", "u:" + good[:59] + "!", "bcrypt hash"},
		{"bcrypt cost 18", "u:$2y$18$" + good[7:], "cost 18"},
		{"bcrypt cost 31", "u:$2y$31$" + good[7:], "cost 31"},
		{"pbkdf2 two billion iterations", "u:$7$2000000000$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==", "iterations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &userTable{creds: map[string]credential{}}
			err := u.parse([]byte("# c\n" + tc.line + "\n"))
			if err == nil || !strings.HasPrefix(err.Error(), "2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one at line 2 about %q", err, tc.want)
			}
		})
	}
	u := &userTable{creds: map[string]credential{}}
	if err := u.parse([]byte("\xef\xbb\xbfD1 pw\r\nD2:" + good + "\r\n")); err != nil {
		t.Fatal(err)
	}
	if u.lookup("D1") == nil || u.lookup("D2") == nil {
		t.Fatalf("users %v, want D1 and D2", u.creds)
	}
}

// TestSessionResumedOnlyByItsPrincipal: without enforce_device_identity a
// client id is not bound to a principal, but a persistent session is: it
// was filled under its principal's policy (subscriptions, messages queued
// while offline), so another principal may not resume it (CONNACK
// refused, reason session_owned); with a clean session it may connect and
// starts empty.
func TestSessionResumedOnlyByItsPrincipal(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "acl.yaml")
	if err := os.WriteFile(pol, []byte(`groups: {operators: [D1]}
rules:
  - {group: operators, action: subscribe, topics: ["#"], effect: allow}
  - {principal: "*", action: subscribe, topics: ["cmd/${principal}/#"], effect: allow}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), func(c *Config) {
		c.Auth.EnforceDeviceIdentity = false
		c.ACLFile = pol
	}, WithObserver(obs))
	ops, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "console", user: "D1", pass: "s3cret", noClean: true})
	if code != 0 {
		t.Fatalf("operator CONNACK %#x", code)
	}
	if codes := ops.subscribe(1, "alerts/#"); codes[0] != 1 {
		t.Fatalf("operator SUBACK %v", codes)
	}
	ops.conn.Close()
	waitFor(t, "console offline", func() bool { cl, ok := b.server.Clients.Get("console"); return ok && cl.Closed() })
	if err := b.Publish("alerts/D7", []byte(`{"secret":1}`), 1); err != nil {
		t.Fatal(err)
	}
	// Another principal resuming the operator's session is refused...
	thief, code := connectRaw(t, b.Addr("tcp"), connectOpts{version: 5, clientID: "console", user: "D2", pass: "other", noClean: true})
	if code == 0 {
		if pk := thief.read(time.Second); pk.FixedHeader.Type == packets.Publish {
			t.Fatalf("D2 resumed the operator's session and got %q: %s", pk.TopicName, pk.Payload)
		}
		t.Fatal("D2 resumed the operator's session (CONNACK 0)")
	}
	if n := obs.accessCount("connect/session_owned"); n != 1 {
		t.Errorf("connect/session_owned counted %d, want 1", n)
	}
	// ...and the session is still the operator's.
	ops, code = connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "console", user: "D1", pass: "s3cret", noClean: true})
	if code != 0 {
		t.Fatalf("operator reconnect CONNACK %#x", code)
	}
	if pk := ops.read(3 * time.Second); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "alerts/D7" {
		t.Fatalf("operator's queued alert: type %d topic %q", pk.FixedHeader.Type, pk.TopicName)
	}
	ops.conn.Close()
	waitFor(t, "console offline", func() bool { cl, ok := b.server.Clients.Get("console"); return ok && cl.Closed() })
	// A clean session by another principal is allowed: it starts empty.
	c, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "console", user: "D2", pass: "other"})
	if code != 0 {
		t.Fatalf("clean session CONNACK %#x", code)
	}
	if err := b.Publish("alerts/D8", []byte(`{}`), 1); err != nil {
		t.Fatal(err)
	}
	if pk := c.read(500 * time.Millisecond); pk.FixedHeader.Type != 0 {
		t.Fatalf("clean session of D2 got type %d topic %q", pk.FixedHeader.Type, pk.TopicName)
	}
}

func (o *countingObserver) accessCount(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.access[key]
}

// TestUsersReloadEndsRevokedConnections: a user removed from the users
// file (a stolen terminal), or whose password changed, loses its live
// connection at the reload, and its offline session gets no more
// deliveries; other users stay connected.
func TestUsersReloadEndsRevokedConnections(t *testing.T) {
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), nil, WithObserver(obs))
	path := b.cfg.Auth.UsersFile
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d1, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", noClean: true})
	if code != 0 {
		t.Fatalf("D1 CONNACK %#x", code)
	}
	if codes := d1.subscribe(1, "cmd/D1/#"); codes[0] != 1 {
		t.Fatalf("D1 SUBACK %v", codes)
	}
	d2 := login(t, b, 5, "D2", "other")
	d3 := login(t, b, 4, "D3", "plain")
	var kept []string
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(l, "D1:"): // removed
		case strings.HasPrefix(l, "D3 "):
			kept = append(kept, "D3 changed") // new password
		default:
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadUsers(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*rawClient{"D1": d1, "D3": d3} {
		if _, closed := readUntilClosed(c, 3*time.Second); !closed {
			t.Errorf("%s still connected after its credential was revoked", name)
		}
	}
	// D1's persistent session is emptied: nobody inherits what it held.
	if cl, ok := b.server.Clients.Get("D1"); ok && (cl.State.Subscriptions.Len() > 0 || cl.State.Inflight.Len() > 0) {
		t.Fatalf("the revoked session keeps %d subscriptions, %d messages", cl.State.Subscriptions.Len(), cl.State.Inflight.Len())
	}
	if cl, ok := b.server.Clients.Get("D2"); !ok || cl.Closed() {
		t.Fatal("D2, unchanged, was disconnected")
	}
	if codes := d2.subscribe(1, "cmd/D2/#"); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("D2 SUBACK %v", codes)
	}
	if n := obs.accessCount("session/credential_revoked"); n != 2 {
		t.Errorf("session/credential_revoked counted %d, want 2", n)
	}
}

// TestPolicyReloadWithdrawsWill: a will allowed at CONNECT and denied by a
// later policy is not published when the connection drops.
func TestPolicyReloadWithdrawsWill(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl.yaml")
	write := func(body string) {
		if err := os.WriteFile(acl, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const watch = `  - {principal: D2, action: subscribe, topics: ["fleet/#"], effect: allow}` + "\n"
	write("rules:\n" + watch + `  - {principal: "*", action: publish, topics: ["fleet/${clientid}/#"], effect: allow}` + "\n")
	b := securedBroker(t, newFakePipeline(), func(c *Config) { c.ACLFile = acl })
	d2 := login(t, b, 4, "D2", "other")
	if codes := d2.subscribe(1, "fleet/#"); codes[0] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	d1, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", willTopic: "fleet/D1/status"})
	if code != 0 {
		t.Fatalf("D1 with its will: CONNACK %#x", code)
	}
	write("rules:\n" + watch)
	if err := b.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	d1.conn.Close() // not a DISCONNECT: the will would be sent
	if pk := d2.read(time.Second); pk.FixedHeader.Type != 0 {
		t.Fatalf("D2 got type %d topic %q: a will the policy now denies was published", pk.FixedHeader.Type, pk.TopicName)
	}
}

// TestTopicAliasIsDecidedResolved: an MQTT 5 PUBLISH that names its topic
// only by a topic alias is decided, and stored, under the topic the alias
// stands for: re-pointing an alias at a denied topic and then using it
// does not get around the policy.
func TestTopicAliasIsDecidedResolved(t *testing.T) {
	p := newFakePipeline()
	b := securedBroker(t, p, nil)
	c := login(t, b, 5, "D2", "other")
	send := func(id uint16, topic string, alias uint16) {
		c.write(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id, TopicName: topic,
			Properties: packets.Properties{TopicAlias: alias, TopicAliasFlag: true}, Payload: []byte(`{"device_no":"D2"}`),
		})
	}
	expect := func(id uint16, code byte) {
		t.Helper()
		if pk := c.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != id || pk.ReasonCode != code {
			t.Fatalf("packet %d: got type %d id %d reason %#x, want PUBACK reason %#x", id, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode, code)
		}
	}
	send(1, "report", 1) // alias 1 = report, allowed
	p.waitFor(t, 1)
	p.complete(0, nil)
	expect(1, 0)
	send(2, "alerts/D1", 1) // alias 1 = alerts/D1, denied
	expect(2, packets.ErrNotAuthorized.Code)
	send(3, "", 1) // alias 1 alone: alerts/D1
	expect(3, packets.ErrNotAuthorized.Code)
	send(4, "", 1)
	expect(4, packets.ErrNotAuthorized.Code)
	send(5, "report", 2)
	send(6, "", 2) // alias 2 alone: report
	p.waitFor(t, 3)
	p.complete(1, nil)
	p.complete(2, nil)
	expect(5, 0)
	expect(6, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.got {
		if m.Topic != "report" {
			t.Errorf("message %d stored under topic %q, want report", i, m.Topic)
		}
	}
	if len(p.got) != 3 {
		t.Errorf("%d messages stored, want 3", len(p.got))
	}
}

// TestAuthPacketChangesNothing: MQTT 5 enhanced authentication is not
// offered. An AUTH packet after CONNECT (re-authentication, say as
// another user) is ignored: the connection keeps its identity and its
// policy; a CONNECT naming an authentication method still needs the
// users-file password.
func TestAuthPacketChangesNothing(t *testing.T) {
	b := securedBroker(t, newFakePipeline(), nil)
	c := login(t, b, 5, "D2", "other")
	// AUTH, reason 0x19 (re-authenticate), properties: authentication
	// method "PLAIN" (0x15) and data "\x00D1\x00s3cret" (0x16).
	method, data := "PLAIN", "\x00D1\x00s3cret"
	props := append([]byte{0x15, 0, byte(len(method))}, method...)
	props = append(append(props, 0x16, 0, byte(len(data))), data...)
	body := append([]byte{0x19, byte(len(props))}, props...)
	if _, err := c.conn.Write(append([]byte{0xF0, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	codes := c.subscribe(1, "cmd/D2/#", "cmd/D1/#")
	if len(codes) != 2 || codes[0] != 1 || codes[1] != packets.ErrNotAuthorized.Code {
		t.Fatalf("after AUTH: SUBACK %v, want [1 0x87] (still D2)", codes)
	}
	if _, id, current := b.auth.decide(mustClient(t, b, "D2"), policy.Publish, "report"); !current || id.principal != "D2" {
		t.Fatalf("principal after AUTH %q (current identity: %v)", id.principal, current)
	}
	for _, pass := range []string{"", "wrong"} {
		conn, code := connectRaw(t, b.Addr("tcp"), connectOpts{version: 5, clientID: "D1", user: "D1", pass: pass, authMethod: "SCRAM-SHA-256"})
		if code == 0 {
			t.Fatalf("CONNECT with an authentication method and password %q accepted", pass)
		}
		conn.conn.Close()
	}
}

func mustClient(t *testing.T, b *Broker, id string) *mqtt.Client {
	t.Helper()
	cl, ok := b.server.Clients.Get(id)
	if !ok {
		t.Fatalf("no client %s", id)
	}
	return cl
}

// TestSysPublishIsAnswered: mochi drops a PUBLISH to $SYS/... before any
// hook sees it, without an acknowledgement (a QoS 1 terminal would wait
// for ever, and nothing counted it). It is refused like a denied PUBLISH:
// answered in order, counted and logged.
func TestSysPublishIsAnswered(t *testing.T) {
	obs := &countingObserver{}
	p := newFakePipeline()
	b := securedBroker(t, p, nil, WithObserver(obs))
	v4 := login(t, b, 4, "D1", "s3cret")
	v5 := login(t, b, 5, "D2", "other")
	for i, topic := range []string{"$SYS/broker/clients/connected", "$sys/x"} {
		id := uint16(i + 1)
		v4.publish(id, 1, topic, []byte(`1`))
		if pk := v4.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != id || pk.ReasonCode != 0 {
			t.Fatalf("v4 %q: got type %d id %d reason %#x, want PUBACK", topic, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
		}
		v5.publish(id, 1, topic, []byte(`1`))
		if pk := v5.read(2 * time.Second); pk.FixedHeader.Type != packets.Puback || pk.PacketID != id || pk.ReasonCode != packets.ErrNotAuthorized.Code {
			t.Fatalf("v5 %q: got type %d id %d reason %#x, want PUBACK 0x87", topic, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
		}
	}
	if n := obs.accessCount("publish/not_authorized"); n != 4 {
		t.Errorf("publish/not_authorized counted %d, want 4", n)
	}
	if n := p.count(); n != 0 {
		t.Errorf("%d $SYS messages stored", n)
	}
}

// TestTopicLimits: mochi's topic tree costs CPU quadratic in a filter's
// levels and about 600 bytes a level (a 4,000-level filter under a
// device's own cmd/D1/# took 0.44 s and 2.4 MiB; the 128k levels a
// 256 KiB packet holds would take minutes and 77 MiB), and a client could
// add subscriptions without end. Topics and filters beyond
// mqtt.topics.max_levels or max_bytes are refused like a denied request;
// subscriptions beyond max_subscriptions per client get SUBACK 0x8F
// (MQTT 5) or 0x80 (3.1.1). All are counted.
func TestTopicLimits(t *testing.T) {
	obs := &countingObserver{}
	p := newFakePipeline()
	b := securedBroker(t, p, func(c *Config) { c.Topics.MaxSubscriptions = 3 }, WithObserver(obs))
	v4 := login(t, b, 4, "D1", "s3cret")
	v5 := login(t, b, 5, "D2", "other")
	deep := strings.Repeat("/a", 4000)
	long := "/" + strings.Repeat("x", 2000)
	for _, c := range []struct {
		cl     *rawClient
		id     string
		denied byte
	}{{v4, "D1", 0x80}, {v5, "D2", packets.ErrNotAuthorized.Code}} {
		start := time.Now()
		codes := c.cl.subscribe(1, "cmd/"+c.id+deep, "cmd/"+c.id+long, "cmd/"+c.id+"/ok")
		if len(codes) != 3 || codes[0] != c.denied || codes[1] != c.denied || codes[2] != 1 {
			t.Fatalf("%s: SUBACK %v, want [%#x %#x 1]", c.id, codes, c.denied, c.denied)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("%s: the deep SUBSCRIBE took %s", c.id, el)
		}
		ack := packets.Puback
		if c.denied == 0x80 {
			c.denied = 0
		}
		c.cl.publish(2, 1, "fleet/"+c.id+deep, []byte(`{}`))
		if pk := c.cl.read(2 * time.Second); pk.FixedHeader.Type != ack || pk.PacketID != 2 || pk.ReasonCode != c.denied {
			t.Fatalf("%s deep publish: type %d id %d reason %#x", c.id, pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
		}
	}
	if n := p.count(); n != 0 {
		t.Fatalf("%d deep messages stored", n)
	}
	// Three subscriptions each; a fourth is refused, a repeated one is not.
	wantLimit := map[byte]byte{4: 0x80, 5: packets.ErrTopicFilterInvalid.Code}
	for _, c := range []struct {
		cl *rawClient
		id string
		v  byte
	}{{v4, "D1", 4}, {v5, "D2", 5}} {
		codes := c.cl.subscribe(3, "cmd/"+c.id+"/a", "cmd/"+c.id+"/b", "cmd/"+c.id+"/c", "cmd/"+c.id+"/ok")
		if len(codes) != 4 || codes[0] != 1 || codes[1] != 1 || codes[2] != wantLimit[c.v] || codes[3] != 1 {
			t.Fatalf("%s: SUBACK %v, want [1 1 %#x 1]", c.id, codes, wantLimit[c.v])
		}
	}
	if n := obs.accessCount("subscribe/subscription_limit"); n != 2 {
		t.Errorf("subscribe/subscription_limit counted %d, want 2", n)
	}
	if n := obs.accessCount("subscribe/topic_too_long") + obs.accessCount("publish/topic_too_long"); n != 6 {
		t.Errorf("topic_too_long counted %d, want 6", n)
	}
}

// TestCredentialEdges: a username without a password, a password without
// a username (MQTT 5 allows the latter), a password with NUL bytes: each
// is refused with its reason; a plaintext users file is warned about.
func TestCredentialEdges(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	noBackoff(&cfg)
	cfg.Auth.AllowAnonymous, cfg.Auth.UsersFile = false, writeUsersFile(t)
	obs := &countingObserver{}
	b, err := New(cfg, newFakePipeline(), zap.New(core), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	if w := logs.FilterMessageSnippet("plaintext passwords").All(); len(w) != 1 || w[0].ContextMap()["plaintext_users"] != int64(1) {
		t.Errorf("plaintext warning: %v", w)
	}
	for _, c := range []struct {
		version    byte
		user, pass string
		reason     string
	}{
		{4, "D1", "", "connect/bad_password"},
		{5, "D1", "", "connect/bad_password"},
		{5, "", "s3cret", "connect/no_credentials"},
		{4, "D1", "s3cret\x00", "connect/bad_password"},
		{4, "D3", "plain\x00", "connect/bad_password"},
		{4, "D1\x00", "s3cret", "connect/unknown_user"},
	} {
		before := obs.accessCount(c.reason)
		if _, code := connectRaw(t, b.Addr("tcp"), connectOpts{version: c.version, clientID: "x", user: c.user, pass: c.pass}); code == 0 || code == 255 {
			t.Errorf("v%d user %q pass %q: CONNACK %#x, want a refusal", c.version, c.user, c.pass, code)
		}
		if obs.accessCount(c.reason) != before+1 {
			t.Errorf("v%d user %q pass %q: not counted as %s", c.version, c.user, c.pass, c.reason)
		}
	}
}

// TestQueuedMessagesRecheckedOnResume: messages queued for an offline
// persistent session are re-checked against the policy in force when the
// session resumes: those a reload has since denied are dropped, not
// re-sent (mochi re-sends its in-flight window without asking).
func TestQueuedMessagesRecheckedOnResume(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl.yaml")
	write := func(body string) {
		if err := os.WriteFile(acl, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`rules: [{principal: "*", action: subscribe, topics: ["alerts/#"], effect: allow}]`)
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), func(c *Config) { c.ACLFile = acl }, WithObserver(obs))
	dial := func() *rawClient {
		c, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", noClean: true})
		if code != 0 {
			t.Fatalf("CONNACK %#x", code)
		}
		return c
	}
	c := dial()
	if codes := c.subscribe(1, "alerts/#"); codes[0] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	c.conn.Close()
	waitFor(t, "D1 offline", func() bool { cl, ok := b.server.Clients.Get("D1"); return ok && cl.Closed() })
	b.Publish("alerts/D7", []byte(`{"other":1}`), 1)
	b.Publish("alerts/D1", []byte(`{"own":1}`), 1)
	write(`rules: [{principal: "*", action: subscribe, topics: ["alerts/${clientid}"], effect: allow}]`)
	if err := b.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	c = dial()
	var got []string
	for pk := c.read(time.Second); pk.FixedHeader.Type == packets.Publish; pk = c.read(500 * time.Millisecond) {
		got = append(got, pk.TopicName)
	}
	if len(got) != 1 || got[0] != "alerts/D1" {
		t.Fatalf("on resume got %v, want only alerts/D1", got)
	}
}

// TestInvalidTopicsAreCounted: what mochi refuses before any hook (an
// invalid SUBSCRIBE filter; a PUBLISH topic with a wildcard, for which it
// closes the connection) is counted and logged too.
func TestInvalidTopicsAreCounted(t *testing.T) {
	obs := &countingObserver{}
	b := securedBroker(t, newFakePipeline(), nil, WithObserver(obs))
	c := login(t, b, 5, "D2", "other")
	if codes := c.subscribe(1, "#/", "cmd/D2/#"); len(codes) != 2 || codes[0] != packets.ErrTopicFilterInvalid.Code || codes[1] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	c.publish(2, 1, "fleet/D2/+", []byte(`{}`))
	if _, closed := readUntilClosed(c, 3*time.Second); !closed {
		t.Fatal("a PUBLISH with a wildcard topic kept its connection")
	}
	if s, p := obs.accessCount("subscribe/invalid_topic"), obs.accessCount("publish/invalid_topic"); s != 1 || p != 1 {
		t.Fatalf("invalid_topic counted subscribe %d, publish %d; want 1 and 1", s, p)
	}
}
