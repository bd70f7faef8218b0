package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Config is the kafka: section of the configuration. The zero value is not
// useful; start from DefaultConfig.
type Config struct {
	// Brokers is the bootstrap list. Empty: the embedded in-memory
	// development broker (data lost at exit, never for production).
	Brokers []string `mapstructure:"brokers"`
	// EmbeddedListen is where the embedded development broker listens.
	// Default "127.0.0.1:9092".
	EmbeddedListen string `mapstructure:"embedded_listen"`
	// EmbeddedRetentionBytes is how many bytes of records the embedded
	// development broker keeps per partition, like Kafka's
	// retention.bytes: beyond it the oldest are dropped, within a second,
	// so a consumer that falls further behind loses records. -1 keeps
	// every record (memory then grows with everything produced, until
	// exit). At least kafka.max_message_bytes. The development default's
	// 6 topics x 6 partitions keep at most 288 MiB in all (a load on one
	// topic 48 MiB), plus the broker's overhead (docs/operations.md).
	// Default 8388608 (8 MiB).
	EmbeddedRetentionBytes int64 `mapstructure:"embedded_retention_bytes"`
	// Version is the Kafka protocol version to speak (at least 2.1 against
	// Kafka 4.x). Default "3.9.0".
	Version string `mapstructure:"version"`
	// ClientID is the client.id sent to the brokers. Default "fleetgate".
	ClientID string `mapstructure:"client_id"`
	// RequiredAcks is "all" (default), "1" or "0": terminals are
	// acknowledged after this acknowledgement from Kafka.
	RequiredAcks string `mapstructure:"required_acks"`
	// Idempotent turns on the idempotent producer. Default true.
	Idempotent bool `mapstructure:"idempotent"`
	// Compression is none, gzip, snappy, lz4 (default) or zstd.
	Compression string `mapstructure:"compression"`
	// Partitioner is murmur2 (default: Java's, so records co-partition with
	// Java clients, Streams and Flink), fnv1a or random.
	Partitioner string `mapstructure:"partitioner"`
	// Producer is how records travel to the brokers. "fleetgate"
	// (default): the gateway's own batches on sarama's client, one batch
	// in flight per partition, a failed batch sent again before anything
	// behind it, so a device's records keep their order through every
	// failure while all of a device's waiting records ride in one batch.
	// "sarama": sarama's async producer behind the order gate, which lets
	// one record per device into sarama at a time (a device's rate is then
	// one record per round trip). Both keep the same guarantees
	// (docs/reliability.md).
	Producer string `mapstructure:"producer"`
	// Linger is how long a record may wait for company before the
	// producer sends it. With kafka.producer fleetgate: a partition with
	// nothing in flight sends its batch once its first record has waited
	// this long (or batch_bytes are waiting); records that arrive while a
	// batch is in flight go in the next one without waiting. With sarama:
	// sarama's Flush.Frequency (0 is sarama's "as fast as possible";
	// batch_bytes has no effect then). Longer batches more records into a
	// request (less CPU per record) at that cost in PUBACK latency.
	// Default 1ms (docs/benchmarks.md, issue 11).
	Linger time.Duration `mapstructure:"linger"`
	// BatchBytes sends a partition's batch (fleetgate) or a request
	// (sarama's Flush.Bytes) without waiting for Linger once this many
	// bytes of records are waiting. Default 524288.
	BatchBytes int `mapstructure:"batch_bytes"`
	// DeliveryTimeout bounds how long an input waits for Kafka before it
	// gives up on a message (no PUBACK, HTTP 503), waiting for room under
	// limits.* included; also the basis of the shutdown drain
	// (delivery_timeout + 5s). At least 1s. Default 30s.
	DeliveryTimeout time.Duration `mapstructure:"delivery_timeout"`
	// MaxMessageBytes is the largest record the gateway produces; larger
	// ones go to the error action. Default 1000000.
	MaxMessageBytes int `mapstructure:"max_message_bytes"`
	// SASL configures SASL authentication to the brokers.
	SASL SASLConfig `mapstructure:"sasl"`
	// TLS configures TLS to the brokers.
	TLS TLSConfig `mapstructure:"tls"`
	// Topics lists the topics the gateway checks or creates at start.
	Topics TopicsConfig `mapstructure:"topics"`
	// RetryBudget, with kafka.producer sarama only, is how long sarama
	// itself retries a record (leader lookups, produce retries) before it
	// hands the record back; the producer then sends it again, in order
	// (order.go). The fleetgate producer retries a batch, in place, for as
	// long as it runs. Default 5m.
	RetryBudget time.Duration `mapstructure:"retry_budget"`
	// ReadinessWindow: /readyz fails once records have waited this long
	// without any record being stored. Default 10s.
	ReadinessWindow time.Duration `mapstructure:"readiness_window"`
}

