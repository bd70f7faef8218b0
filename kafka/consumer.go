package kafka

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// NewConsumerClient returns a client for reading topics (the lookup tables'
// compacted topics) with the connection settings of cfg (brokers, TLS,
// SASL, version): a client of its own, so that consuming never shares a
// connection queue with the producer. The caller closes it.
func NewConsumerClient(cfg Config) (sarama.Client, error) {
	sc, err := saramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	sc.ClientID = cfg.ClientID + "-lookups"
	// Consumer errors (a partition's leader lost, an offset out of range)
	// are counted and logged by the reader, not only logged by sarama.
	sc.Consumer.Return.Errors = true
	// A fetch waits at most this long for new records: it bounds how late a
	// live change is seen and how long closing a partition consumer takes.
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka.brokers: lookup consumer: %w", err)
	}
	return client, nil
}
