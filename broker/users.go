package broker

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pbkdf2"
)

// userTable is one loaded mqtt.auth.users_file. It is immutable: a reload
// builds a new one.
type userTable struct {
	creds map[string]credential
	// plaintext counts the users whose password is stored in clear (the
	// old "username password" form), for the start-up warning.
	plaintext int
	// decoy is a hashed credential of the file (nil when it has none),
	// checked for an unknown username with its answer ignored: refusing an
	// unknown username then takes as long as refusing a wrong password,
	// so the time of the answer does not tell which usernames exist.
	decoy credential
	// stored is each user's credential as the file wrote it: a reload
	// ends the connections of users whose line went or changed.
	stored map[string]string
}

// credential is one user's stored password.
type credential interface {
	// verify tells whether password is the user's.
	verify(password []byte) bool
}

// bcryptHash is an htpasswd -B line: user:$2y$cost$...
type bcryptHash []byte

func (h bcryptHash) verify(pw []byte) bool { return bcrypt.CompareHashAndPassword(h, pw) == nil }

// pbkdf2Hash is a mosquitto_passwd line (mosquitto 2.0's default,
// sha512-pbkdf2): user:$7$iterations$base64(salt)$base64(hash), the hash
// being PBKDF2-HMAC-SHA512 of the password with the decoded salt.
type pbkdf2Hash struct {
	iterations int
	salt, hash []byte
}

func (h pbkdf2Hash) verify(pw []byte) bool {
	got := pbkdf2.Key(pw, h.salt, h.iterations, len(h.hash), sha512.New)
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}

// plainPassword is the old "username password" form.
type plainPassword []byte

func (p plainPassword) verify(pw []byte) bool { return subtle.ConstantTimeCompare(p, pw) == 1 }

// unchanged tells whether user has the same stored credential in u as in
// old.
func (u *userTable) unchanged(old *userTable, user string) bool {
	if u == nil || old == nil {
		return false
	}
	now, ok := u.stored[user]
	return ok && now == old.stored[user]
}

// lookup returns the user's credential, or nil for an unknown user.
func (u *userTable) lookup(user string) credential {
	if u == nil || user == "" {
		return nil
	}
	return u.creds[user]
}

// spend checks password against the decoy and ignores the answer (the
// unknown-username path; see decoy).
func (u *userTable) spend(password []byte) {
	if u != nil && u.decoy != nil {
		u.decoy.verify(password)
	}
}

// loadUsers reads mqtt.auth.users_file. A line is one of
//
//	username:$2y$...                     htpasswd -B (bcrypt; $2a$, $2b$ too)
//	username:$7$iterations$salt$hash     mosquitto_passwd (PBKDF2-SHA512)
//	username password                    plaintext (deprecated: warned at start)
//
// Blank lines and # comments are ignored. An empty path gives no users.
// Errors name the file and line; a hash of another kind (htpasswd's MD5 or
// SHA-1, mosquitto's old $6$) is refused rather than read as a password.
func loadUsers(path string) (*userTable, error) {
	users := &userTable{creds: map[string]credential{}}
	if path == "" {
		return users, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mqtt.auth.users_file: %w", err)
	}
	if err := users.parse(b); err != nil {
		return nil, fmt.Errorf("mqtt.auth.users_file %s:%w", path, err)
	}
	return users, nil
}

// parse adds the users of a users file's content; errors start with the
// line number.
func (u *userTable) parse(b []byte) error {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark (Windows editors)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, cred, plain, err := parseUserLine(line)
		if err != nil {
			return fmt.Errorf("%d: %w", n, err)
		}
		if _, dup := u.creds[user]; dup {
			return fmt.Errorf("%d: user %q is listed twice", n, user)
		}
		u.creds[user] = cred
		if u.stored == nil {
			u.stored = map[string]string{}
		}
		u.stored[user] = line
		if plain {
			u.plaintext++
		} else if u.decoy == nil {
			u.decoy = cred
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("0: %w", err)
	}
	return nil
}

func parseUserLine(line string) (user string, cred credential, plain bool, err error) {
	if user, hash, ok := strings.Cut(line, ":"); ok && !strings.ContainsAny(user, " \t") {
		if user == "" {
			return "", nil, false, fmt.Errorf("empty username")
		}
		cred, err := parseHash(hash)
		return user, cred, false, err
	}
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return "", nil, false, fmt.Errorf(`want "username:HASH" (htpasswd -B or mosquitto_passwd) or "username password"`)
	}
	return fields[0], plainPassword(fields[1]), true, nil
}

// Bounds of the hashes a users file may hold: a check must take well under
// a second (mosquitto_passwd uses 101 iterations; htpasswd -B cost 5).
const (
	bcryptLen           = 60
	bcryptAlphabet      = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	maxBcryptCost       = 17
	maxPBKDF2Iterations = 1_000_000
)

func parseHash(h string) (credential, error) {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		// A bcrypt hash is exactly 60 characters of its alphabet: anything
		// else no password matches, and the user could never log in.
		if len(h) != bcryptLen || strings.Trim(h[7:], bcryptAlphabet) != "" {
			return nil, fmt.Errorf("bcrypt hash: want %d characters ($2y$cost$ and 53 of ./A-Za-z0-9), as htpasswd -B writes", bcryptLen)
		}
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("bcrypt hash: cost %d is above %d (htpasswd -B's maximum): each login would take the CPU for minutes", cost, maxBcryptCost)
		}
		return bcryptHash(h), nil
	case strings.HasPrefix(h, "$7$"):
		parts := strings.Split(h, "$") // "", "7", iterations, salt, hash
		if len(parts) != 5 {
			return nil, fmt.Errorf("mosquitto_passwd hash: want $7$iterations$salt$hash")
		}
		iter, err := strconv.Atoi(parts[2])
		if err != nil || iter < 1 || iter > maxPBKDF2Iterations {
			return nil, fmt.Errorf("mosquitto_passwd hash: iterations %q is not a number from 1 to %d", parts[2], maxPBKDF2Iterations)
		}
		salt, err := base64.StdEncoding.DecodeString(parts[3])
		if err != nil || len(salt) == 0 {
			return nil, fmt.Errorf("mosquitto_passwd hash: salt is not base64")
		}
		sum, err := base64.StdEncoding.DecodeString(parts[4])
		if err != nil || len(sum) < 16 {
			return nil, fmt.Errorf("mosquitto_passwd hash: hash is not base64 of at least 16 bytes")
		}
		return pbkdf2Hash{iterations: iter, salt: salt, hash: sum}, nil
	case strings.HasPrefix(h, "$6$"):
		return nil, fmt.Errorf("mosquitto's old sha512 hash ($6$) is not accepted; re-create the user with mosquitto_passwd (sha512-pbkdf2, $7$)")
	}
	return nil, fmt.Errorf("unsupported password hash; use htpasswd -B (bcrypt) or mosquitto_passwd")
}

// peerCertificate returns the client certificate that the TLS handshake
// verified against mqtt.tls.client_ca_file, or nil.
func peerCertificate(cl *mqtt.Client) *x509.Certificate {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates[0]
}
