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
		name, ok := ts.authenticate(tt.header)
		if name != tt.name || ok != tt.ok {
			t.Errorf("authenticate(%q) = %q, %v; want %q, %v", tt.header, name, ok, tt.name, tt.ok)
		}
	}
}

func TestLoadTokensErrors(t *testing.T) {
	for _, tt := range []struct{ name, content, want string }{
		{"one field", "alpha\n", ":1: want \"name token\""},
		{"three fields", "# c\nalpha tok extra\n", ":2: want \"name token\""},
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
