package broker

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// connectCode connects with username/password and returns the CONNACK's
// reason code (MQTT 3.1.1 return code), or 255 when the connection closed
// without one.
func connectCode(t *testing.T, addr, clientID, user, pass string) byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: 4}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 30, Clean: true,
			UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass)},
	}
	c.write(pk)
	ack := c.read(3 * time.Second)
	if ack.FixedHeader.Type != packets.Connack {
		return 255
	}
	return ack.ReasonCode
}

func TestAuthentication(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# terminals\nD1 s3cret\nD2 other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                string
		anonymous, identity bool
		client, user, pass  string
		accepted            bool
	}{
		{"known user", false, false, "any", "D1", "s3cret", true},
		{"wrong password", false, false, "any", "D1", "nope", false},
		{"unknown user", false, false, "any", "D9", "s3cret", false},
		{"anonymous refused", false, false, "any", "", "", false},
		{"anonymous allowed", true, false, "any", "", "", true},
		{"known user, wrong password, anonymous allowed", true, false, "any", "D1", "nope", false},
		{"identity: client id = username", false, true, "D1", "D1", "s3cret", true},
		{"identity: client id != username", false, true, "D2", "D1", "s3cret", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, newFakePipeline(), func(cfg *Config) {
				cfg.Auth = AuthConfig{AllowAnonymous: c.anonymous, UsersFile: users, EnforceDeviceIdentity: c.identity}
			})
			code := connectCode(t, b.Addr("tcp"), c.client, c.user, c.pass)
			if got := code == 0; got != c.accepted {
				t.Fatalf("CONNACK code %#x; accepted = %v, want %v", code, got, c.accepted)
			}
		})
	}
}

func TestUsersFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"three fields": "D1 pw extra\n",
		"listed twice": "D1 a\nD1 b\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			os.WriteFile(path, []byte(body), 0o600)
			if _, err := loadUsers(path); err == nil {
				t.Fatalf("users file %q accepted", body)
			}
		})
	}
	if _, err := loadUsers(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing users file was accepted")
	}
}
