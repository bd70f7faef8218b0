package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the mqtt: section of the configuration.
type Config struct {
	// Listen is the plain TCP listener, default ":1883"; empty disables it.
	Listen string `mapstructure:"listen"`
	// TLSListen is the MQTT over TLS listener (needs tls.cert_file and
	// tls.key_file); empty disables it.
	TLSListen string `mapstructure:"tls_listen"`
	// WSListen is the MQTT over WebSocket listener; empty disables it.
	WSListen string `mapstructure:"ws_listen"`
	// TLS holds the server certificate and the optional client CA (mutual TLS).
	TLS TLSConfig `mapstructure:"tls"`
	// Auth says who may connect.
	Auth AuthConfig `mapstructure:"auth"`
	// ConnectTimeout is how long a new connection may take to complete its
	// TLS handshake and send CONNECT; after CONNECT the keep-alive rules.
	// Default 10s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// MaxPacketBytes is the largest MQTT packet accepted. Default 262144.
	MaxPacketBytes int `mapstructure:"max_packet_bytes"`
	// MaxInflight is how many QoS 1/2 messages one connection may have
	// waiting for Kafka at once; it is advertised to MQTT 5 clients as
	// Receive Maximum. A connection that sends more is not read until one
	// completes. Default 64.
	MaxInflight int `mapstructure:"max_inflight"`
	// MaxPendingWrites is how many packets (fan-out to subscribers,
	// republish) may wait for one connection's writer; a subscriber that
	// falls further behind has messages dropped (counted in $SYS). mochi
	// allocates the queue for every connection up front: 8 bytes a slot.
	// Default 256.
	MaxPendingWrites int `mapstructure:"max_pending_writes"`

	// DeliveryTimeout is how long a message may wait for Kafka before the
	// connection is told it failed. Set from kafka.delivery_timeout.
	DeliveryTimeout time.Duration `mapstructure:"-"`
}

// TLSConfig is mqtt.tls.
type TLSConfig struct {
	CertFile     string `mapstructure:"cert_file"`
	KeyFile      string `mapstructure:"key_file"`
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// AuthConfig is mqtt.auth.
type AuthConfig struct {
	// AllowAnonymous lets any client connect. Default true.
	AllowAnonymous bool `mapstructure:"allow_anonymous"`
	// UsersFile holds "username password" lines (# comments), one user a
	// line; with allow_anonymous false, only these may connect.
	UsersFile string `mapstructure:"users_file"`
	// EnforceDeviceIdentity requires the client id to equal the username
	// (or, with mutual TLS, the certificate's common name).
	EnforceDeviceIdentity bool `mapstructure:"enforce_device_identity"`
}

// DefaultConfig returns the defaults of SPEC section 5.
func DefaultConfig() Config {
	return Config{
		Listen:           ":1883",
		Auth:             AuthConfig{AllowAnonymous: true},
		ConnectTimeout:   10 * time.Second,
		MaxPacketBytes:   262144,
		MaxInflight:      64,
		MaxPendingWrites: 256,
		DeliveryTimeout:  30 * time.Second,
	}
}

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" && c.TLSListen == "" && c.WSListen == "" {
		bad("mqtt: no listener; set mqtt.listen, mqtt.tls_listen or mqtt.ws_listen")
	}
	for key, addr := range map[string]string{"mqtt.listen": c.Listen, "mqtt.tls_listen": c.TLSListen, "mqtt.ws_listen": c.WSListen} {
		if addr != "" && !strings.Contains(addr, ":") {
			bad("%s: %q is not [host]:port", key, addr)
		}
	}
	if c.TLSListen != "" && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("mqtt.tls_listen needs mqtt.tls.cert_file and mqtt.tls.key_file")
	}
	if !c.Auth.AllowAnonymous && c.Auth.UsersFile == "" && c.TLS.ClientCAFile == "" {
		bad("mqtt.auth.allow_anonymous is false but neither mqtt.auth.users_file nor mqtt.tls.client_ca_file says who may connect")
	}
	if c.ConnectTimeout <= 0 {
		bad("mqtt.connect_timeout must be positive (e.g. 10s)")
	}
	if c.MaxPacketBytes < 1024 || c.MaxPacketBytes > 268435455 {
		bad("mqtt.max_packet_bytes: %d is out of range 1024..268435455", c.MaxPacketBytes)
	}
	if c.MaxInflight < 1 || c.MaxInflight > 65535 {
		bad("mqtt.max_inflight: %d is out of range 1..65535", c.MaxInflight)
	}
	if c.MaxPendingWrites < 16 || c.MaxPendingWrites > 65536 {
		bad("mqtt.max_pending_writes: %d is out of range 16..65536", c.MaxPendingWrites)
	}
	if c.DeliveryTimeout <= 0 {
		errs = append(errs, errors.New("kafka.delivery_timeout must be positive"))
	}
	return errors.Join(errs...)
}
