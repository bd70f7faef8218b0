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

// batchSender is fleetgate's own produce path (kafka.producer: fleetgate),
// on sarama's client, connections and protocol encoding: each partition
// has at most one batch in flight, and its records wait behind it in
// arrival order. A batch is one Kafka record batch, which the broker
// appends whole or not at all; a batch that fails with a retriable error
// is sent again, the same records with the same sequence numbers, until it
// is stored; the records behind it wait. So a device's records are stored
// in order through every failure by construction, and, unlike the order
// gate (order.go), all the records a device has waiting ride in the next
// batch of its partition: a device's rate is no longer bounded by one
// record per round trip.
//
// A batch that fails for good (a permanent error, classify) fails every
// record in it; they go to the error action and the records behind them
// follow. The idempotent producer (kafka.idempotent) is ours too: a
// producer id from the brokers, a sequence per partition, so that a batch
// sent again after a lost answer is stored once.
//
// One goroutine per topic (topicLine.run) owns its partitions; a request
// to a broker goes out on a goroutine of its own and hands its answer back
// to the topic's loop.
type batchSender struct {
	client     sarama.Client // its own: bounded metadata retries, several requests per connection
	acks       sarama.RequiredAcks
	timeout    time.Duration // the brokers' wait for the in-sync replicas
	version    int16         // ProduceRequest version
	codec      sarama.CompressionCodec
	level      int
	idempotent bool
	linger     time.Duration
	batchBytes int // a partition's batch is sent without linger past this
	maxBytes   int // and never grows past this (kafka.max_message_bytes)
	newPart    sarama.PartitionerConstructor
	topics     *TopicCache
	obs        Observer
	log        *zap.Logger

	mu    sync.RWMutex
	lines map[string]*topicLine

	pidMu sync.Mutex
	pid   producerID

	taken   atomic.Int64 // records taken by send and not completed
	aborted atomic.Pointer[error]
	quit    chan struct{} // closed at shutdown: the loops end once idle (or aborted)
	loops   sync.WaitGroup
	gone    chan struct{} // closed once the loops have ended: answers go nowhere

	retried       atomic.Int64 // batches sent again after a retriable error
	retriedLogged atomic.Int64 // UnixNano of the last log line about them
}

// producerID is the idempotent producer's identity from InitProducerID;
// gen counts the identities this sender has had (0: none yet).
type producerID struct {
	id    int64
	epoch int16
	gen   int
}

// newBatchSender connects its own client (sc, changed as it needs) for p.
func newBatchSender(cfg Config, sc *sarama.Config, p *Producer) (*batchSender, error) {
	version, err := produceVersion(sc.Version)
	if err != nil {
		return nil, err
	}
	bc := *sc
	// Idempotence is this sender's (sequence numbers per partition, one
	// batch in flight per partition), so sarama's own must stay off: it
	// allows one request per connection, and the partitions of a broker
	// go out in requests of their own.
	bc.Producer.Idempotent = false
	bc.Net.MaxOpenRequests = 5
	// A lookup that fails comes back within seconds; the topic's loop
	// tries again after a back-off, holding the records in order.
	bc.Metadata.Retry.Max = 2
	bc.Metadata.Retry.Backoff = 250 * time.Millisecond
	client, err := sarama.NewClient(cfg.Brokers, &bc)
	if err != nil {
		return nil, fmt.Errorf("connect to kafka.brokers %v: %w", cfg.Brokers, err)
	}
	return &batchSender{
		client:     client,
		acks:       sc.Producer.RequiredAcks,
		timeout:    sc.Producer.Timeout,
		version:    version,
		codec:      sc.Producer.Compression,
		level:      sc.Producer.CompressionLevel,
		idempotent: cfg.Idempotent,
		linger:     cfg.Linger,
		batchBytes: cfg.BatchBytes,
		maxBytes:   cfg.MaxMessageBytes,
		newPart:    sc.Producer.Partitioner,
		topics:     p.topics,
		obs:        p.obs,
		log:        p.log,
		lines:      map[string]*topicLine{},
		quit:       make(chan struct{}),
		gone:       make(chan struct{}),
	}, nil
}

