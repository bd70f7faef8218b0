package router

import (
	"net"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// Message is one incoming message as the rule engine sees it (see
// iotsql.Message, which the SQL functions read).
type Message = iotsql.Message

// SyntaxError is the error of a rule's SQL, foreach clause or template, with
// its position (see iotsql.SyntaxError).
type SyntaxError = iotsql.SyntaxError

// MQTTProperties are the MQTT 5 PUBLISH properties of a Message.
type MQTTProperties = iotsql.MQTTProperties

// UserProperty is one MQTT 5 user property.
type UserProperty = iotsql.UserProperty

// RemoteIP returns the IP address of a "host:port" remote address (IPv6
// without brackets), or addr itself when it has no port.
func RemoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
