package telematics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTokens(t *testing.T) {
	ts, err := loadTokens(writeTokens(t, "# comment\n\n  alpha  tok-a \nbeta\ttok-b\n   # indented comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		header, name string
		ok           bool
	}{
		{"Bearer tok-a", "alpha", true},
		{"Bearer tok-b", "beta", true},
		{"BEARER  tok-b ", "beta", true},
		{"Bearer tok-c", "", false},
		{"Bearer tok-", "", false},
		{"Bearer tok-a tok-b", "", false},
		{"Bearer", "", false},
		{"", "", false},
		{"Token tok-a", "", false},
		{"tok-a", "", false},
	} {
		e, ok := ts.authenticate(tt.header)
		name := ""
		if e != nil {
			name = e.name
		}
		if name != tt.name || ok != tt.ok {
			t.Errorf("authenticate(%q) = %q, %v; want %q, %v", tt.header, name, ok, tt.name, tt.ok)
		}
	}
}

func TestLoadTokensErrors(t *testing.T) {
	for _, tt := range []struct{ name, content, want string }{
		{"one field", "alpha\n", ":1: want \"name token [device ...]\""},
		{"star inside a pattern", "# c\nalpha tok ST*S\n", ":2: device pattern \"ST*S\""},
		{"empty device list", "alpha tok ,\n", ":1: token \"alpha\": an empty device list"},
		{"repeated name", "alpha a\nalpha b\n", ":2: name \"alpha\" already on line 1"},
		{"repeated token", "alpha a\nbeta a\n", ":2: same token as line 1"},
		{"no tokens", "# nothing\n\n", "no tokens"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadTokens(writeTokens(t, tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "telematics.auth.tokens_file") {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), " a\n") {
				t.Fatalf("error echoes a token: %v", err)
			}
		})
	}
	if _, err := loadTokens(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "telematics.auth.tokens_file") {
		t.Fatalf("missing file: %v", err)
	}
	c := DefaultConfig()
	c.Auth.TokensFile = writeTokens(t, "")
	if _, err := New(c, &fakeIngester{}, nil); err == nil {
		t.Fatal("New accepted an empty tokens file")
	}
}

func TestTokenDeviceBinding(t *testing.T) {
	ts, err := parseTokens("tokens", []byte("one tok-1 STS-1\nfleet tok-f STS-12*,CSA0000042 STS-2\nops tok-o *\nold tok-old\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token, device string
		allowed       bool
	}{
		{"tok-1", "STS-1", true},
		{"tok-1", "STS-10", false}, // exact, not a prefix
		{"tok-1", "STS-2", false},
		{"tok-1", "sts-1", false},
		{"tok-f", "STS-12", true},
		{"tok-f", "STS-12345", true},
		{"tok-f", "STS-13", false},
		{"tok-f", "CSA0000042", true},
		{"tok-f", "CSA00000421", false},
		{"tok-f", "STS-2", true},
		{"tok-o", "anything", true},
		{"tok-old", "anything", true},
	} {
		e, ok := ts.authenticate("Bearer " + tt.token)
		if !ok {
			t.Fatalf("%s not authenticated", tt.token)
		}
		if got := e.allows(tt.device); got != tt.allowed {
			t.Errorf("token %s (%s) allows(%q) = %v, want %v", e.name, tt.token, tt.device, got, tt.allowed)
		}
	}
	if names := ts.unboundNames(); len(names) != 1 || names[0] != "old" {
		t.Fatalf("unbound tokens %v, want [old]", names)
	}
}

// FuzzParseTokens: any file either fails to parse with an error naming the
// key and never a token, or gives entries whose tokens authenticate to them
// and whose device lists hold no '*'.
func FuzzParseTokens(f *testing.F) {
	for _, seed := range []string{
		"alpha tok-a\n", "one tok-1 STS-1\nfleet tok-f STS-12*,CSA1 STS-2\n", "ops tok *\n",
		"# c\n\n a b c,d,,e* \n", "x y ST*S\n", "x y ,\n", "a b\na c\n", "a b\nc b\n", "\xff\x00 \t\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := parseTokens("tokens", data)
		if err != nil {
			if !strings.Contains(err.Error(), "telematics.auth.tokens_file") {
				t.Fatalf("error without the key: %v", err)
			}
			return
		}
		lines := strings.Split(string(data), "\n")
		for i := range ts.entries {
			e := &ts.entries[i]
			for _, p := range e.devices {
				if strings.Contains(p.text, "*") {
					t.Fatalf("pattern %q keeps a '*'", p.text)
				}
				if !e.allows(p.text) {
					t.Fatalf("token %q does not allow its own device %q", e.name, p.text)
				}
			}
			if e.unbound && (len(e.devices) != 0 || !e.anyDevice) {
				t.Fatalf("unbound entry %+v", e)
			}
		}
		// Each entry's token, from the line that defined it, authenticates
		// to that entry.
		for _, line := range lines {
			fs := strings.Fields(line)
			if len(fs) < 2 || strings.HasPrefix(fs[0], "#") {
				continue
			}
			if e, ok := ts.authenticate("Bearer " + fs[1]); ok && e.name != fs[0] {
				t.Fatalf("token of %q authenticates as %q", fs[0], e.name)
			}
		}
	})
}
