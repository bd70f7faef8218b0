package broker

import (
	"fmt"
	"math"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// RetainedConfig is mqtt.retained: retained messages are kept in memory,
// per instance, so they are off by default and capped when on.
type RetainedConfig struct {
	// Enabled keeps messages published with the retain flag (and retained
	// wills) for later subscribers. Default false: the flag is ignored (the
	// message is still stored in Kafka and delivered to current
	// subscribers), and the refusal counted.
	Enabled bool `mapstructure:"enabled"`
	// MaxMessages caps how many topics hold a retained message. Default 1000.
	MaxMessages int `mapstructure:"max_messages"`
	// MaxMessageBytes caps one retained message (topic + payload + user
	// properties, content type, response topic and correlation data).
	// Default 65536.
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
	// MaxTotalBytes caps all retained messages together. Default 16 MiB.
	MaxTotalBytes int64 `mapstructure:"max_total_bytes"`
}

// validateBounds checks the keys of the broker's bounds (bounds.go).
func (c Config) validateBounds() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.WSSListen != "" {
		if !strings.Contains(c.WSSListen, ":") {
			bad("mqtt.wss_listen: %q is not [host]:port", c.WSSListen)
		}
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			bad("mqtt.wss_listen needs mqtt.tls.cert_file and mqtt.tls.key_file")
		}
	}
	for _, o := range c.WSAllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("mqtt.ws_allowed_origins: %q is not an origin such as https://console.example.com", o)
		}
	}
	if c.MaxKeepAlive < time.Second || c.MaxKeepAlive > math.MaxUint16*time.Second {
		bad("mqtt.max_keep_alive: %s is out of range 1s..65535s", c.MaxKeepAlive)
	}
	if c.MaxSessionExpiry < 0 || c.MaxSessionExpiry > math.MaxUint32*time.Second {
		bad("mqtt.max_session_expiry: %s is out of range 0..%ds", c.MaxSessionExpiry, uint32(math.MaxUint32))
	}
	if c.MaxQueuedMessages < 1 || c.MaxQueuedMessages > math.MaxUint16-1 {
		bad("mqtt.max_queued_messages: %d is out of range 1..65534", c.MaxQueuedMessages)
	}
	if c.MaxQueuedBytes < int64(c.MaxPacketBytes) {
		bad("mqtt.max_queued_bytes: %d is below mqtt.max_packet_bytes (%d): one message must fit", c.MaxQueuedBytes, c.MaxPacketBytes)
	}
	r := c.Retained
	if r.MaxMessages < 1 {
		bad("mqtt.retained.max_messages: %d must be at least 1", r.MaxMessages)
	}
	if r.MaxMessageBytes < 1 {
		bad("mqtt.retained.max_message_bytes: %d must be at least 1", r.MaxMessageBytes)
	}
	if r.MaxTotalBytes < r.MaxMessageBytes {
		bad("mqtt.retained.max_total_bytes: %d is below mqtt.retained.max_message_bytes (%d)", r.MaxTotalBytes, r.MaxMessageBytes)
	}
	return errs
}

// boundCapabilities sets mochi's own caps for the bounds of bounds.go.
func (c Config) boundCapabilities(caps *mqtt.Capabilities) {
	// mochi caps a client's session expiry here, tells MQTT 5 clients the
	// capped value in CONNACK, and uses it as the expiry of 3.1.1
	// persistent sessions. (A DISCONNECT that raises the expiry is capped
	// by boundsHook.OnPacketRead.)
	caps.MaximumSessionExpiryInterval = uint32(c.MaxSessionExpiry / time.Second)
	// mochi refuses a new queued message when a session's store holds this
	// many entries; the queue hook drops the oldest at MaxQueuedMessages
	// first, so this is only the backstop. The store also holds the
	// session's PUBRECs of inbound QoS 2 (at most MaxInflight).
	caps.MaximumInflight = uint16(min(c.MaxQueuedMessages+c.MaxInflight+1, math.MaxUint16))
}
