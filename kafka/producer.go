package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// ErrClosed is returned by Produce after Close has begun.
var ErrClosed = errors.New("kafka producer is closed")

// RecordError is a failure to produce one record that no retry can cure:
// the record goes to the rule's error action instead. Reason is a short
// stable word for headers and metrics.
type RecordError struct {
	Topic  string
	Reason string // one of router.PermanentReasons
	Err    error
}

// Error implements error.
func (e *RecordError) Error() string {
	return fmt.Sprintf("kafka topic %q: %s: %v", e.Topic, e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *RecordError) Unwrap() error { return e.Err }

// Permanent reports that retrying will not help (router.PermanentError).
func (e *RecordError) Permanent() bool { return true }

// ErrorReason returns Reason (for the error action's headers).
func (e *RecordError) ErrorReason() string { return e.Reason }

// Observer is told about every record Kafka stored (the metrics package
// implements it). Its methods must be safe for concurrent use and cheap:
// they run on the producer's completion goroutine.
type Observer interface {
	// Produced: Kafka acknowledged a record of topic, latency after
	// Produce took it. topic is always one the cluster has.
	Produced(topic string, latency time.Duration)
}

type nopObserver struct{}

func (nopObserver) Produced(string, time.Duration) {}

// Option tunes NewProducer.
type Option func(*Producer)

// WithObserver reports stored records to o. Default: none.
func WithObserver(o Observer) Option { return func(p *Producer) { p.obs = o } }

// Producer writes router records to Kafka. It implements router.Sink and
// is safe for concurrent use. The checks every record passes (topic,
// size, partition) are here; taking records to the brokers in order is its
// sender's job (sender.go).
type Producer struct {
	client   sarama.Client // admin calls, topic cache: bounded metadata retries
	out      sender
	topics   *TopicCache
	maxBytes int
	log      *zap.Logger
	obs      Observer
	health   *writeHealth // readiness: can it write (health.go)

	closing   chan struct{}
	mu        sync.RWMutex // held for reading while a record is handed to out
	closed    bool
	closeOnce sync.Once
}

// pending travels with a record through sarama as its Metadata.
type pending struct {
	done      func(error)  // the caller's, from Produce
	health    *writeHealth // told of the result; nil in tests of the gate
	partition int32
	start     time.Time // when Produce took the record
	line      string    // the order gate's line: topic and key; "" without a key (sarama's sender sets it)
}

// outgoing is a record on its way to sarama: the message, its pending
// state and its encoders in one allocation (the encoders are pointers into
// it: sarama takes them as interfaces, and a ByteEncoder boxed on its own
// is an allocation each).
type outgoing struct {
	msg        sarama.ProducerMessage
	pd         pending
	key, value sarama.ByteEncoder
	rec        sarama.Record // the batch sender's copy in its record batch
	size       int           // bytes in a record batch (ProducerMessage.ByteSize)
}

// keyBytes is the record's key; nil without one.
func (o *outgoing) keyBytes() []byte {
	if o.msg.Key == nil {
		return nil
	}
	return o.key
}

// headers are the record's headers as a record batch holds them.
func (o *outgoing) headers() []*sarama.RecordHeader {
	if len(o.msg.Headers) == 0 {
		return nil
	}
	hs := make([]*sarama.RecordHeader, len(o.msg.Headers))
	for i := range o.msg.Headers {
		hs[i] = &o.msg.Headers[i]
	}
	return hs
}

// complete reports the record's result to the producer's health and the
// caller.
func (p *pending) complete(err error) {
	if p.health != nil {
		p.health.completed(err == nil)
	}
	p.done(err)
}

// FixedPartition tells our partitioner the configured partition, if any.
func (p *pending) FixedPartition() (int32, bool) { return p.partition, p.partition >= 0 }

// NewProducer connects to cfg.Brokers and starts the producer. cfg must be
// valid (Config.Validate).
func NewProducer(cfg Config, log *zap.Logger, opts ...Option) (*Producer, error) {
	sc, err := saramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to kafka.brokers %v: %w", cfg.Brokers, err)
	}
	p := &Producer{
		client:   client,
		topics:   NewTopicCache(client),
		health:   newWriteHealth(cfg.ReadinessWindow, time.Now),
		maxBytes: cfg.MaxMessageBytes,
		log:      log,
		obs:      nopObserver{},
		closing:  make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	if cfg.Producer == ProducerSarama {
		p.out, err = newSaramaSender(cfg, sc, p)
	} else {
		p.out, err = newBatchSender(cfg, sc, p)
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	return p, nil
}

// Client returns a sarama client for admin calls (topic checks and
// creation); its metadata requests give up within seconds.
func (p *Producer) Client() sarama.Client { return p.client }

// RefreshTopics reloads the list of existing topics now. Call it after
// creating topics, so that their first records are not refused as unknown.
func (p *Producer) RefreshTopics() error { return p.topics.Refresh() }

// WriteErr returns nil, or why the producer counts as unable to write:
// records have waited kafka.readiness_window without any being stored.
// It answers at once; readiness calls it.
func (p *Producer) WriteErr() error { return p.health.Err() }

// Produce implements router.Sink. Records that can never be written (unknown
// or invalid topic, too large) complete at once with a *RecordError, before
// Produce returns. Records handed over in order with the same key and topic
// are stored in that order: a record waits in the producer (Produce returns
// at once) while an earlier record of its key is not stored yet, and a
// record that fails with a retriable error is sent again until it is
// stored or the producer shuts down (sender.go). done is then called when
// the record is stored, fails permanently, or is failed at shutdown.
func (p *Producer) Produce(ctx context.Context, rec *router.Record, done func(error)) error {
	if err := ValidTopicName(rec.Topic); err != nil {
		done(&RecordError{Topic: rec.Topic, Reason: router.ReasonInvalidTopic, Err: err})
		return nil
	}
	// TopicUndecided (the brokers did not answer) goes on to sarama, which
	// waits for metadata: failing it here could let a later record of the
	// same device overtake it.
	if p.topics.Lookup(rec.Topic) == TopicAbsent {
		done(&RecordError{Topic: rec.Topic, Reason: router.ReasonUnknownTopic, Err: errors.New("the topic does not exist in the Kafka cluster (no broker lists it)")})
		return nil
	}
	o := &outgoing{
		pd:    pending{done: done, health: p.health, partition: rec.Partition, start: time.Now()},
		value: rec.Value,
		key:   rec.Key,
	}
	pd, msg := &o.pd, &o.msg
	msg.Topic, msg.Value, msg.Metadata = rec.Topic, &o.value, pd
	if rec.Key != nil {
		msg.Key = &o.key
	}
	if len(rec.Headers) > 0 {
		msg.Headers = make([]sarama.RecordHeader, len(rec.Headers))
		for i, h := range rec.Headers {
			msg.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	if o.size = msg.ByteSize(2); o.size > p.maxBytes {
		done(&RecordError{Topic: rec.Topic, Reason: router.ReasonRecordTooLarge,
			Err: fmt.Errorf("record is %d bytes; kafka.max_message_bytes is %d", o.size, p.maxBytes)})
		return nil
	}
	if rec.Partition >= 0 {
		n, err := p.client.Partitions(rec.Topic)
		if err == nil && rec.Partition >= int32(len(n)) {
			done(&RecordError{Topic: rec.Topic, Reason: router.ReasonInvalidPartition,
				Err: fmt.Errorf("partition %d does not exist; the topic has %d", rec.Partition, len(n))})
			return nil
		}
	}

	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	p.health.handed()
	if err := p.out.send(ctx, o); err != nil {
		p.health.cancelled()
		return err
	}
	return nil
}

// Close stops accepting records, waits for every record already handed over
// to complete (stored or failed), and closes the connection to Kafka. Safe
// to call more than once.
func (p *Producer) Close() error { return p.Shutdown(context.Background()) }

// Shutdown is Close with a deadline: when ctx ends before every record
// handed over has completed, it closes the connection to Kafka, which cuts
// sarama's retries short and fails the records left (none of them was
// acknowledged to anybody), waits a moment for their results and returns
// ctx's error. Safe to call more than once; later calls return nil.
func (p *Producer) Shutdown(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() {
		close(p.closing)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		err = p.out.shutdown(ctx)
		p.topics.Close()
		err = errors.Join(err, p.client.Close())
	})
	return err
}
