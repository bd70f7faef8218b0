package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fleetgate/fleetgate/config"
)

// configCmd runs `fleetgate config print [--config FILE]`: the effective
// configuration (defaults, the file, FLEETGATE_* environment) as YAML with
// secrets masked, after the same validation as serve.
func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "print" {
		fmt.Fprintf(stderr, "fleetgate config: want \"print\"\n\n%s", usage)
		return 2
	}
	fs := flag.NewFlagSet("config print", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); none: the development default")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetgate config print: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "fleetgate: %v\n", err)
		return 1
	}
	if err := config.Print(stdout, cfg); err != nil {
		fmt.Fprintf(stderr, "fleetgate: %v\n", err)
		return 1
	}
	return 0
}