// produceVersion is the ProduceRequest version for Kafka version v, as
// sarama's own producer picks it; record batches need 0.11.
func produceVersion(v sarama.KafkaVersion) (int16, error) {
	steps := []struct {
		at      sarama.KafkaVersion
		version int16
	}{
		{sarama.V3_7_0_0, 10}, {sarama.V2_8_0_0, 9}, {sarama.V2_4_0_0, 8}, {sarama.V2_1_0_0, 7},
		{sarama.V2_0_0_0, 6}, {sarama.V1_0_0_0, 5}, {sarama.V0_11_0_0, 3},
	}
	for _, s := range steps {
		if v.IsAtLeast(s.at) {
			return s.version, nil
		}
	}
	return 0, fmt.Errorf("kafka.producer: fleetgate needs kafka.version 0.11.0 or newer (record batches), not %s; use kafka.producer: sarama for older brokers", v)
}

func (s *batchSender) send(_ context.Context, o *outgoing) error {
	t := s.line(o.msg.Topic)
	s.taken.Add(1)
	t.mu.Lock()
	t.queue = append(t.queue, o)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

// line returns topic's line, starting its loop the first time.
func (s *batchSender) line(topic string) *topicLine {
	s.mu.RLock()
	t := s.lines[topic]
	s.mu.RUnlock()
	if t != nil {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.lines[topic]; t == nil {
		t = &topicLine{
			s:       s,
			topic:   topic,
			part:    s.newPart(topic),
			parts:   map[int32]*partLine{},
			wake:    make(chan struct{}, 1),
			results: make(chan *produceResult),
			timer:   time.NewTimer(time.Hour),
		}
		t.timer.Stop()
		s.lines[topic] = t
		s.loops.Add(1)
		go t.run()
	}
	return t
}

// complete reports o's result.
func (s *batchSender) complete(o *outgoing, err error) {
	if err == nil {
		s.obs.Produced(o.msg.Topic, time.Since(o.pd.start))
	}
	s.taken.Add(-1)
	o.pd.complete(err)
}

// abortErr is the error records fail with once shutdown gave up on them;
// nil while the sender runs.
func (s *batchSender) abortErr() error {
	if e := s.aborted.Load(); e != nil {
		return *e
	}
	return nil
}

// producerID returns the current idempotent identity, asking the brokers
// for one when there is none (or the one of generation bad was refused).
func (s *batchSender) producerID(bad int) (producerID, error) {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	if s.pid.gen != 0 && s.pid.gen != bad {
		return s.pid, nil
	}
	resp, err := s.client.InitProducerID()
	if err == nil && resp.Err != sarama.ErrNoError {
		err = resp.Err
	}
	if err != nil {
		return producerID{}, fmt.Errorf("kafka: get an idempotent producer id: %w", err)
	}
	s.pid = producerID{id: resp.ProducerID, epoch: resp.ProducerEpoch, gen: s.pid.gen + 1}
	return s.pid, nil
}

// noteRetry logs, at most every givenBackLogEvery, that batches are being
// sent again.
func (s *batchSender) noteRetry(topic string, partition int32, err error) {
	n := s.retried.Add(1)
	now := time.Now().UnixNano()
	last := s.retriedLogged.Load()
	if now-last < int64(givenBackLogEvery) || !s.retriedLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("kafka: a batch failed with a retriable error; sending it again, the records behind it wait in order",
		zap.String("topic", topic), zap.Int32("partition", partition),
		zap.Int64("batches_retried_total", n), zap.Error(err))
}

func (s *batchSender) shutdown(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for s.taken.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			abort := fmt.Errorf("kafka producer shut down before the record was stored: %w", ErrClosed)
			s.aborted.Store(&abort)
			err = fmt.Errorf("kafka: records still in flight at the shutdown deadline were failed: %w", ctx.Err())
			break wait
		}
	}
	close(s.quit)
	s.loops.Wait()
	close(s.gone)
	if err == nil {
		return s.client.Close()
	}
	// A request the brokers never answer keeps sarama's connection (and
	// its Close) waiting: its records have failed already, and the
	// connections close in the background.
	closed := make(chan error, 1)
	go func() { closed <- s.client.Close() }()
	select {
	case cerr := <-closed:
		err = errors.Join(err, cerr)
	case <-time.After(abortGrace):
		s.log.Warn("kafka: a broker connection is still closing after the shutdown deadline")
	}
	return err
}

