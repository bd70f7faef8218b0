package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestACLTest(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl.yaml")
	os.WriteFile(acl, []byte(`
groups: {operators: ["ops-*"]}
rules:
  - {name: ops, group: operators, action: subscribe, topics: ["#"], effect: allow}
  - {name: own, principal: "*", action: subscribe, topics: ["cmd/${clientid}/#"], effect: allow}
`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("mqtt:\n  acl_file: acl.yaml\n"), 0o600)
	deploy := filepath.Join("..", "..", "deploy", "config.yaml")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", deploy, "--principal", "D1", "--publish", "report"}, 0, `allow publish "report" for principal "D1" (client id "D1"): devices-uplink (rules[1])`},
		{[]string{"--config", deploy, "--principal", "D1", "--subscribe", "#"}, 1, `deny subscribe "#"`},
		{[]string{"--config", deploy, "--principal", "D1", "--subscribe", "alerts/#"}, 1, "(default): no rule matched"},
		{[]string{"--config", deploy, "--principal", "D1", "--subscribe", "cmd/D1/#"}, 0, "devices-downlink (rules[2])"},
		{[]string{"--config", deploy, "--principal", "D1", "--clientid", "D2", "--subscribe", "cmd/D1/#"}, 1, "deny"},
		{[]string{"--config", cfg, "--principal", "ops-console", "--subscribe", "alerts/#"}, 0, "ops (rules[0])"},
		{[]string{"--config", cfg, "--principal", "ops-console", "--subscribe", "$SYS/#"}, 1, "deny"},
		{[]string{"--config", cfg, "--principal", "D1", "--subscribe", "cmd/D1/x"}, 0, "own (rules[1]), policy " + filepath.Join(dir, "acl.yaml")},
		{[]string{"--principal", "D1", "--subscribe", "#"}, 0, "allow"}, // the development default
		{[]string{"--principal", "D1"}, 2, "want one of --publish and --subscribe"},
		{[]string{"--subscribe", "#"}, 2, "want --principal"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"acl", "test"}, c.args...), &out, &errb)
			if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
				t.Fatalf("exit %d, output %q %q; want exit %d and %q", code, out.String(), errb.String(), c.code, c.want)
			}
		})
	}
}
