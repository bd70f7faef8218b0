// Command fleetgate is the MQTT-to-Kafka gateway for connected vehicles.
// See README.md and docs/ for its commands and configuration.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
