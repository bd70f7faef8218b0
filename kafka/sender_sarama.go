package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// saramaSender is sarama's async producer behind the order gate
// (order.go): one record per device in sarama's hands at a time.
type saramaSender struct {
	pclient sarama.Client // the async producer's: waits out outages
	ap      sarama.AsyncProducer
	gate    *orderGate
	topics  *TopicCache
	obs     Observer
	log     *zap.Logger
	closing <-chan struct{}

	givenBack    atomic.Int64 // records sarama gave back with retriable errors
	givenBackLog sampledLog

	drained sync.WaitGroup
}

// newSaramaSender starts sarama's async producer on its own client (sc
// with producerClientConfig) for p.
func newSaramaSender(cfg Config, sc *sarama.Config, p *Producer) (*saramaSender, error) {
	pclient, err := sarama.NewClient(cfg.Brokers, producerClientConfig(sc, cfg.RetryBudget))
	if err != nil {
		return nil, fmt.Errorf("connect to kafka.brokers %v: %w", cfg.Brokers, err)
	}
	ap, err := sarama.NewAsyncProducerFromClient(pclient)
	if err != nil {
		pclient.Close()
		return nil, fmt.Errorf("start kafka producer: %w", err)
	}
	s := &saramaSender{
		pclient: pclient,
		ap:      ap,
		gate:    newOrderGate(ap.Input(), resendBackoff),
		topics:  p.topics,
		obs:     p.obs,
		log:     p.log,
		closing: p.closing,
	}
	s.drained.Add(2)
	go s.drainSuccesses()
	go s.drainErrors()
	return s, nil
}

// resendBackoff is how long a record sarama gave back with a retriable
// error waits before the order gate sends it again.
const resendBackoff = 500 * time.Millisecond

func (s *saramaSender) send(ctx context.Context, o *outgoing) error {
	msg := &o.msg
	o.pd.line = lineKey(msg.Topic, o.keyBytes())
	if !s.gate.admit(msg) {
		return nil // behind an earlier record of its device; the gate sends it
	}
	select {
	case s.ap.Input() <- msg:
		return nil
	case <-ctx.Done():
		if o.pd.line != "" {
			// The record holds its place in its line already: records of
			// its device may be waiting behind it. The gate sends it.
			s.gate.handOver(msg)
			return nil
		}
		return ctx.Err()
	case <-s.closing:
		s.gate.cancel(msg, ErrClosed)
		return ErrClosed
	}
}

func (s *saramaSender) drainSuccesses() {
	defer s.drained.Done()
	for msg := range s.ap.Successes() {
		pd := msg.Metadata.(*pending)
		s.obs.Produced(msg.Topic, time.Since(pd.start))
		s.gate.stored(msg)
	}
}

func (s *saramaSender) drainErrors() {
	defer s.drained.Done()
	for perr := range s.ap.Errors() {
		// confirmAbsent asks the brokers (seconds at worst) only for
		// UNKNOWN_TOPIC_OR_PARTITION after sarama's own retries, which is
		// rare; meanwhile the other results wait.
		err := classify(perr.Msg.Topic, perr.Err, s.topics.confirmAbsent)
		if !isPermanent(err) {
			s.noteGivenBack(err)
		}
		s.gate.failed(perr.Msg, err)
	}
}

// noteGivenBack logs, at most every sampledLogEvery, that sarama gave
// records back with a retriable error (its retry budget or circuit breaker):
// the order gate sends them again.
func (s *saramaSender) noteGivenBack(err error) {
	n := s.givenBack.Add(1)
	if !s.givenBackLog.due() {
		return
	}
	s.log.Warn("kafka: records given back by the producer after kafka.retry_budget; sending them again in order",
		zap.Int64("records_given_back_total", n), zap.Error(err))
}

// sampledLog spaces a kind of log line: at most one every
// sampledLogEvery. Safe for concurrent use.
type sampledLog struct{ last atomic.Int64 } // UnixNano of the last line

// sampledLogEvery spaces the producers' lines about records sent again.
const sampledLogEvery = 5 * time.Second

// due reports whether a line may be logged now, and if so counts it as
// logged.
func (l *sampledLog) due() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(sampledLogEvery) && l.last.CompareAndSwap(last, now)
}

func (s *saramaSender) shutdown(ctx context.Context) error {
	// Records of a device wait in the order gate behind the one sarama
	// has: let them follow (Kafka up) until ctx ends, then fail the ones
	// still waiting. Only then may sarama's input close.
	if gerr := s.gate.waitIdle(ctx); gerr != nil {
		s.gate.abort(fmt.Errorf("kafka producer shut down before the record was sent: %w", ErrClosed))
	}
	s.gate.stop()
	// AsyncClose flushes what is buffered and, once sarama has delivered
	// every result, closes the channels the drain goroutines read.
	s.ap.AsyncClose()
	drained := make(chan struct{})
	go func() {
		s.drained.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		return s.pclient.Close()
	case <-ctx.Done():
	}
	cerr := s.pclient.Close()
	select {
	case <-drained:
	case <-time.After(abortGrace):
		s.log.Warn("kafka producer still delivering failures after its client closed")
	}
	return errors.Join(fmt.Errorf("kafka: records still in flight at the shutdown deadline were failed: %w", ctx.Err()), cerr)
}

// abortGrace is how long shutdown waits for sarama's failures after it
// closed the client at the deadline.
const abortGrace = 2 * time.Second