// topicLine is one topic's records on their way: the ones not placed on a
// partition yet (queue, filled by send) and its partitions' lines, which
// only the loop (run) touches.
type topicLine struct {
	s     *batchSender
	topic string
	part  sarama.Partitioner

	mu    sync.Mutex
	queue []*outgoing // taken by send, in order, not placed yet
	spare []*outgoing // the previous queue's array, for the next swap

	wake     chan struct{}
	results  chan *produceResult
	timer    *time.Timer // fires at next
	next     time.Time   // the earliest linger or back-off deadline of this round
	placeAt  time.Time   // no placing before this (a partition lookup failed)
	inflight int         // requests in flight
	parts    map[int32]*partLine
	ready    map[*sarama.Broker][]*partLine // scratch of sendReady
	refresh  atomic.Bool                    // a metadata refresh is running
}

// partLine is one partition's records: the batch in flight (or waiting to
// be sent again) and the records behind it.
type partLine struct {
	id       int32
	waiting  []*outgoing
	bytes    int // of waiting
	batch    []*outgoing
	sent     bool      // batch is in flight
	retryAt  time.Time // batch is sent again no sooner
	retries  int
	seq      int32 // next sequence number (idempotence)
	pidGen   int   // the producer id seq counts under
	batchSeq int32 // batch's first sequence number
	batchPID producerID
}

// produceResult is a request's answer for the partitions it carried.
type produceResult struct {
	broker *sarama.Broker
	parts  []*partLine
	resp   *sarama.ProduceResponse
	err    error
}

