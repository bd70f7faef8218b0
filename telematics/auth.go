package telematics

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// tokenSet holds the bearer tokens of telematics.auth.tokens_file. Only
// SHA-256 digests are kept, so every comparison is between 32-byte values and
// takes the same time whatever the token's length or content. Read-only after
// loadTokens: safe for concurrent use.
type tokenSet struct {
	entries []tokenEntry
}

// tokenEntry is one line of the tokens file.
type tokenEntry struct {
	name   string
	digest [sha256.Size]byte
	// devices are the device numbers the token may speak for: exact ids,
	// or prefixes (written with a trailing '*'). Empty with anyDevice set.
	devices []devicePattern
	// anyDevice: "*", or no device list at all (the old format, unbound).
	anyDevice bool
	// unbound: the line lists no devices (the old "name token" format).
	unbound bool
}

// devicePattern is an exact device number or, with prefix set, a prefix.
type devicePattern struct {
	text   string
	prefix bool
}

// loadTokens reads and parses a tokens file (see parseTokens).
func loadTokens(path string) (*tokenSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("telematics.auth.tokens_file: %w", err)
	}
	return parseTokens(path, data)
}

// parseTokens parses a tokens file: one "name token [device ...]" line per
// token, fields separated by white space; blank lines and lines starting
// with '#' are skipped. Devices, separated by white space or commas, are
// exact device numbers or prefixes ending in '*' ("STS-12*"); "*" alone
// means any device. A line without devices (the original format) is
// unbound: it may speak for any device, and New warns about it. Names and
// tokens must be unique and the file must hold at least one token. Errors
// name the file and line, never a token.
func parseTokens(path string, data []byte) (*tokenSet, error) {
	ts := &tokenSet{}
	names := map[string]int{}
	digests := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("telematics.auth.tokens_file %s:%d: want \"name token [device ...]\", got %d fields", path, n, len(f))
		}
		e := tokenEntry{name: f[0], digest: sha256.Sum256([]byte(f[1]))}
		if err := e.parseDevices(f[2:]); err != nil {
			return nil, fmt.Errorf("telematics.auth.tokens_file %s:%d: %w", path, n, err)
		}
		if prev, dup := names[e.name]; dup {
			return nil, fmt.Errorf("telematics.auth.tokens_file %s:%d: name %q already on line %d", path, n, e.name, prev)
		}
		if prev, dup := digests[e.digest]; dup {
			return nil, fmt.Errorf("telematics.auth.tokens_file %s:%d: same token as line %d", path, n, prev)
		}
		names[e.name], digests[e.digest] = n, n
		ts.entries = append(ts.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("telematics.auth.tokens_file %s: %w", path, err)
	}
	if len(ts.entries) == 0 {
		return nil, fmt.Errorf("telematics.auth.tokens_file %s: no tokens (remove the setting to disable authentication)", path)
	}
	return ts, nil
}

// parseDevices reads the device fields of a line.
func (e *tokenEntry) parseDevices(fields []string) error {
	if len(fields) == 0 {
		e.unbound, e.anyDevice = true, true
		return nil
	}
	for _, field := range fields {
		for _, d := range strings.Split(field, ",") {
			switch {
			case d == "":
				continue
			case d == "*":
				e.anyDevice = true
			case strings.IndexByte(d, '*') >= 0 && strings.IndexByte(d, '*') != len(d)-1:
				return fmt.Errorf("device pattern %q: '*' may only end a pattern (a prefix)", d)
			case strings.HasSuffix(d, "*"):
				e.devices = append(e.devices, devicePattern{text: d[:len(d)-1], prefix: true})
			default:
				e.devices = append(e.devices, devicePattern{text: d})
			}
		}
	}
	if !e.anyDevice && len(e.devices) == 0 {
		return fmt.Errorf("token %q: an empty device list", e.name)
	}
	return nil
}

// allows reports whether the token may speak for device.
func (e *tokenEntry) allows(device string) bool {
	if e.anyDevice {
		return true
	}
	for _, p := range e.devices {
		if device == p.text || p.prefix && strings.HasPrefix(device, p.text) {
			return true
		}
	}
	return false
}

// unboundNames lists the tokens of the old format, which may speak for any
// device.
func (ts *tokenSet) unboundNames() []string {
	var out []string
	for i := range ts.entries {
		if ts.entries[i].unbound {
			out = append(out, ts.entries[i].name)
		}
	}
	return out
}

// authenticate returns the entry of the token in an "Authorization: Bearer
// <token>" header value. Every entry is compared, in constant time, whether
// or not an earlier one matched.
func (ts *tokenSet) authenticate(header string) (*tokenEntry, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, false
	}
	digest := sha256.Sum256([]byte(token))
	match := -1
	for i := range ts.entries {
		eq := subtle.ConstantTimeCompare(digest[:], ts.entries[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, false
	}
	return &ts.entries[match], true
}
