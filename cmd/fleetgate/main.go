// Command fleetgate is the MQTT-to-Kafka gateway for connected vehicles.
// See README.md and docs/ for its commands and configuration.
package main

import (
	"os"
	// Asia/Seoul (legacy CSA time stamps, parse_time zones) must resolve
	// even in an image without /usr/share/zoneinfo.
	_ "time/tzdata"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
