package broker

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// connectOpts is one CONNECT of a test.
type connectOpts struct {
	version    byte // default 4
	clientID   string
	user, pass string
	noClean    bool
	willTopic  string
	dial       func() (net.Conn, error) // default plain TCP to addr
	authMethod string                   // MQTT 5 authentication method property
}

// connectRaw sends CONNECT and returns the client and the CONNACK's reason
// code (return code for 3.1.1), or 255 when the connection closed without
// one.
func connectRaw(t *testing.T, addr string, o connectOpts) (*rawClient, byte) {
	t.Helper()
	if o.version == 0 {
		o.version = 4
	}
	dial := o.dial
	if dial == nil {
		dial = func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
	}
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: o.version}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: o.version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: o.clientID, Keepalive: 30, Clean: !o.noClean,
			UsernameFlag: o.user != "", Username: []byte(o.user), PasswordFlag: o.pass != "", Password: []byte(o.pass)},
	}
	pk.Properties.AuthenticationMethod = o.authMethod
	if o.willTopic != "" {
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload, pk.Connect.WillQos = true, o.willTopic, []byte("gone"), 1
	}
	c.write(pk)
	ack := c.read(15 * time.Second)
	if ack.FixedHeader.Type != packets.Connack {
		return c, 255
	}
	return c, ack.ReasonCode
}

// connectCode connects with username/password over MQTT 3.1.1 and returns
// the CONNACK's return code.
func connectCode(t *testing.T, addr, clientID, user, pass string) byte {
	t.Helper()
	_, code := connectRaw(t, addr, connectOpts{clientID: clientID, user: user, pass: pass})
	return code
}

// needTool fails the test when an outside tool is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed (Debian package %s): %v", name, pkg, err)
	}
	return p
}

// writeUsersFile writes a users file with one user of each form, made by
// the real tools: D1 (htpasswd -B, bcrypt), D2 (mosquitto_passwd,
// PBKDF2-SHA512) and D3 (plaintext).
func writeUsersFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(needTool(t, "htpasswd", "apache2-utils"), "-nbB", "D1", "s3cret").Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	mp := filepath.Join(dir, "mosquitto")
	if err := os.WriteFile(mp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(needTool(t, "mosquitto_passwd", "mosquitto"), "-b", mp, "D2", "other").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	mline, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "D1:$2y$") || !strings.HasPrefix(string(mline), "D2:$7$") {
		t.Fatalf("unexpected tool output: %q %q", out, mline)
	}
	path := filepath.Join(dir, "users")
	body := "# terminals\n" + strings.TrimSpace(string(out)) + "\n" + strings.TrimSpace(string(mline)) + "\nD3 plain\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noBackoff turns the authentication back-off off, so that refusals in
// tests come at once.
func noBackoff(c *Config) { c.Auth.Backoff.Keys = nil }

func TestAuthentication(t *testing.T) {
	users := writeUsersFile(t)
	cases := []struct {
		name                string
		anonymous, identity bool
		client, user, pass  string
		accepted            bool
	}{
		{"bcrypt user", false, false, "any", "D1", "s3cret", true},
		{"bcrypt user, wrong password", false, false, "any", "D1", "nope", false},
		{"mosquitto_passwd user", false, false, "any", "D2", "other", true},
		{"mosquitto_passwd user, wrong password", false, false, "any", "D2", "s3cret", false},
		{"plaintext user", false, false, "any", "D3", "plain", true},
		{"plaintext user, wrong password", false, false, "any", "D3", "plainx", false},
		{"unknown user", false, false, "any", "D9", "s3cret", false},
		{"unknown user, anonymous allowed", true, false, "any", "D9", "s3cret", false},
		{"anonymous refused", false, false, "any", "", "", false},
		{"anonymous allowed", true, false, "any", "", "", true},
		{"known user, wrong password, anonymous allowed", true, false, "any", "D1", "nope", false},
		{"known user, no password", false, false, "any", "D1", "", false},
		{"identity: client id = username", false, true, "D1", "D1", "s3cret", true},
		{"identity: client id != username", false, true, "D2", "D1", "s3cret", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := &countingObserver{}
			b := startBroker(t, newFakePipeline(), func(cfg *Config) {
				noBackoff(cfg)
				cfg.Auth.AllowAnonymous, cfg.Auth.UsersFile, cfg.Auth.EnforceDeviceIdentity = c.anonymous, users, c.identity
			}, WithObserver(obs))
			code := connectCode(t, b.Addr("tcp"), c.client, c.user, c.pass)
			if got := code == 0; got != c.accepted {
				t.Fatalf("CONNACK code %#x; accepted = %v, want %v", code, got, c.accepted)
			}
			if !c.accepted && code != packets.Err3NotAuthorized.Code {
				t.Fatalf("refused with CONNACK %#x, want 0x05 (not authorized)", code)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if n := obs.refusedCon; n != map[bool]int{true: 0, false: 1}[c.accepted] {
				t.Fatalf("%d connection refusals counted", n)
			}
		})
	}
}

