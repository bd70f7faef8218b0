package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetgate/fleetgate/tlsconf"
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
	// ACLFile is the policy file: which principal may publish and
	// subscribe to what (policy.File; docs/security.md). Empty: the
	// built-in default policy (policy.Default) when authentication is on
	// (allow_anonymous false), everything allowed otherwise. Reloaded on
	// change and on SIGHUP, keeping the last good policy.
	ACLFile string `mapstructure:"acl_file"`
	// ConnectTimeout is how long a new connection may take to complete its
	// TLS handshake (and WebSocket upgrade) and send CONNECT (mochi alone
	// would wait forever, so silent sockets could exhaust file descriptors);
	// after CONNECT the client's keep-alive applies. Default 10s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// MaxPacketBytes is the largest MQTT packet accepted (1024 to
	// 268435455). Default 262144.
	MaxPacketBytes int `mapstructure:"max_packet_bytes"`
	// MaxInflight is how many QoS 1/2 messages one connection may have
	// waiting for Kafka at once; it is advertised to MQTT 5 clients as
	// Receive Maximum. A connection that sends more is not read until one
	// completes. 1 to 65535; default 64.
	MaxInflight int `mapstructure:"max_inflight"`
	// MaxPendingWrites is how many packets (fan-out to subscribers,
	// republish) may wait for one connection's writer; a subscriber that
	// falls further behind has messages dropped (counted in $SYS). The
	// queue (8 bytes a slot) is made when a packet is first queued for the
	// connection, so connections that never receive one do not pay for it
	// (third_party/mochi/PATCHES.md). Default 256.
	MaxPendingWrites int `mapstructure:"max_pending_writes"`
	// MaxPendingWriteBytes caps the QoS 0 messages (payload and
	// properties) waiting for one connection's writer: a subscriber that
	// does not read (its TCP window full) has further QoS 0 messages
	// dropped, counted as write_queue_bytes, while its queue is this
	// full; QoS 1/2 ones are capped by mqtt.max_queued_bytes. At least
	// mqtt.max_packet_bytes. Default 1048576.
	MaxPendingWriteBytes int64 `mapstructure:"max_pending_write_bytes"`

	// Bounds on the broker's own state and connections (bounds.go).

	// WSSListen is the MQTT over secure WebSocket listener, with the
	// certificate of mqtt.tls; empty disables it.
	WSSListen string `mapstructure:"wss_listen"`
	// WSAllowedOrigins is, when not empty, the list of Origin header values
	// (e.g. "https://console.example.com") a WebSocket upgrade may carry;
	// an upgrade with another Origin gets 403. Requests without Origin
	// (non-browser clients) are not affected. Default empty: any origin.
	WSAllowedOrigins []string `mapstructure:"ws_allowed_origins"`
	// MaxKeepAlive is the longest keep-alive a client gets; a client asking
	// for 0 (none) or more gets this one (MQTT 5: Server Keep Alive in
	// CONNACK). Default 20m, 1s..65535s.
	MaxKeepAlive time.Duration `mapstructure:"max_keep_alive"`
	// MaxSessionExpiry caps how long a disconnected persistent session
	// (3.1.1 clean session false, MQTT 5 session expiry) is kept, with its
	// subscriptions and queued messages. Default 1h; 0 ends every session
	// at disconnect.
	MaxSessionExpiry time.Duration `mapstructure:"max_session_expiry"`
	// MaxQueuedMessages caps each session's QoS 1/2 messages waiting for
	// its subscriber (offline, or not yet acknowledged); at the cap the
	// oldest is dropped. Default 100.
	MaxQueuedMessages int `mapstructure:"max_queued_messages"`
	// MaxQueuedBytes caps the payload bytes of those messages, at least
	// mqtt.max_packet_bytes. Default 1 MiB.
	MaxQueuedBytes int64 `mapstructure:"max_queued_bytes"`
	// Retained bounds retained messages.
	Retained RetainedConfig `mapstructure:"retained"`

	// Topics bounds topic lengths and subscriptions per client
	// (topic_limits.go).
	Topics TopicLimits `mapstructure:"topics"`

	// DeliveryTimeout is how long a message may wait for Kafka before the
	// connection is told it failed. Set from kafka.delivery_timeout.
	DeliveryTimeout time.Duration `mapstructure:"-"`
}

// TLSConfig is mqtt.tls.
type TLSConfig struct {
	// CertFile is the server certificate chain (PEM).
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the server certificate's private key (PEM).
	KeyFile string `mapstructure:"key_file"`
	// ClientCAFile is the CA of the device certificates: set, it turns on
	// mutual TLS (clients without a valid certificate are refused during
	// the handshake).
	ClientCAFile string `mapstructure:"client_ca_file"`
	// CRLFile holds the revocation lists of the client CAs (PEM "X509 CRL"
	// blocks as `openssl ca -gencrl` writes them, or one DER CRL): a device
	// certificate one lists is refused in the handshake
	// (certificate_revoked). Needs client_ca_file; each list must be
	// signed by one of its CAs. Checked for changes every second: a new
	// list also ends the open connections of the certificates it revokes.
	// A list past its next update still applies and is warned about.
	// Default "": none.
	CRLFile string `mapstructure:"crl_file"`
}

// files is c as tlsconf loads it, its errors naming mqtt.tls.
func (c TLSConfig) files() tlsconf.Files {
	return tlsconf.Files{CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCAFile: c.ClientCAFile, CRLFile: c.CRLFile, Key: "mqtt.tls"}
}

