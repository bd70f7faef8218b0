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

type tokenEntry struct {
	name   string
	digest [sha256.Size]byte
}

// loadTokens reads a tokens file: one "name token" pair per line, separated
// by white space; blank lines and lines starting with '#' are skipped. Names
// and tokens must be unique and the file must hold at least one token.
func loadTokens(path string) (*tokenSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("telematics.auth.tokens_file: %w", err)
	}
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
		if len(f) != 2 {
			return nil, fmt.Errorf("telematics.auth.tokens_file %s:%d: want \"name token\", got %d fields", path, n, len(f))
		}
		e := tokenEntry{name: f[0], digest: sha256.Sum256([]byte(f[1]))}
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

// authenticate returns the name of the token in an "Authorization: Bearer
// <token>" header value. Every entry is compared, in constant time, whether
// or not an earlier one matched.
func (ts *tokenSet) authenticate(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	digest := sha256.Sum256([]byte(token))
	match := -1
	for i := range ts.entries {
		eq := subtle.ConstantTimeCompare(digest[:], ts.entries[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false
	}
	return ts.entries[match].name, true
}
