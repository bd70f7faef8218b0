package broker

import (
	"strings"
	"testing"
	"time"
)

func TestBoundsValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"wss without certificate", func(c *Config) { c.WSSListen = ":8884" }, "mqtt.wss_listen needs mqtt.tls.cert_file"},
		{"wss not host:port", func(c *Config) { c.WSSListen = "8884"; c.TLS = TLSConfig{CertFile: "c", KeyFile: "k"} }, "mqtt.wss_listen"},
		{"origin not an origin", func(c *Config) { c.WSAllowedOrigins = []string{"console.example.com"} }, "mqtt.ws_allowed_origins"},
		{"keep-alive zero", func(c *Config) { c.MaxKeepAlive = 0 }, "mqtt.max_keep_alive"},
		{"keep-alive too long", func(c *Config) { c.MaxKeepAlive = 65536 * time.Second }, "mqtt.max_keep_alive"},
		{"session expiry negative", func(c *Config) { c.MaxSessionExpiry = -time.Second }, "mqtt.max_session_expiry"},
		{"session expiry too long", func(c *Config) { c.MaxSessionExpiry = 1 << 33 * time.Second }, "mqtt.max_session_expiry"},
		{"no queued messages", func(c *Config) { c.MaxQueuedMessages = 0 }, "mqtt.max_queued_messages"},
		{"queue below a packet", func(c *Config) { c.MaxQueuedBytes = 1000 }, "mqtt.max_queued_bytes"},
		{"retained count", func(c *Config) { c.Retained.MaxMessages = 0 }, "mqtt.retained.max_messages"},
		{"retained message", func(c *Config) { c.Retained.MaxMessageBytes = 0 }, "mqtt.retained.max_message_bytes"},
		{"retained total", func(c *Config) { c.Retained.MaxTotalBytes = 10 }, "mqtt.retained.max_total_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.MaxSessionExpiry = 0 // no persistent sessions at all: valid
	c.Listen, c.WSSListen, c.TLS = "", ":8884", TLSConfig{CertFile: "c", KeyFile: "k"}
	if err := c.Validate(); err != nil {
		t.Fatalf("only a wss listener: %v", err)
	}
}