// AuthConfig is mqtt.auth.
type AuthConfig struct {
	// AllowAnonymous lets any client connect. With false, users_file or
	// tls.client_ca_file must say who may. Default true.
	AllowAnonymous bool `mapstructure:"allow_anonymous"`
	// UsersFile holds one user a line: "username:HASH" as htpasswd -B
	// (bcrypt) or mosquitto_passwd (PBKDF2-SHA512, $7$) write it, or the
	// deprecated "username password" plaintext form (warned at start).
	// A username not in it is refused. Reloaded on change and on SIGHUP,
	// keeping the last good file.
	UsersFile string `mapstructure:"users_file"`
	// EnforceDeviceIdentity requires the client id to equal the principal:
	// the certificate identity with mutual TLS, otherwise the username.
	EnforceDeviceIdentity bool `mapstructure:"enforce_device_identity"`
	// CertIdentity is which part of a verified client certificate is the
	// principal: cn (default: the subject's common name), san_dns (the
	// first DNS subject alternative name) or san_uri (the first URI one).
	CertIdentity string `mapstructure:"cert_identity"`
	// Backoff slows down repeated authentication failures.
	Backoff BackoffConfig `mapstructure:"backoff"`
}

// BackoffConfig is mqtt.auth.backoff. A failed authentication is refused
// only after a delay that doubles with each recent failure of the same key
// (InitialDelay, 2×, 4×, … up to MaxDelay); a username (or an address with
// recent failures) with MaxWaiting attempts already being checked or held
// gets the next attempt refused at once, unchecked.
type BackoffConfig struct {
	// Keys are what failures are counted by: remote_addr (the client's IP
	// address) and/or username. Default both; empty disables back-off.
	Keys []string `mapstructure:"keys"`
	// InitialDelay is the delay of a key's first failure. Default 250ms.
	InitialDelay time.Duration `mapstructure:"initial_delay"`
	// MaxDelay caps the delay. Default 10s.
	MaxDelay time.Duration `mapstructure:"max_delay"`
	// ForgetAfter is how long a key's failures are remembered after its
	// last one. Default 10m.
	ForgetAfter time.Duration `mapstructure:"forget_after"`
	// MaxTracked bounds the keys remembered; beyond it the key whose last
	// failure is oldest is forgotten. Default 10000.
	MaxTracked int `mapstructure:"max_tracked"`
	// MaxWaiting is how many attempts of one username, or of one address
	// with recent failures, may be checked or held at once. Default 8.
	MaxWaiting int `mapstructure:"max_waiting"`
}

// DefaultConfig returns the defaults of SPEC section 5.
func DefaultConfig() Config {
	return Config{
		Listen: ":1883",
		Auth: AuthConfig{AllowAnonymous: true, CertIdentity: "cn", Backoff: BackoffConfig{
			Keys: []string{"remote_addr", "username"}, InitialDelay: 250 * time.Millisecond, MaxDelay: 10 * time.Second,
			ForgetAfter: 10 * time.Minute, MaxTracked: 10000, MaxWaiting: 8,
		}},
		ConnectTimeout:       10 * time.Second,
		MaxPacketBytes:       262144,
		MaxInflight:          64,
		MaxPendingWrites:     256,
		MaxPendingWriteBytes: 1 << 20,
		Topics:               defaultTopicLimits(),
		DeliveryTimeout:      30 * time.Second,

		MaxKeepAlive:      20 * time.Minute,
		MaxSessionExpiry:  time.Hour,
		MaxQueuedMessages: 100,
		MaxQueuedBytes:    1 << 20,
		Retained:          RetainedConfig{MaxMessages: 1000, MaxMessageBytes: 64 << 10, MaxTotalBytes: 16 << 20},
	}
}

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" && c.TLSListen == "" && c.WSListen == "" && c.WSSListen == "" {
		bad("mqtt: no listener; set mqtt.listen, mqtt.tls_listen, mqtt.ws_listen or mqtt.wss_listen")
	}
	for key, addr := range map[string]string{"mqtt.listen": c.Listen, "mqtt.tls_listen": c.TLSListen, "mqtt.ws_listen": c.WSListen} {
		if addr != "" && !strings.Contains(addr, ":") {
			bad("%s: %q is not [host]:port", key, addr)
		}
	}
	if c.TLSListen != "" && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("mqtt.tls_listen needs mqtt.tls.cert_file and mqtt.tls.key_file")
	}
	if err := c.TLS.files().CheckCRL(); err != nil {
		errs = append(errs, err)
	}
	if !c.Auth.AllowAnonymous && c.Auth.UsersFile == "" && c.TLS.ClientCAFile == "" {
		bad("mqtt.auth.allow_anonymous is false but neither mqtt.auth.users_file nor mqtt.tls.client_ca_file says who may connect")
	}
	errs = append(errs, c.Auth.validate(c.TLS), c.validateFiles(), c.Topics.validate())
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
	if c.MaxPendingWriteBytes < int64(c.MaxPacketBytes) {
		bad("mqtt.max_pending_write_bytes: %d is below mqtt.max_packet_bytes (%d)", c.MaxPendingWriteBytes, c.MaxPacketBytes)
	}
	errs = append(errs, c.validateBounds()...)
	if c.DeliveryTimeout <= 0 {
		errs = append(errs, errors.New("kafka.delivery_timeout must be positive"))
	}
	return errors.Join(errs...)
}
