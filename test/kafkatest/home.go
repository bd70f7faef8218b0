package kafkatest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/IBM/sarama"
)

// DefaultKafkaVersion is the Kafka release test/kafka/fetch installs when
// KAFKA_VERSION is not set. Keep it in step with the script (a test checks).
const DefaultKafkaVersion = "4.1.2"

// EnvKafkaHome names the environment variable that points at a fetched Kafka
// (the directory holding lib/ and config/). ./test/run exports it.
const EnvKafkaHome = "FLEETGATE_KAFKA_HOME"

// EnvKeep names the environment variable that, when non-empty, keeps each
// cluster's directory (configs, data, server.log) after Close for inspection.
const EnvKeep = "FLEETGATE_KAFKA_KEEP"

// EnvJVMOpts names the environment variable whose space-separated JVM
// options are added after the package's own to every broker's command line.
const EnvJVMOpts = "FLEETGATE_KAFKA_JVM_OPTS"

// EnvDebug names the environment variable that, when non-empty, traces
// cluster start-up and readiness checks to stderr.
const EnvDebug = "FLEETGATE_KAFKA_DEBUG"

// completeMarker is written by test/kafka/fetch into lib/ once every jar is in
// place; its absence means an interrupted or missing fetch.
const completeMarker = ".complete"

// DefaultKafkaHome returns $FLEETGATE_KAFKA_HOME, or the cache directory that
// test/kafka/fetch uses by default: $HOME/.cache/fleetgate/kafka-<DefaultKafkaVersion>.
func DefaultKafkaHome() string {
	if h := os.Getenv(EnvKafkaHome); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "fleetgate", "kafka-"+DefaultKafkaVersion)
}

// ErrNoKafka is returned (wrapped) by Start when the Kafka home is missing or
// incomplete. Tests may use errors.Is to tell it apart from a broker failure.
var ErrNoKafka = errors.New("kafkatest: no Kafka installation")

// kafkaHome is a checked Kafka installation made by test/kafka/fetch.
type kafkaHome struct {
	dir       string // absolute
	classpath string // "<dir>/lib/*", expanded by the JVM
	log4j     string // absolute path of the log4j2 configuration
	version   string // e.g. "4.1.2", from the kafka_2.13 jar's name
}

// openKafkaHome checks that dir holds a complete fetch and reads its version.
func openKafkaHome(dir string) (*kafkaHome, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w in %q: %v", ErrNoKafka, dir, err)
	}
	hint := fmt.Sprintf("run test/kafka/fetch (with %s=%s if it is not the default) or use ./test/run, which does", EnvKafkaHome, abs)
	lib := filepath.Join(abs, "lib")
	if _, err := os.Stat(filepath.Join(lib, completeMarker)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s (no complete lib/): %s", ErrNoKafka, abs, hint)
		}
		return nil, fmt.Errorf("%w in %s: %v", ErrNoKafka, abs, err)
	}
	log4j := filepath.Join(abs, "config", "log4j2.properties")
	if _, err := os.Stat(log4j); err != nil {
		return nil, fmt.Errorf("%w in %s (no config/log4j2.properties): %s", ErrNoKafka, abs, hint)
	}
	jars, err := filepath.Glob(filepath.Join(lib, "kafka_2.13-*.jar"))
	if err != nil || len(jars) != 1 {
		return nil, fmt.Errorf("%w in %s (want exactly one lib/kafka_2.13-*.jar, found %d): %s", ErrNoKafka, abs, len(jars), hint)
	}
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "kafka_2.13-"), ".jar")
	return &kafkaHome{
		dir:       abs,
		classpath: filepath.Join(lib, "*"),
		log4j:     log4j,
		version:   version,
	}, nil
}

// saramaVersion maps the broker's release to the sarama protocol version to
// configure, falling back to the newest sarama knows for a release it does not.
func saramaVersion(kafka string) sarama.KafkaVersion {
	v, err := sarama.ParseKafkaVersion(kafka)
	if err != nil || !sarama.MaxVersion.IsAtLeast(v) {
		return sarama.MaxVersion
	}
	return v
}
