package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/policy"
)

const aclUsage = `Usage:
  fleetgate acl test [--config FILE] --principal P [--clientid C] --publish TOPIC
  fleetgate acl test [--config FILE] --principal P [--clientid C] --subscribe FILTER
      Ask the MQTT policy the configuration puts in force (mqtt.acl_file, or
      the built-in default when authentication is on) whether principal P may
      publish to TOPIC or subscribe to FILTER, and print the answer and the
      rule that decided. Exit 0 when allowed, 1 when denied, 2 on a usage or
      configuration error. No broker is needed.
      Flags:
        --clientid C    the client id (${clientid}); default: P, as
                        mqtt.auth.enforce_device_identity requires
        --username U    the users-file username (${username}); default: P
                        unless --cert-cn is given (a users-file login, as
                        the broker sees it), none otherwise
        --cert-cn CN    the client certificate's common name (${cert.cn})
`

// acl runs "fleetgate acl SUBCOMMAND ..." and returns the exit code.
func acl(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, aclUsage)
			return 0
		}
		fmt.Fprintf(stderr, "fleetgate acl: want test\n\n%s", aclUsage)
		return 2
	}
	fs := flag.NewFlagSet("acl test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); none: the development default")
	principal := fs.String("principal", "", "the authenticated principal (required)")
	clientID := fs.String("clientid", "", "the client id; default the principal")
	username := fs.String("username", "", "the users-file username that authenticated")
	certCN := fs.String("cert-cn", "", "the client certificate's common name")
	pub := fs.String("publish", "", "topic name to publish to")
	sub := fs.String("subscribe", "", "topic filter to subscribe to")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "fleetgate acl test: %s\n\n%s", msg, aclUsage)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *principal == "":
		return usage("want --principal")
	case (*pub == "") == (*sub == ""):
		return usage("want one of --publish and --subscribe")
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		printProblems(stderr, err)
		return 2
	}
	p, from, err := cfg.MQTT.Policy()
	if err != nil {
		fmt.Fprintf(stderr, "fleetgate acl test: %v\n", err)
		return 2
	}
	req := policy.Request{Principal: *principal, ClientID: *clientID, Username: *username, CertCN: *certCN, Action: policy.Publish, Topic: *pub}
	if req.ClientID == "" {
		req.ClientID = *principal
	}
	if req.Username == "" && req.CertCN == "" {
		req.Username = *principal // a users-file login, as the broker sees it
	}
	if *sub != "" {
		req.Action, req.Topic = policy.Subscribe, *sub
	}
	d := p.Decide(req)
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	rule := d.Rule
	if d.Index >= 0 {
		rule = fmt.Sprintf("%s (rules[%d])", d.Rule, d.Index)
	} else if !p.AllowsAll() && d.Rule != policy.InvalidTopicRule {
		rule += ": no rule matched"
	}
	fmt.Fprintf(stdout, "%s %s %q for principal %q (client id %q): %s, policy %s\n", verdict, req.Action, req.Topic, req.Principal, req.ClientID, rule, from)
	if !d.Allow {
		return 1
	}
	return 0
}
