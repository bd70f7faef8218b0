package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Listen != ":1883" || cfg.Kafka.EmbeddedListen != "127.0.0.1:9092" || len(cfg.Kafka.Brokers) != 0 {
		t.Fatalf("development default changed: %+v", cfg)
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Name != "device-reports" {
		t.Fatalf("default rule missing: %+v", cfg.Rules)
	}
	if cfg.Kafka.RequiredAcks != "all" || !cfg.Kafka.Idempotent || cfg.Kafka.Partitioner != "murmur2" {
		t.Fatalf("kafka defaults: %+v", cfg.Kafka)
	}
}

func TestFileAndEnvironment(t *testing.T) {
	cfg, err := Load("testdata/full.yaml", envOf(map[string]string{
		"FLEETGATE_KAFKA_BROKERS":           "k1:9092,k2:9092,k3:9092",
		"FLEETGATE_KAFKA_DELIVERY_TIMEOUT":  "7s",
		"FLEETGATE_MQTT_MAX_INFLIGHT":       "8",
		"FLEETGATE_KAFKA_TOPICS_PARTITIONS": "24",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k1:9092", "k2:9092", "k3:9092"}; !reflect.DeepEqual(cfg.Kafka.Brokers, want) {
		t.Errorf("kafka.brokers = %v, want %v", cfg.Kafka.Brokers, want)
	}
	if cfg.Kafka.DeliveryTimeout != 7*time.Second || cfg.MQTT.DeliveryTimeout != 7*time.Second {
		t.Errorf("delivery timeout %v / %v, want 7s", cfg.Kafka.DeliveryTimeout, cfg.MQTT.DeliveryTimeout)
	}
	if cfg.MQTT.MaxInflight != 8 || cfg.Kafka.Topics.Partitions != 24 || cfg.Kafka.Topics.ReplicationFactor != 3 {
		t.Errorf("numbers: %+v %+v", cfg.MQTT, cfg.Kafka.Topics)
	}
	if cfg.MQTT.Listen != ":11883" || cfg.Log.Format != "console" || cfg.Admin.Listen != "127.0.0.1:9999" {
		t.Errorf("file values lost: %+v", cfg)
	}
	// A list in the file replaces the default list.
	if want := []string{"message-log", "message-dlq"}; !reflect.DeepEqual(cfg.Kafka.Topics.Names, want) {
		t.Errorf("kafka.topics.names = %v, want %v", cfg.Kafka.Topics.Names, want)
	}
	if cfg.Kafka.Topics.Config["retention.ms"] != "172800000" {
		t.Errorf("kafka.topics.config = %v", cfg.Kafka.Topics.Config)
	}
	if len(cfg.Rules) != 1 || cfg.Rules[0].Name != "only-logs" || cfg.Rules[0].ErrorAction != nil {
		t.Errorf("rules replaced the default incorrectly: %+v", cfg.Rules)
	}
	// Keys the file does not set keep their defaults.
	if cfg.Kafka.Compression != "lz4" || cfg.MQTT.MaxPacketBytes != 262144 {
		t.Errorf("defaults lost: %+v", cfg.Kafka)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, path string
		env        map[string]string
		want       string
	}{
		{"unknown key", "testdata/typo.yaml", nil, "kafka.brokrs"},
		{"bad rule", "testdata/badrule.yaml", nil, "rules[0] (broken) sql"},
		{"acks vs idempotence", "", map[string]string{"FLEETGATE_KAFKA_REQUIRED_ACKS": "1"}, "kafka.idempotent needs kafka.required_acks: all"},
		{"bad duration", "", map[string]string{"FLEETGATE_KAFKA_DELIVERY_TIMEOUT": "soon"}, "delivery_timeout"},
		{"bad level", "", map[string]string{"FLEETGATE_LOG_LEVEL": "loud"}, "log.level"},
		{"bad broker", "", map[string]string{"FLEETGATE_KAFKA_BROKERS": "nohostport"}, "kafka.brokers[0]"},
		{"bad partitioner", "", map[string]string{"FLEETGATE_KAFKA_PARTITIONER": "crc"}, "kafka.partitioner"},
		{"negative linger", "", map[string]string{"FLEETGATE_KAFKA_LINGER": "-1ms"}, "kafka.linger"},
		{"tiny batch", "", map[string]string{"FLEETGATE_KAFKA_BATCH_BYTES": "10"}, "kafka.batch_bytes"},
		{"embedded retention below a record", "", map[string]string{"FLEETGATE_KAFKA_EMBEDDED_RETENTION_BYTES": "0"}, "kafka.embedded_retention_bytes: 0 is less than kafka.max_message_bytes"},
		{"tiny pending writes", "", map[string]string{"FLEETGATE_MQTT_MAX_PENDING_WRITES": "1"}, "mqtt.max_pending_writes"},
		{"no listener", "", map[string]string{"FLEETGATE_MQTT_LISTEN": ""}, "mqtt: no listener"},
		{"revocation lists without a client CA", "", map[string]string{"FLEETGATE_MQTT_TLS_CRL_FILE": "crl.pem"}, "mqtt.tls.crl_file is set without mqtt.tls.client_ca_file"},
		{"missing file", "testdata/nope.yaml", nil, "nope.yaml"},
		{"unresolved secret", "", map[string]string{"FLEETGATE_KAFKA_SASL_MECHANISM": "PLAIN", "FLEETGATE_KAFKA_SASL_USERNAME": "u", "FLEETGATE_KAFKA_SASL_PASSWORD": "${X}"}, "kafka.sasl.password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.path, envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestEmbeddedRetentionBytes: -1 keeps everything, the key is checked only
// while the embedded broker is used, and the default is 8 MiB.
func TestEmbeddedRetentionBytes(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want int64
	}{
		{"default", nil, 8 << 20},
		{"keep everything", map[string]string{"FLEETGATE_KAFKA_EMBEDDED_RETENTION_BYTES": "-1"}, -1},
		{"set", map[string]string{"FLEETGATE_KAFKA_EMBEDDED_RETENTION_BYTES": "33554432"}, 32 << 20},
		{"ignored with brokers", map[string]string{"FLEETGATE_KAFKA_BROKERS": "b1:9092", "FLEETGATE_KAFKA_EMBEDDED_RETENTION_BYTES": "0"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load("", envOf(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Kafka.EmbeddedRetentionBytes; got != c.want {
				t.Errorf("kafka.embedded_retention_bytes = %d, want %d", got, c.want)
			}
		})
	}
}

func TestRulesFile(t *testing.T) {
	cfg, err := Load("testdata/rulesfile.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[1].Name != "adas-alerts" || cfg.Rules[1].Actions[0].Republish == nil {
		t.Fatalf("rules from rules_file: %+v", cfg.Rules)
	}
}
