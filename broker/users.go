package broker

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// loadUsers reads mqtt.auth.users_file: "username password" a line, blank
// lines and # comments ignored. An empty path gives no users.
func loadUsers(path string) (map[string]string, error) {
	users := map[string]string{}
	if path == "" {
		return users, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mqtt.auth.users_file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("mqtt.auth.users_file %s:%d: want \"username password\"", path, n)
		}
		if _, dup := users[fields[0]]; dup {
			return nil, fmt.Errorf("mqtt.auth.users_file %s:%d: user %q is listed twice", path, n, fields[0])
		}
		users[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mqtt.auth.users_file: %w", err)
	}
	return users, nil
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// peerCommonName returns the verified client certificate's common name, or "".
func peerCommonName(cl *mqtt.Client) string {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}
