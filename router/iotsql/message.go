package iotsql

import "time"

// Message is one incoming message as the rule engine sees it, whatever transport
// brought it. Payload must not be modified after the message is handed to the engine.
type Message struct {
	// Source names the input: "mqtt", "sts" or "csa".
	Source string
	// Topic is the MQTT topic the message was published to (for legacy input,
	// telematics.topic).
	Topic string
	// ClientID is the MQTT client id, or the device number for legacy input.
	ClientID string
	// Principal is the authenticated identity (username or certificate subject),
	// empty when anonymous.
	Principal string
	// Payload is the raw message body, normally a JSON object.
	Payload []byte
	// Received is when the gateway read the message; timestamp() returns it in ms.
	Received time.Time
}
