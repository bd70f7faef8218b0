// Command fleetsim is fleetgate's load simulator and integrity verifier.
//
//	fleetsim run ...     simulate terminals over MQTT and the legacy HTTPS endpoint
//	fleetsim verify ...  check the Kafka topics against what run had acknowledged
//
// See 'fleetsim run -h' and 'fleetsim verify -h'.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `fleetsim: load simulator and integrity verifier for fleetgate.

Usage:
  fleetsim run [flags]      simulate MQTT and legacy HTTPS terminals (run -h)
  fleetsim verify [flags]   check Kafka against what run acknowledged (verify -h)
`

func main() {
	// The first SIGINT/SIGTERM ends sending gracefully; the second ends
	// everything at once.
	soft, softStop := context.WithCancel(context.Background())
	hard, hardStop := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		softStop()
		<-sig
		hardStop()
	}()
	os.Exit(dispatch(soft, hard, os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs one command and returns the exit status.
func dispatch(soft, hard context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCommand(soft, hard, args[1:], stdout, stderr)
	case "verify":
		return verifyCommand(soft, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fleetsim: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