// SASLConfig is kafka.sasl.
type SASLConfig struct {
	// Mechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `mapstructure:"mechanism"`
	// Username is the SASL user name.
	Username string `mapstructure:"username"`
	// Password is the SASL password: give it by FLEETGATE_KAFKA_SASL_PASSWORD
	// rather than in the file (config print masks it).
	Password string `mapstructure:"password"`
}

// TLSConfig is kafka.tls.
type TLSConfig struct {
	// Enabled turns on TLS to the brokers (the system CA pool unless
	// ca_file).
	Enabled bool `mapstructure:"enabled"`
	// CAFile is the CA bundle (PEM) the brokers' certificates are checked
	// against.
	CAFile string `mapstructure:"ca_file"`
	// CertFile is a client certificate (PEM) for mutual TLS.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the client certificate's private key (PEM).
	KeyFile string `mapstructure:"key_file"`
}

// TopicsConfig is kafka.topics.
type TopicsConfig struct {
	// Create creates missing topics at start. The embedded broker always
	// creates them.
	Create bool `mapstructure:"create"`
	// Partitions is the partition count of created topics.
	Partitions int32 `mapstructure:"partitions"`
	// ReplicationFactor is the replica count of created topics (3 on MSK).
	ReplicationFactor int16 `mapstructure:"replication_factor"`
	// Config holds the topic configs of created topics, e.g.
	// {retention.ms: "172800000", min.insync.replicas: "2"}.
	Config map[string]string `mapstructure:"config"`
	// Names are the topics checked (or created) at start, with every
	// literal topic the rules name.
	Names []string `mapstructure:"names"`
}

// The values of kafka.producer.
const (
	ProducerFleetgate = "fleetgate"
	ProducerSarama    = "sarama"
)

// defaultTopics are the topics of the default rule.
var defaultTopics = []string{"message-log", "message-boot", "message-gps", "message-kinematic", "message-adas", "message-dlq"}

// DefaultConfig returns the defaults of SPEC section 5.
func DefaultConfig() Config {
	return Config{
		EmbeddedListen:         "127.0.0.1:9092",
		EmbeddedRetentionBytes: DefaultEmbeddedRetentionBytes,
		Version:                "3.9.0",
		ClientID:               "fleetgate",
		RequiredAcks:           "all",
		Idempotent:             true,
		Producer:               ProducerFleetgate,
		Compression:            "lz4",
		Partitioner:            "murmur2",
		Linger:                 time.Millisecond,
		BatchBytes:             512 * 1024,
		DeliveryTimeout:        30 * time.Second,
		MaxMessageBytes:        1000000,
		RetryBudget:            5 * time.Minute,
		ReadinessWindow:        10 * time.Second,
		Topics: TopicsConfig{
			Partitions:        6,
			ReplicationFactor: 1,
			Config:            map[string]string{},
			Names:             append([]string(nil), defaultTopics...),
		},
	}
}