// TestRefusalReasons: each refusal is counted under its reason.
func TestRefusalReasons(t *testing.T) {
	users := writeUsersFile(t)
	obs := &countingObserver{}
	b := startBroker(t, newFakePipeline(), func(cfg *Config) {
		noBackoff(cfg)
		cfg.Auth.AllowAnonymous, cfg.Auth.UsersFile, cfg.Auth.EnforceDeviceIdentity = false, users, true
	}, WithObserver(obs))
	connectCode(t, b.Addr("tcp"), "D9", "D9", "x")
	connectCode(t, b.Addr("tcp"), "D1", "D1", "x")
	connectCode(t, b.Addr("tcp"), "D1", "", "")
	connectCode(t, b.Addr("tcp"), "D2", "D1", "s3cret")
	_, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", willTopic: "alerts/D2"})
	if code != packets.Err3NotAuthorized.Code {
		t.Fatalf("a will to another device's alerts got CONNACK %#x, want 0x05", code)
	}
	if _, code := connectRaw(t, b.Addr("tcp"), connectOpts{clientID: "D1", user: "D1", pass: "s3cret", willTopic: "fleet/D1/status"}); code != 0 {
		t.Fatalf("a will the policy allows got CONNACK %#x", code)
	}
	if u := obs.unlisted(); len(u) > 0 {
		t.Errorf("refusals not in Refusals() (the metrics would not start them at zero): %v", u)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for _, r := range []string{refuseUnknownUser, refuseBadPassword, refuseNoCredentials, refuseIdentityMismatch, refuseWillDenied} {
		if obs.access["connect/"+r] != 1 {
			t.Errorf("connect/%s counted %d times, want 1 (all: %v)", r, obs.access["connect/"+r], obs.access)
		}
	}
}

// TestEmptyClientIDPersistentSession: MQTT 3.1.1 answers CONNACK 0x02
// (identifier rejected) to an empty client id with clean session 0.
func TestEmptyClientIDPersistentSession(t *testing.T) {
	b := startBroker(t, newFakePipeline(), nil)
	if _, code := connectRaw(t, b.Addr("tcp"), connectOpts{noClean: true}); code != packets.Err3ClientIdentifierNotValid.Code {
		t.Fatalf("CONNACK %#x, want 0x02", code)
	}
	if _, code := connectRaw(t, b.Addr("tcp"), connectOpts{}); code != 0 {
		t.Fatalf("an empty client id with clean session got CONNACK %#x, want 0 (an id is assigned)", code)
	}
}

func TestUsersFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"three fields":     "D1 pw extra\n",
		"listed twice":     "D1 a\nD1 b\n",
		"md5 htpasswd":     "D1:$apr1$abc$def\n",
		"sha1 htpasswd":    "D1:{SHA}abc=\n",
		"old mosquitto":    "D1:$6$c2FsdA==$aGFzaA==\n",
		"bad bcrypt":       "D1:$2y$05$short\n",
		"bad pbkdf2 iter":  "D1:$7$x$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==\n",
		"bad pbkdf2 salt":  "D1:$7$101$!!$aGFzaGhhc2hoYXNoaGFzaA==\n",
		"pbkdf2 too short": "D1:$7$101$c2FsdA==$aGFzaA==\n",
		"empty user":       ":$2y$05$vGsW0x/.Uv2PfktfNN3nnurZQHFEtT18BGvHdGpWcM6OPzemERepS\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.WriteFile(path, []byte(body), 0o600)
			if _, err := loadUsers(path); err == nil || !strings.Contains(err.Error(), path+":") {
				t.Fatalf("users file %q: got %v, want an error naming %s:LINE", body, err, path)
			}
		})
	}
	if _, err := loadUsers(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing users file was accepted")
	}
}

func FuzzUsersFile(f *testing.F) {
	f.Add([]byte("D1:$2y$05$vGsW0x/.Uv2PfktfNN3nnurZQHFEtT18BGvHdGpWcM6OPzemERepS\nD2 plain\n"))
	f.Add([]byte("devA:$7$101$TUL7ewB8FDXdzRnf$8Y3GSavC9V4QJUvRnDnsT11AEMS06BoaWGhWXBIQwHAl7e6xyb1yTq/lhgvPa/qaRICaMyAzzqNAGSInyJQ3kA==\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u := &userTable{creds: map[string]credential{}}
		if err := u.parse(b); err != nil {
			return
		}
		for name, c := range u.creds {
			if name == "" || c == nil {
				t.Fatalf("user %q with credential %v", name, c)
			}
		}
	})
}

// TestRefusalsAreLogged: a refusal is logged with the client id,
// principal, username and remote address, and the log is sampled so that a
// flood of refusals cannot flood it.
func TestRefusalsAreLogged(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	noBackoff(&cfg)
	// Plaintext users only: an unknown username then has no hash to be
	// checked against (users.decoy), so the 100 refusals come fast.
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("D1 s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.AllowAnonymous, cfg.Auth.UsersFile = false, users
	b, err := New(cfg, newFakePipeline(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	start := time.Now()
	for range 100 {
		connectCode(t, b.Addr("tcp"), "C1", "D9", "wrong")
	}
	// 10 lines a second, then 1 in 100.
	allowed := 11 * (int(time.Since(start)/time.Second) + 1)
	refusals := logs.FilterMessage("mqtt refused").All()
	if len(refusals) == 0 || len(refusals) > min(allowed, 50) {
		t.Fatalf("%d refusal lines for 100 refusals in %s; want 1 to %d", len(refusals), time.Since(start), min(allowed, 50))
	}
	f := refusals[0].ContextMap()
	if f["client_id"] != "C1" || f["username"] != "D9" || f["reason"] != refuseUnknownUser || f["stage"] != stageConnect ||
		!strings.HasPrefix(f["remote"].(string), "127.0.0.1:") {
		t.Fatalf("refusal logged with %v", f)
	}
	if _, ok := f["principal"]; !ok {
		t.Fatalf("refusal logged without a principal field: %v", f)
	}
}
