package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// producerClientConfig is sc for the async producer's own client. sarama
// fails a record at once when it cannot find its partition's leader
// (updateLeader); letting the leader lookup retry for budget
// (kafka.retry_budget) keeps a partition's queue waiting through outages
// shorter than that without handing records back. Past it (and through
// sarama's circuit breaker, which opens after three failed lookups) records
// come back failed, and the order gate (order.go) sends them again, in
// order; the inputs give up on their own delivery timeout (no PUBACK, 503).
func producerClientConfig(sc *sarama.Config, budget time.Duration) *sarama.Config {
	pc := *sc
	pc.Metadata.Retry.Max = max(int(budget/(500*time.Millisecond)), 1)
	pc.Metadata.Retry.Backoff = 500 * time.Millisecond
	pc.Metadata.Retry.BackoffFunc = nil
	pc.Metadata.Timeout = budget
	return &pc
}

// saramaConfig turns our configuration into sarama's. cfg must be valid.
func saramaConfig(cfg Config) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = cfg.ClientID
	v, err := sarama.ParseKafkaVersion(cfg.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka.version: %w", err)
	}
	sc.Version = v

	acks, err := cfg.acks()
	if err != nil {
		return nil, fmt.Errorf("kafka.required_acks: %w", err)
	}
	// acks=all by default: a PUBACK promises the record survives the loss of
	// the leader, which only the full ISR acknowledgement gives.
	sc.Producer.RequiredAcks = acks
	// Idempotence makes the broker drop the duplicates that sarama's own
	// retries would otherwise write, and keeps per-partition order through
	// those retries. It needs acks=all and one request in flight per broker.
	sc.Producer.Idempotent = cfg.Idempotent
	if cfg.Idempotent {
		sc.Net.MaxOpenRequests = 1
	}
	if sc.Producer.Compression, err = cfg.codec(); err != nil {
		return nil, fmt.Errorf("kafka.compression: %w", err)
	}
	if sc.Producer.Partitioner, err = NewPartitioner(cfg.Partitioner); err != nil {
		return nil, fmt.Errorf("kafka.partitioner: %w", err)
	}
	// Successes and errors are both read by the producer's drain goroutine:
	// every record's completion is what releases a PUBACK or an HTTP 200.
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	// A short linger (kafka.linger) batches records of many devices into
	// one request without adding noticeable latency to a PUBACK; while a
	// request is in flight (one per broker, idempotence) records batch up
	// anyway, so under load the broker's round trip sets the batch size.
	// A device's next record (the order gate lets one per device into
	// sarama) waits for linger on top of the round trip: 1ms measured
	// better than 2ms for few busy devices and no worse for many.
	// Linger 0 is sarama's "as fast as possible", which needs every flush
	// trigger at 0: a byte trigger alone would hold records until it is
	// reached.
	sc.Producer.Flush.Frequency = cfg.Linger
	if cfg.Linger > 0 {
		sc.Producer.Flush.Bytes = cfg.BatchBytes
	}
	// Larger records are refused before they reach sarama (permanent error,
	// error action); the limit here is the same so both agree.
	sc.Producer.MaxMessageBytes = cfg.MaxMessageBytes
	// Retry for as long as an input is willing to wait (delivery_timeout):
	// a leader election or a broker restart should delay a PUBACK, not fail
	// it. Backoff grows to 1 s so that a dead cluster is not hammered.
	sc.Producer.Retry.Max = int(cfg.DeliveryTimeout/(500*time.Millisecond)) + 3
	sc.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration { return retryBackoff(retries + 1) }
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	// Fail a dead connection within seconds so retries can go to the new
	// leader; the defaults (30 s) exceed a typical delivery timeout.
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	sc.Net.WriteTimeout = 10 * time.Second
	// sarama's own metrics cost CPU per record and nobody reads them
	// (metrics.go).
	sc.MetricRegistry = discardMetrics{}
	// Topics are never auto-created by writes (SPEC section 4).
	sc.Metadata.AllowAutoTopicCreation = false

	if cfg.TLS.Enabled {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if m := cfg.SASL.Mechanism; m != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = cfg.SASL.Username
		sc.Net.SASL.Password = cfg.SASL.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(m)
		switch m {
		case sarama.SASLTypeSCRAMSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
		case sarama.SASLTypeSCRAMSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return sc, nil
}

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient, which sarama
// leaves to the user.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, pass, authzID string) error {
	c, err := s.hash.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *scramClient) Done() bool                            { return s.conv.Done() }