// Embedded reports whether the configuration asks for the embedded
// development broker.
func (c Config) Embedded() bool { return len(c.Brokers) == 0 }

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			bad("kafka.brokers[%d]: %q is not host:port", i, b)
		}
	}
	if c.Embedded() && !strings.Contains(c.EmbeddedListen, ":") {
		bad("kafka.embedded_listen: %q is not host:port", c.EmbeddedListen)
	}
	if c.Embedded() && c.EmbeddedRetentionBytes != -1 && c.EmbeddedRetentionBytes < int64(c.MaxMessageBytes) {
		bad("kafka.embedded_retention_bytes: %d is less than kafka.max_message_bytes (%d), so a partition could not keep its largest record; give at least %d, or -1 to keep every record",
			c.EmbeddedRetentionBytes, c.MaxMessageBytes, c.MaxMessageBytes)
	}
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		bad("kafka.version: %q is not a Kafka version like 3.9.0", c.Version)
	}
	if c.ClientID == "" {
		bad("kafka.client_id must not be empty")
	}
	acks, err := c.acks()
	if err != nil {
		bad("kafka.required_acks: %v", err)
	}
	if c.Idempotent && err == nil && acks != sarama.WaitForAll {
		bad("kafka.idempotent needs kafka.required_acks: all (or set kafka.idempotent: false)")
	}
	switch c.Producer {
	case ProducerFleetgate:
		if v, err := sarama.ParseKafkaVersion(c.Version); err == nil {
			if _, err := produceVersion(v); err != nil {
				bad("%v", err)
			}
		}
	case ProducerSarama:
	default:
		bad("kafka.producer: %q is not one of %s, %s", c.Producer, ProducerFleetgate, ProducerSarama)
	}
	if _, err := c.codec(); err != nil {
		bad("kafka.compression: %v", err)
	}
	if _, err := NewPartitioner(c.Partitioner); err != nil {
		bad("kafka.partitioner: %v", err)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		bad("kafka.linger: %s is out of range; give 0 (send at once) to 1s", c.Linger)
	}
	if c.BatchBytes < 1024 || c.BatchBytes > 100*1024*1024 {
		bad("kafka.batch_bytes: %d is out of range 1024..104857600", c.BatchBytes)
	}
	if c.DeliveryTimeout < time.Second {
		bad("kafka.delivery_timeout: %s is too short; give at least 1s", c.DeliveryTimeout)
	}
	if c.RetryBudget < time.Second {
		bad("kafka.retry_budget: %s is too short; give at least 1s", c.RetryBudget)
	}
	if c.ReadinessWindow < time.Second {
		bad("kafka.readiness_window: %s is too short; give at least 1s", c.ReadinessWindow)
	}
	if c.MaxMessageBytes < 1024 {
		bad("kafka.max_message_bytes: %d is too small; give at least 1024", c.MaxMessageBytes)
	}
	switch c.SASL.Mechanism {
	case "", sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
	default:
		bad("kafka.sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		bad("kafka.sasl.username is required with kafka.sasl.mechanism %s", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("kafka.tls.cert_file and kafka.tls.key_file go together")
	}
	if c.Topics.Partitions < 1 {
		bad("kafka.topics.partitions must be at least 1")
	}
	if c.Topics.ReplicationFactor < 1 {
		bad("kafka.topics.replication_factor must be at least 1")
	}
	for i, n := range c.Topics.Names {
		if err := ValidTopicName(n); err != nil {
			bad("kafka.topics.names[%d]: %v", i, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) acks() (sarama.RequiredAcks, error) {
	switch strings.ToLower(c.RequiredAcks) {
	case "all", "-1":
		return sarama.WaitForAll, nil
	case "1", "leader":
		return sarama.WaitForLocal, nil
	case "0", "none":
		return sarama.NoResponse, nil
	}
	return 0, fmt.Errorf("%q is not one of all, 1, 0", c.RequiredAcks)
}

func (c Config) codec() (sarama.CompressionCodec, error) {
	switch strings.ToLower(c.Compression) {
	case "none", "":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("%q is not one of none, gzip, snappy, lz4, zstd", c.Compression)
}

// ValidTopicName reports why name cannot be a Kafka topic, or nil.
// Kafka allows 1 to 249 characters of [a-zA-Z0-9._-], and not "." or "..".
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long; Kafka allows 249", len(name))
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has %q at %d; Kafka allows only a-z A-Z 0-9 . _ -", name, c, i)
		}
	}
	return nil
}
