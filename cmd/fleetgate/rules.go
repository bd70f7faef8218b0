package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fleetgate/fleetgate/config"
)

const rulesUsage = `Usage:
  fleetgate rules check --config FILE
      Validate the configuration and every rule. Exit 0 when valid; 1 with
      one "file:line[:column]: message" line per problem otherwise.

  fleetgate rules test [--config FILE] --topic T [--client-id ID] --payload JSON
      Dry-run the rules on one message: print one JSON line per record it
      would produce, message it would republish, or error action it would
      take. No broker is needed. Without --config: the development default.
      Flags:
        --payload-file FILE   read the payload from FILE ("-": stdin) instead
        --source S            mqtt (default), sts or csa
        --principal P         the authenticated identity (principal())
        --now T               the receive time (timestamp()): RFC 3339 or epoch
                              milliseconds; default the current time. For
                              reproducible output (tests, examples).
`

// rules runs "fleetgate rules SUBCOMMAND ..." and returns the exit code.
func rules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "fleetgate rules: want check or test\n\n%s", rulesUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return rulesCheck(args[1:], stdout, stderr)
	case "test":
		return rulesTest(args[1:], stdout, stderr, os.Stdin)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rulesUsage)
		return 0
	}
	fmt.Fprintf(stderr, "fleetgate rules: unknown subcommand %q\n\n%s", args[0], rulesUsage)
	return 2
}

// rulesCheck validates a configuration, as nats-server -t does: every
// problem on its own line, on stderr, and exit code 1.
func rulesCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetgate rules check: want --config FILE\n\n%s", rulesUsage)
		return 2
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	// Load the lookup files and schemas as the gateway would: a schema that
	// does not compile, or names a rule gives that are not loaded, fail.
	if len(cfg.Lookups) > 0 || cfg.Schemas.Enabled() {
		if _, err := compileWithData(context.Background(), cfg, stdout, nil); err != nil {
			printProblems(stderr, err)
			return 1
		}
	}
	from := *path
	if cfg.RulesFile != "" {
		from = cfg.RulesFile
	}
	fmt.Fprintf(stdout, "%s: valid; %d %s in %s: %s\n", *path, len(cfg.Rules), plural(len(cfg.Rules), "rule", "rules"),
		from, strings.Join(ruleNames(cfg), ", "))
	return 0
}

// printProblems prints a configuration error, one problem per line.
func printProblems(w io.Writer, err error) {
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(w, p)
		}
		return
	}
	fmt.Fprintln(w, err)
}

func ruleNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		names[i] = r.Name
	}
	return names
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