// run is the topic's loop: place, send what is ready, take answers.
func (t *topicLine) run() {
	defer t.s.loops.Done()
	for {
		now := time.Now()
		t.next = time.Time{}
		t.place(now)
		if t.s.abortErr() != nil {
			// Shutdown gave up: every record fails now, the ones in
			// requests without an answer too (none was acknowledged to
			// anybody; a late answer goes nowhere).
			t.failAll()
			return
		}
		t.sendReady(now)
		if !t.next.IsZero() {
			t.timer.Reset(max(t.next.Sub(now), 0))
		}
		select {
		case <-t.wake:
		case r := <-t.results:
			t.handle(r)
		case <-t.timer.C:
		case <-t.s.quit:
			if t.inflight == 0 && t.empty() {
				return
			}
			if t.s.abortErr() == nil {
				// Records still on their way (send raced shutdown's
				// count): keep serving them.
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// empty reports that the topic holds no record.
func (t *topicLine) empty() bool {
	t.mu.Lock()
	n := len(t.queue)
	t.mu.Unlock()
	if n > 0 {
		return false
	}
	for _, pl := range t.parts {
		if len(pl.waiting) > 0 || len(pl.batch) > 0 {
			return false
		}
	}
	return true
}

// place moves the records send queued onto their partitions' lines, in
// order. A record whose partition cannot be found yet (no metadata) stops
// the placing: it and the records after it wait, so none overtakes it.
func (t *topicLine) place(now time.Time) {
	if now.Before(t.placeAt) {
		return
	}
	t.mu.Lock()
	q := t.queue
	t.queue = t.spare[:0]
	t.mu.Unlock()
	for i, o := range q {
		p, err := t.partitionOf(o)
		if err != nil {
			t.mu.Lock()
			t.queue = append(append([]*outgoing(nil), q[i:]...), t.queue...)
			t.mu.Unlock()
			t.placeAt = now.Add(resendBackoff)
			t.later(t.placeAt)
			t.s.noteRetry(t.topic, -1, err)
			q = q[:i]
			break
		}
		pl := t.parts[p]
		if pl == nil {
			pl = &partLine{id: p}
			t.parts[p] = pl
		}
		pl.waiting = append(pl.waiting, o)
		pl.bytes += o.msg.ByteSize(2)
	}
	clear(q)
	t.mu.Lock()
	t.spare = q[:0]
	t.mu.Unlock()
}

// partitionOf picks o's partition: the configured one, or the
// partitioner's (murmur2 of the key by default).
func (t *topicLine) partitionOf(o *outgoing) (int32, error) {
	if o.pd.partition >= 0 {
		return o.pd.partition, nil
	}
	ps, err := t.s.client.Partitions(t.topic)
	if err != nil {
		return 0, fmt.Errorf("kafka topic %q: partitions: %w", t.topic, err)
	}
	if len(ps) == 0 {
		return 0, fmt.Errorf("kafka topic %q: no partitions known yet", t.topic)
	}
	return t.part.Partition(&o.msg, int32(len(ps)))
}

// later makes the loop wake at at, unless it wakes sooner.
func (t *topicLine) later(at time.Time) {
	if t.next.IsZero() || at.Before(t.next) {
		t.next = at
	}
}

// sendReady sends, one request per broker, every partition's batch that
// may go: nothing in flight, and its records have waited out the linger
// (or fill batch_bytes), or its back-off after a failure is over.
func (t *topicLine) sendReady(now time.Time) {
	s := t.s
	if t.ready == nil {
		t.ready = map[*sarama.Broker][]*partLine{}
	}
	for _, pl := range t.parts {
		if pl.sent {
			continue
		}
		if len(pl.batch) == 0 {
			if len(pl.waiting) == 0 {
				continue
			}
			if at := pl.waiting[0].pd.start.Add(s.linger); pl.bytes < s.batchBytes && now.Before(at) {
				t.later(at)
				continue
			}
			pl.fill(s.maxBytes)
		} else if now.Before(pl.retryAt) {
			t.later(pl.retryAt)
			continue
		}
		leader, err := s.client.Leader(t.topic, pl.id)
		if err != nil {
			t.failed(pl, fmt.Errorf("kafka topic %q partition %d: leader: %w", t.topic, pl.id, err), now)
			t.later(pl.retryAt)
			continue
		}
		t.ready[leader] = append(t.ready[leader], pl)
	}
	for b, pls := range t.ready {
		req, err := t.request(pls)
		delete(t.ready, b)
		if err != nil {
			for _, pl := range pls {
				t.failed(pl, err, now)
				t.later(pl.retryAt)
			}
			continue
		}
		for _, pl := range pls {
			pl.sent = true
		}
		t.inflight++
		go func() {
			resp, err := b.Produce(req)
			select {
			case t.results <- &produceResult{broker: b, parts: pls, resp: resp, err: err}:
			case <-s.gone:
			}
		}()
	}
}

// fill makes the records waiting the partition's next batch, up to
// maxBytes.
func (pl *partLine) fill(maxBytes int) {
	n, size := 0, 0
	for _, o := range pl.waiting {
		sz := o.msg.ByteSize(2)
		if n > 0 && size+sz > maxBytes-batchOverhead {
			break
		}
		n++
		size += sz
	}
	pl.batch = append(pl.batch[:0], pl.waiting[:n]...)
	m := copy(pl.waiting, pl.waiting[n:])
	clear(pl.waiting[m:])
	pl.waiting = pl.waiting[:m]
	pl.bytes -= size
	pl.batchSeq, pl.batchPID = -1, producerID{}
}

// batchOverhead is a record batch's header (61 bytes) with room to spare.
const batchOverhead = 128

// request builds the ProduceRequest of partitions pls. A batch keeps the
// producer id and sequence numbers it was first sent with, so that the
// broker stores a batch sent again once.
func (t *topicLine) request(pls []*partLine) (*sarama.ProduceRequest, error) {
	s := t.s
	req := &sarama.ProduceRequest{
		RequiredAcks: s.acks,
		Timeout:      int32(s.timeout / time.Millisecond),
		Version:      s.version,
	}
	for _, pl := range pls {
		rb := &sarama.RecordBatch{
			Version:          2,
			Codec:            s.codec,
			CompressionLevel: s.level,
			ProducerID:       -1,
			ProducerEpoch:    -1,
			FirstSequence:    -1,
			FirstTimestamp:   pl.batch[0].pd.start.Truncate(time.Millisecond),
			LastOffsetDelta:  int32(len(pl.batch) - 1),
			Records:          make([]*sarama.Record, len(pl.batch)),
		}
		if s.idempotent {
			if pl.batchSeq < 0 {
				pid, err := s.producerID(0)
				if err != nil {
					return nil, err
				}
				if pl.pidGen != pid.gen {
					pl.seq, pl.pidGen = 0, pid.gen
				}
				pl.batchSeq, pl.batchPID = pl.seq, pid
				pl.seq = nextSequence(pl.seq, len(pl.batch))
			}
			rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pl.batchPID.id, pl.batchPID.epoch, pl.batchSeq
		}
		maxTS := rb.FirstTimestamp
		for i, o := range pl.batch {
			ts := o.pd.start.Truncate(time.Millisecond)
			if ts.After(maxTS) {
				maxTS = ts
			}
			o.rec = sarama.Record{
				Key:            o.keyBytes(),
				Value:          o.value,
				Headers:        o.headers(),
				OffsetDelta:    int64(i),
				TimestampDelta: ts.Sub(rb.FirstTimestamp),
			}
			rb.Records[i] = &o.rec
		}
		rb.MaxTimestamp = maxTS
		req.AddBatch(t.topic, pl.id, rb)
	}
	return req, nil
}

// nextSequence is the sequence number after n records from seq: Kafka's
// sequences wrap from MaxInt32 to 0.
func nextSequence(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// handle takes a request's answer: batches stored complete, batches that
// failed for good fail their records, the others are sent again.
func (t *topicLine) handle(r *produceResult) {
	t.inflight--
	now := time.Now()
	if r.err != nil {
		// The connection failed: close it (which waits for the other
		// requests on it to end, so not here); the next request to this
		// broker opens it again.
		go r.broker.Close()
	}
	for _, pl := range r.parts {
		pl.sent = false
		err := r.err
		if err == nil && r.resp != nil {
			switch b := r.resp.GetBlock(t.topic, pl.id); {
			case b == nil:
				err = fmt.Errorf("the broker's answer has no result for partition %d", pl.id)
			case b.Err != sarama.ErrNoError && b.Err != sarama.ErrDuplicateSequenceNumber:
				err = b.Err
			}
		}
		if err == nil {
			t.stored(pl)
			continue
		}
		t.failed(pl, classify(t.topic, err, t.s.topics.confirmAbsent), now)
	}
}

// stored completes the partition's batch: Kafka has it.
func (t *topicLine) stored(pl *partLine) {
	for i, o := range pl.batch {
		t.s.complete(o, nil)
		pl.batch[i] = nil
	}
	pl.batch, pl.retries = pl.batch[:0], 0
}

// failed takes err, as classify returned it, for the partition's batch: a
// permanent error fails its records (the next batch reuses their sequence
// numbers: the broker did not take them); a retriable one sends the batch
// again after a back-off, or, once shutdown gave up, fails it.
func (t *topicLine) failed(pl *partLine, err error, now time.Time) {
	if len(pl.batch) == 0 {
		return
	}
	abort := t.s.abortErr()
	if isPermanent(err) || abort != nil {
		if abort != nil && !isPermanent(err) {
			err = abort
		}
		if pl.batchSeq >= 0 && pl.pidGen == pl.batchPID.gen {
			pl.seq = pl.batchSeq
		}
		for i, o := range pl.batch {
			t.s.complete(o, err)
			pl.batch[i] = nil
		}
		pl.batch, pl.retries = pl.batch[:0], 0
		return
	}
	var kerr sarama.KError
	if errors.As(err, &kerr) && (kerr == sarama.ErrOutOfOrderSequenceNumber || kerr == sarama.ErrUnknownProducerID || kerr == sarama.ErrInvalidProducerEpoch) {
		// The brokers lost this producer's state: a new producer id, and
		// the batch is numbered afresh under it.
		if _, perr := t.s.producerID(pl.batchPID.gen); perr == nil {
			pl.batchSeq = -1
		}
	}
	pl.retries++
	pl.retryAt = now.Add(retryBackoff(pl.retries))
	t.s.noteRetry(t.topic, pl.id, err)
	t.refreshMetadata()
}

// retryBackoff is the wait before a batch's n-th attempt again: 50ms
// doubling to 1s, as the sarama producer's configuration (saramaConfig).
func retryBackoff(n int) time.Duration {
	return min(50*time.Millisecond<<min(n-1, 5), time.Second)
}

// refreshMetadata asks the brokers for the topic's partitions and leaders
// again, on a goroutine of its own, one at a time.
func (t *topicLine) refreshMetadata() {
	if !t.refresh.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer t.refresh.Store(false)
		_ = t.s.client.RefreshMetadata(t.topic)
	}()
}

// failAll fails, with the abort error, every record the topic holds.
func (t *topicLine) failAll() {
	err := t.s.abortErr()
	t.mu.Lock()
	q := t.queue
	t.queue = nil
	t.mu.Unlock()
	for _, o := range q {
		t.s.complete(o, err)
	}
	for _, pl := range t.parts {
		for _, o := range append(pl.batch, pl.waiting...) {
			t.s.complete(o, err)
		}
		pl.batch, pl.waiting, pl.bytes = nil, nil, 0
	}
}
