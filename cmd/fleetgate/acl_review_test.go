package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACLTestMirrorsTheBroker: "acl test" asks what the broker would: a
// principal without --cert-cn is a users-file login, whose ${username} is
// the principal; with --cert-cn, ${username} is empty. An invalid topic is
// denied by (invalid topic), not by "no rule matched".
func TestACLTestMirrorsTheBroker(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "acl.yaml"), []byte(`
rules:
  - {name: own, principal: "*", action: publish, topics: ["u/${username}"], effect: allow}
  - {name: cert, principal: "*", action: publish, topics: ["c/${cert.cn}"], effect: allow}
`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("mqtt:\n  acl_file: acl.yaml\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--principal", "D1", "--publish", "u/D1"}, 0, "own (rules[0])"},
		{[]string{"--principal", "D1", "--cert-cn", "D1", "--publish", "u/D1"}, 1, "deny"},
		{[]string{"--principal", "D1", "--cert-cn", "D1", "--publish", "c/D1"}, 0, "cert (rules[1])"},
		{[]string{"--principal", "D1", "--publish", "u/+"}, 1, `deny publish "u/+" for principal "D1" (client id "D1"): (invalid topic), policy`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"acl", "test", "--config", cfg}, c.args...), &out, &errb)
			if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
				t.Fatalf("exit %d, output %q %q; want exit %d and %q", code, out.String(), errb.String(), c.code, c.want)
			}
		})
	}
}
