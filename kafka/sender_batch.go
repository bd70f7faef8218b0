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

	"github.com/fleetgate/fleetgate/router"
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
// follow. A batch refused for its size or for a record in it goes back
// instead and travels in halves, so that only a record at fault fails
// (failed). The idempotent producer (kafka.idempotent) is ours too: a
// producer id from the brokers, a sequence per partition, so that a batch
// sent again after a lost answer is stored once.
//
// One goroutine (run) owns the partitions' lines and sends, to each
// broker, one request at a time carrying every batch ready for it, as
// sarama's idempotent producer does; a request goes out on a goroutine of
// its own and hands its answer back to the loop, as the lookups of
// leaders, partition counts and the producer id do. Shutdown fails the
// records left at its deadline itself, whatever the loop is doing.
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

	mu    sync.Mutex
	queue []*outgoing // taken by send, in order, not placed yet
	spare []*outgoing // the previous queue's array, for the next swap
	// live holds every record taken and not completed: a record completes
	// only by leaving it, so once, whether the loop or shutdown (which
	// fails what is left at its deadline, whatever the loop is doing)
	// completes it.
	live map[*outgoing]struct{}
	wake chan struct{}

	aborted atomic.Bool   // shutdown failed the records left: nothing more is sent
	quit    chan struct{} // closed at shutdown: the loop ends
	done    chan struct{} // closed when the loop has ended: answers go nowhere

	retried    atomic.Int64 // batches sent again after a retriable error
	retriedLog sampledLog
	pidLog     sampledLog

	// The loop's own.
	results chan *produceResult
	leaders chan *leaderResult
	counts  chan *countResult
	// recounts carries the known topics' partition counts (0: the
	// metadata lacks the topic), re-read off the loop (recount).
	recounts chan map[string]int32
	pids     chan *pidResult
	timer    *time.Timer // fires at next
	next     time.Time   // the earliest linger or back-off deadline of this round
	parts    map[topicPartition]*partLine
	parters  map[string]*topicParts // topics whose partition count is known
	// countsAt is when the loop next re-reads the known topics' partition
	// counts from the client's metadata, off the loop (recount).
	countsAt time.Time
	counting bool                  // a recount is running
	held     map[string]*heldTopic // records of topics whose partitions are not known yet
	busy     map[int32]bool        // brokers with a request in flight, by id
	ready    map[*sarama.Broker][]*partLine
	refresh  atomic.Bool // a metadata refresh is running
	// The idempotent identity new batches are numbered under, looked up
	// on a goroutine (sarama's InitProducerID waits for the brokers, a
	// dial and a read timeout at a time, which must not hold up the loop).
	pid       producerID
	pidStale  bool      // the brokers refused pid: a new one is needed
	pidLookup bool      // a lookup is running
	pidAt     time.Time // a failed lookup is tried again no sooner
	pidFails  int       // lookups failed in a row
}

// topicPartition names a partition.
type topicPartition struct {
	topic string
	id    int32
}

// heldTopic is a topic's records that could not be placed on a partition
// yet, in order, and when to try again.
type heldTopic struct {
	recs   []*outgoing
	at     time.Time
	lookup bool // its partitions are being looked up off the loop
}

// topicParts is what the loop knows of a topic's partitions: it places
// keyed records by this count, not by asking the client for every record
// (the client asks the brokers, with retries, when its metadata lacks the
// topic, which must not hold up the loop).
type topicParts struct {
	parter sarama.Partitioner
	n      int32
}

// countResult is a partition lookup's answer for a held topic.
type countResult struct {
	topic string
	n     int32
	err   error
}

// recountEvery is how often the loop takes the known topics' partition
// counts from the client's metadata again (partitions added to a topic).
const recountEvery = 5 * time.Second

// producerID is the idempotent producer's identity from InitProducerID;
// gen counts the identities this sender has had (0: none yet).
type producerID struct {
	id    int64
	epoch int16
	gen   int
}

// pidResult is a producer id lookup's answer.
type pidResult struct {
	id    int64
	epoch int16
	err   error
}

// newBatchSender connects its own client (sc, changed as it needs) for p
// and starts its loop.
func newBatchSender(cfg Config, sc *sarama.Config, p *Producer) (*batchSender, error) {
	version, err := produceVersion(sc.Version)
	if err != nil {
		return nil, err
	}
	bc := *sc
	// Idempotence is this sender's (sequence numbers per partition, one
	// batch in flight per partition), so sarama's own stays off; its
	// limit of one request per connection would hold the admin calls
	// behind the produce requests.
	bc.Producer.Idempotent = false
	bc.Net.MaxOpenRequests = 5
	// A lookup that fails comes back within seconds; the loop tries again
	// after a back-off, holding the records in order.
	bc.Metadata.Retry.Max = 2
	bc.Metadata.Retry.Backoff = 250 * time.Millisecond
	client, err := sarama.NewClient(cfg.Brokers, &bc)
	if err != nil {
		return nil, fmt.Errorf("connect to kafka.brokers %v: %w", cfg.Brokers, err)
	}
	s := &batchSender{
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
		live:       map[*outgoing]struct{}{},
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		results:    make(chan *produceResult),
		leaders:    make(chan *leaderResult),
		counts:     make(chan *countResult),
		recounts:   make(chan map[string]int32),
		pids:       make(chan *pidResult),
		timer:      time.NewTimer(time.Hour),
		parts:      map[topicPartition]*partLine{},
		parters:    map[string]*topicParts{},
		held:       map[string]*heldTopic{},
		busy:       map[int32]bool{},
		ready:      map[*sarama.Broker][]*partLine{},
	}
	s.timer.Stop()
	go s.run()
	return s, nil
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
	s.mu.Lock()
	s.live[o] = struct{}{}
	s.queue = append(s.queue, o)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// complete reports err as the result of each of recs that has not
// completed already (shutdown failed it), taking them out of live under one
// lock. It reorders recs, which the caller empties after.
func (s *batchSender) complete(recs []*outgoing, err error) {
	n := 0
	s.mu.Lock()
	for _, o := range recs {
		if _, live := s.live[o]; live {
			delete(s.live, o)
			recs[n] = o
			n++
		}
	}
	s.mu.Unlock()
	for _, o := range recs[:n] {
		if err == nil {
			s.obs.Produced(o.msg.Topic, time.Since(o.pd.start))
		}
		o.pd.complete(err)
	}
}

// idle reports whether every record taken has completed.
func (s *batchSender) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live) == 0
}

// failLive fails, with err, every record taken and not completed.
func (s *batchSender) failLive(err error) {
	s.mu.Lock()
	left := s.live
	s.live = map[*outgoing]struct{}{}
	s.mu.Unlock()
	for o := range left {
		o.pd.complete(err)
	}
}

// producerID returns the identity new batches are numbered under, or
// false while there is none: it is then looked up off the loop (or after
// the back-off of a failed lookup), and the answer wakes the loop.
func (s *batchSender) producerID(now time.Time) (producerID, bool) {
	if s.pid.gen != 0 && !s.pidStale {
		return s.pid, true
	}
	switch {
	case s.pidLookup:
	case now.Before(s.pidAt):
		s.later(s.pidAt)
	default:
		s.pidLookup = true
		go func() {
			r := &pidResult{}
			resp, err := s.client.InitProducerID()
			if err == nil && resp.Err != sarama.ErrNoError {
				err = resp.Err
			}
			if err != nil {
				r.err = fmt.Errorf("kafka: get an idempotent producer id: %w", err)
			} else {
				r.id, r.epoch = resp.ProducerID, resp.ProducerEpoch
			}
			select {
			case s.pids <- r:
			case <-s.done:
			}
		}()
	}
	return producerID{}, false
}

// gotPID takes a producer id lookup's answer: the new identity, or a
// back-off before the next lookup.
func (s *batchSender) gotPID(r *pidResult, now time.Time) {
	s.pidLookup = false
	if r.err != nil {
		s.pidFails++
		s.pidAt = now.Add(retryBackoff(s.pidFails))
		if s.pidLog.due() {
			s.log.Warn("kafka: the brokers gave no idempotent producer id; asking again, the records wait in order",
				zap.Int("failed_lookups", s.pidFails), zap.Error(r.err))
		}
		return
	}
	s.pid = producerID{id: r.id, epoch: r.epoch, gen: s.pid.gen + 1}
	s.pidStale, s.pidFails = false, 0
}

// noteRetry logs, at most every sampledLogEvery, that batches are being
// sent again.
func (s *batchSender) noteRetry(topic string, partition int32, err error) {
	n := s.retried.Add(1)
	if !s.retriedLog.due() {
		return
	}
	s.log.Warn("kafka: a batch failed with a retriable error; sending it again, the records behind it wait in order",
		zap.String("topic", topic), zap.Int32("partition", partition),
		zap.Int64("batches_retried_total", n), zap.Error(err))
}

// shutdown lets the records taken complete until ctx ends; then it fails
// the ones left itself, at once: the loop may be in a call to a broker
// that does not answer. It returns within abortGrace of that: a loop (or
// a connection, whose Close waits for the answers to the requests on it)
// that has not ended by then ends in the background.
func (s *batchSender) shutdown(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for !s.idle() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			abort := fmt.Errorf("kafka producer shut down before the record was stored: %w", ErrClosed)
			s.aborted.Store(true)
			s.failLive(abort)
			err = fmt.Errorf("kafka: records still in flight at the shutdown deadline were failed: %w", ctx.Err())
			break wait
		}
	}
	close(s.quit)
	// Closing the client also cuts short a call the loop or a lookup is in.
	closed := make(chan error, 1)
	go func() { closed <- s.client.Close() }()
	grace := time.NewTimer(abortGrace)
	defer grace.Stop()
	select {
	case <-s.done:
	case <-grace.C:
		s.log.Warn("kafka: the batch sender's loop is still in a call after shutdown; its records have failed, it ends when the call returns")
		return err
	}
	select {
	case cerr := <-closed:
		return errors.Join(err, cerr)
	case <-grace.C:
		s.log.Warn("kafka: a broker connection is still closing after shutdown")
		return err
	}
}

// partLine is one partition's records: the batch in flight (or waiting to
// be sent again) and the records behind it.
type partLine struct {
	topicPartition
	waiting  []*outgoing
	bytes    int // of waiting
	batch    []*outgoing
	sent     bool      // batch is in flight
	retryAt  time.Time // batch is sent again no sooner
	retries  int
	seq      int32 // next sequence number (idempotence)
	pidGen   int   // the producer id seq counts under
	batchSeq int32 // batch's first sequence number; -1: not numbered yet
	batchPID producerID
	maxBatch int       // bytes, once the broker refused a batch as too large; 0: kafka.max_message_bytes
	growAt   time.Time // maxBatch doubles again, at a batch stored, no sooner
	// suspects: how many records at the head of the line came back from a
	// batch refused for a record in it (refusedRecord); they travel in
	// batches of at most split records, halved at each such refusal, until
	// the record refused is alone.
	suspects int
	split    int
	// uncertain: an attempt of the batch ended without a definite answer
	// (a lost connection, a retriable error), so the broker may have
	// stored it. Its sequence numbers are then never given to another
	// batch: the broker would take a batch of the same shape for a copy of
	// this one and answer "stored" without storing it.
	uncertain bool
	// The partition's leader, looked up on a goroutine (sarama's Leader
	// for a leaderless partition asks the brokers, with retries, which
	// must not hold up the loop), and kept until a send to it fails.
	leader    *sarama.Broker
	lookup    bool  // a lookup is running
	leaderErr error // the last lookup's, as classify returned it
}

// leaderResult is a leader lookup's answer for a partition.
type leaderResult struct {
	pl     *partLine
	leader *sarama.Broker
	err    error
}

// produceResult is a request's answer for the partitions it carried.
type produceResult struct {
	broker *sarama.Broker // nil: the late verdicts of an earlier result's partitions
	parts  []*partLine
	err    error   // the request's
	errs   []error // each partition's, as classify returned it; nil: stored
}

// run is the loop: place, send what is ready, take answers.
func (s *batchSender) run() {
	defer close(s.done)
	for {
		now := time.Now()
		s.next = time.Time{}
		s.place(now)
		if s.aborted.Load() {
			// Shutdown gave up and failed every record, the ones in
			// requests without an answer too (none was acknowledged to
			// anybody; a late answer goes nowhere).
			return
		}
		s.sendReady(now)
		if !s.next.IsZero() {
			s.timer.Reset(max(s.next.Sub(now), 0))
		}
		select {
		case <-s.wake:
		case r := <-s.results:
			s.handle(r)
		case lr := <-s.leaders:
			lr.pl.lookup, lr.pl.leader, lr.pl.leaderErr = false, lr.leader, lr.err
		case cr := <-s.counts:
			s.counted(cr, time.Now())
		case all := <-s.recounts:
			s.recounted(all)
		case r := <-s.pids:
			s.gotPID(r, time.Now())
		case <-s.timer.C:
		case <-s.quit:
			// shutdown closes quit once every record taken has completed
			// (nothing is left here, no request is in flight: a request
			// holds records) or after it failed the ones left.
			return
		}
	}
}

// place moves the records send queued onto their partitions' lines, in
// order. A record whose partition cannot be found yet (no metadata for
// its topic) is held with every later record of its topic, so none
// overtakes it; the held records go first once their topic is known.
func (s *batchSender) place(now time.Time) {
	for topic, h := range s.held {
		if h.lookup {
			continue // its answer wakes the loop
		}
		if now.Before(h.at) {
			s.later(h.at)
			continue
		}
		n := 0
		for _, o := range h.recs {
			if !s.placeOne(o) {
				break
			}
			n++
		}
		if n == len(h.recs) {
			delete(s.held, topic)
			continue
		}
		h.recs = h.recs[n:]
		s.hold(topic, h, now)
	}
	s.mu.Lock()
	q := s.queue
	s.queue = s.spare[:0]
	s.mu.Unlock()
	if len(q) > 0 {
		s.recount(now)
	}
	for _, o := range q {
		if h := s.held[o.msg.Topic]; h != nil {
			h.recs = append(h.recs, o)
			continue
		}
		if !s.placeOne(o) {
			h := &heldTopic{recs: []*outgoing{o}}
			s.held[o.msg.Topic] = h
			s.hold(o.msg.Topic, h, now)
		}
	}
	clear(q)
	s.mu.Lock()
	s.spare = q[:0]
	s.mu.Unlock()
}

// hold makes the held topic's records wait: sarama's Partitions for a
// topic it has no metadata for asks the brokers, with retries, which must
// not hold up the loop, so a topic's partitions are first looked up on a
// goroutine; the answer wakes the loop.
func (s *batchSender) hold(topic string, h *heldTopic, now time.Time) {
	if s.parters[topic] != nil {
		h.at = now.Add(resendBackoff)
		s.later(h.at)
		return
	}
	h.lookup = true
	go func() {
		ps, err := s.client.Partitions(topic)
		switch {
		case err != nil:
			err = classify(topic, fmt.Errorf("partitions: %w", err), s.topics.confirmAbsent)
		case len(ps) == 0:
			err = fmt.Errorf("kafka topic %q: no partitions known yet", topic)
		}
		select {
		case s.counts <- &countResult{topic: topic, n: int32(len(ps)), err: err}:
		case <-s.done:
		}
	}()
}

// recount takes the known topics' partition counts from the client's
// metadata again, off the loop, at most every recountEvery: a topic that
// got more partitions spreads its keys over them, as with a client that
// asks for every record, and one the metadata no longer has is forgotten
// (and not asked about again every time).
func (s *batchSender) recount(now time.Time) {
	if s.counting || len(s.parters) == 0 || now.Before(s.countsAt) {
		return
	}
	s.counting, s.countsAt = true, now.Add(recountEvery)
	topics := make([]string, 0, len(s.parters))
	for t := range s.parters {
		topics = append(topics, t)
	}
	go func() {
		all := make(map[string]int32, len(topics))
		for _, t := range topics {
			ps, _ := s.client.Partitions(t) // nil on an error: counted as gone
			all[t] = int32(len(ps))
		}
		select {
		case s.recounts <- all:
		case <-s.done:
		}
	}()
}

// recounted takes a recount's answer: the known topics' partition counts.
func (s *batchSender) recounted(all map[string]int32) {
	s.counting = false
	for t, n := range all {
		switch tp := s.parters[t]; {
		case tp == nil:
		case n == 0:
			// Gone from the metadata (deleted?), or the lookup failed:
			// its next records are held and looked up again, which
			// fails them if it was deleted and retries them otherwise.
			delete(s.parters, t)
		default:
			tp.n = n
		}
	}
}

// counted takes a held topic's partition lookup's answer: its records are
// placed now, or after a back-off, or fail (the topic does not exist).
func (s *batchSender) counted(cr *countResult, now time.Time) {
	h := s.held[cr.topic]
	if h == nil {
		return
	}
	h.lookup = false
	if isPermanent(cr.err) {
		delete(s.held, cr.topic)
		s.complete(h.recs, cr.err)
		return
	}
	if cr.err != nil {
		s.noteRetry(cr.topic, -1, cr.err)
		h.at = now.Add(resendBackoff)
		return
	}
	if tp := s.parters[cr.topic]; tp != nil {
		tp.n = cr.n
	} else {
		s.parters[cr.topic] = &topicParts{parter: s.newPart(cr.topic), n: cr.n}
	}
	h.at = time.Time{}
}

// placeOne puts o on its partition's line, or reports that its partition
// is not known yet: always for a topic whose partitions were not looked
// up (hold).
func (s *batchSender) placeOne(o *outgoing) bool {
	if o.pd.partition < 0 && s.parters[o.msg.Topic] == nil {
		return false
	}
	p, err := s.partitionOf(o)
	if err != nil {
		delete(s.parters, o.msg.Topic) // looked up again off the loop
		s.noteRetry(o.msg.Topic, -1, err)
		return false
	}
	tp := topicPartition{o.msg.Topic, p}
	pl := s.parts[tp]
	if pl == nil {
		pl = &partLine{topicPartition: tp, batchSeq: -1}
		s.parts[tp] = pl
	}
	pl.waiting = append(pl.waiting, o)
	pl.bytes += o.size
	return true
}

// partitionOf picks o's partition: the configured one, or the
// partitioner's (murmur2 of the key by default).
func (s *batchSender) partitionOf(o *outgoing) (int32, error) {
	if o.pd.partition >= 0 {
		return o.pd.partition, nil
	}
	tp := s.parters[o.msg.Topic]
	return tp.parter.Partition(&o.msg, tp.n)
}

// later makes the loop wake at at, unless it wakes sooner.
func (s *batchSender) later(at time.Time) {
	if s.next.IsZero() || at.Before(s.next) {
		s.next = at
	}
}

// sendReady sends to every broker without a request in flight one
// request with every batch ready for it: a partition with nothing in
// flight whose records have waited out the linger (or fill batch_bytes),
// or whose back-off after a failure is over.
func (s *batchSender) sendReady(now time.Time) {
	for _, pl := range s.parts {
		if pl.sent {
			continue
		}
		if len(pl.batch) == 0 {
			if len(pl.waiting) == 0 {
				continue
			}
			if at := pl.waiting[0].pd.start.Add(s.linger); pl.bytes < s.batchBytes && now.Before(at) {
				s.later(at)
				continue
			}
		} else if now.Before(pl.retryAt) {
			s.later(pl.retryAt)
			continue
		}
		leader, ok, err := s.leaderOf(pl)
		if !ok {
			continue // its lookup's answer wakes the loop
		}
		if err != nil {
			if len(pl.batch) == 0 {
				pl.fill(s.maxBytes)
			}
			s.failed(pl, err, now)
			s.later(pl.retryAt)
			continue
		}
		if s.busy[leader.ID()] {
			continue // its records keep gathering; the answer wakes the loop
		}
		var pid producerID
		if s.idempotent && pl.batchSeq < 0 {
			var ok bool
			if pid, ok = s.producerID(now); !ok {
				continue // its records keep gathering; the lookup's answer wakes the loop
			}
		}
		if len(pl.batch) == 0 {
			pl.fill(s.maxBytes)
		}
		if s.idempotent && pl.batchSeq < 0 {
			pl.number(pid)
		}
		s.ready[leader] = append(s.ready[leader], pl)
	}
	for b, pls := range s.ready {
		delete(s.ready, b)
		req := s.request(pls)
		for _, pl := range pls {
			pl.sent = true
		}
		s.busy[b.ID()] = true
		go func() {
			resp, err := b.Produce(req)
			// Classified here, off the loop. UNKNOWN_TOPIC_OR_PARTITION
			// makes classify ask the brokers whether the topic is gone, and
			// ask again a moment later (TopicCache): the answer goes to the
			// loop first, with those partitions' verdicts to follow, so that
			// the broker takes the other partitions' next batches meanwhile.
			r := &produceResult{broker: b, parts: pls, err: err, errs: make([]error, len(pls))}
			var late produceResult
			for i, pl := range pls {
				if perr := brokerErr(pl, resp, err); errors.Is(perr, sarama.ErrUnknownTopicOrPartition) {
					r.errs[i] = errVerdictPending
					late.parts, late.errs = append(late.parts, pl), append(late.errs, perr)
				} else if perr != nil {
					r.errs[i] = classify(pl.topic, perr, s.topics.confirmAbsent)
				}
			}
			if !s.deliver(r) || len(late.parts) == 0 {
				return
			}
			for i, pl := range late.parts {
				late.errs[i] = classify(pl.topic, late.errs[i], s.topics.confirmAbsent)
			}
			s.deliver(&late)
		}()
	}
}

// leaderOf returns the partition's leader, or false while it is being
// looked up; the error is as classify returns it.
func (s *batchSender) leaderOf(pl *partLine) (*sarama.Broker, bool, error) {
	switch {
	case pl.leader != nil:
		return pl.leader, true, nil
	case pl.leaderErr != nil:
		err := pl.leaderErr
		pl.leaderErr = nil
		return nil, true, err
	case !pl.lookup:
		pl.lookup = true
		go func() {
			b, err := s.client.Leader(pl.topic, pl.id)
			if err != nil {
				b, err = nil, classify(pl.topic, s.lacksPartition(pl.topicPartition, fmt.Errorf("partition %d: leader: %w", pl.id, err)), s.topics.confirmAbsent)
			}
			select {
			case s.leaders <- &leaderResult{pl: pl, leader: b, err: err}:
			case <-s.done:
			}
		}()
	}
	return nil, false, nil
}

// lacksPartition returns err, tp's failed leader lookup, or, when
// the topic's metadata (which the lookup has just refreshed) has fewer
// partitions, sarama.ErrInvalidPartition: a partition fixed by a rule
// that Produce could not check (no metadata then) or checked on stale
// metadata (the topic re-created with fewer partitions) fails for good;
// the brokers' UNKNOWN_TOPIC_OR_PARTITION for it, the topic existing,
// would be retried for as long as the process runs.
func (s *batchSender) lacksPartition(tp topicPartition, err error) error {
	if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return err
	}
	ps, perr := s.client.Partitions(tp.topic)
	if perr != nil || len(ps) == 0 || tp.id < int32(len(ps)) {
		return err
	}
	return fmt.Errorf("partition %d does not exist; the topic has %d: %w", tp.id, len(ps), sarama.ErrInvalidPartition)
}

// fill makes the records waiting the partition's next batch, up to
// maxBytes.
func (pl *partLine) fill(maxBytes int) {
	if pl.maxBatch > 0 {
		maxBytes = min(maxBytes, pl.maxBatch)
	}
	n, size := 0, 0
	for _, o := range pl.waiting {
		if pl.suspects > 0 && n == pl.split {
			break
		}
		sz := o.size
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

// unfill puts the batch, not stored, back before the records waiting,
// and gives back the sequence numbers it took.
func (pl *partLine) unfill() {
	for _, o := range pl.batch {
		pl.bytes += o.size
	}
	pl.waiting = append(pl.batch, pl.waiting...)
	pl.batch = nil
	pl.rollBack()
	pl.batchSeq = -1
}

// rollBack gives the batch's sequence numbers to the next batch, when the
// broker surely did not store it.
func (pl *partLine) rollBack() {
	if pl.batchSeq >= 0 && pl.pidGen == pl.batchPID.gen && !pl.uncertain {
		pl.seq = pl.batchSeq
	}
	pl.uncertain = false
}

// refusedRecord reports a refusal of a batch for a record in it:
// INVALID_RECORD (a compacted topic and no key, say; permanent) or
// CORRUPT_MESSAGE (retriable, section 7 of docs/reliability.md). The
// broker stored none of the batch.
func refusedRecord(err error) bool {
	return errors.Is(err, sarama.ErrInvalidRecord) || errors.Is(err, sarama.ErrInvalidMessage)
}

// corruptAttempts is how many times in a row a batch of one record may be
// refused as corrupt (CORRUPT_MESSAGE, retriable: a CRC mismatch is damage
// in transit) before the record fails with invalid_record: with the retry
// back-off, about 6 s of refusals.
const corruptAttempts = 10

// batchRegrow is how often a partition's batch limit, halved after the
// broker refused a batch as too large, may double again: the topic's
// max.message.bytes may have been raised since; if not, a batch is
// refused and halved again, at most once in this time.
const batchRegrow = time.Second

// grow doubles the batch limit set at a refusal as too large, back to
// maxBytes, when the batch stored was held to it (more than half its
// size: smaller ones say nothing about the topic's limit), at most once
// every batchRegrow.
func (pl *partLine) grow(now time.Time, maxBytes int) {
	if pl.maxBatch == 0 || now.Before(pl.growAt) {
		return
	}
	size := 0
	for _, o := range pl.batch {
		size += o.size
	}
	if size <= pl.maxBatch/2 {
		return
	}
	if pl.maxBatch *= 2; pl.maxBatch >= maxBytes {
		pl.maxBatch = 0
	}
	pl.growAt = now.Add(batchRegrow)
}

// tooLarge reports a refusal of a batch for its size.
func tooLarge(err error) bool {
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge)
}

// batchOverhead is a record batch's header (61 bytes) with room to spare.
const batchOverhead = 128

// number gives the batch its sequence numbers under pid. A batch keeps
// them, and its producer id, while it is sent again, so that the broker
// stores it once.
func (pl *partLine) number(pid producerID) {
	if pl.pidGen != pid.gen {
		pl.seq, pl.pidGen = 0, pid.gen
	}
	pl.batchSeq, pl.batchPID = pl.seq, pid
	pl.seq = nextSequence(pl.seq, len(pl.batch))
}

// request builds the ProduceRequest of partitions pls.
func (s *batchSender) request(pls []*partLine) *sarama.ProduceRequest {
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
		req.AddBatch(pl.topic, pl.id, rb)
	}
	return req
}

// nextSequence is the sequence number after n records from seq: Kafka's
// sequences wrap from MaxInt32 to 0.
func nextSequence(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// handle takes a request's answer: batches stored complete, batches that
// failed for good fail their records, the others are sent again.
func (s *batchSender) handle(r *produceResult) {
	now := time.Now()
	if r.broker == nil {
		for i, pl := range r.parts {
			s.settle(pl, r.errs[i], now)
		}
		return
	}
	delete(s.busy, r.broker.ID())
	if r.err != nil {
		// The connection failed: close it (which waits for the other
		// requests on it to end, so not here); the next request to this
		// broker opens it again.
		go r.broker.Close()
		for _, pl := range s.parts {
			if pl.leader == r.broker {
				pl.leader = nil // looked up again, which reopens it
			}
		}
	}
	for i, pl := range r.parts {
		if r.errs[i] != errVerdictPending { // else it stays sent until its verdict
			s.settle(pl, r.errs[i], now)
		}
	}
}

// settle takes partition pl's result of the request its batch was in: err
// as classify returned it, nil when Kafka stored the batch.
func (s *batchSender) settle(pl *partLine, err error, now time.Time) {
	pl.sent = false
	if err == nil {
		pl.grow(now, s.maxBytes)
		s.finish(pl, nil)
		return
	}
	if !isPermanent(err) && !refusedRecord(err) {
		pl.uncertain = true
	}
	s.failed(pl, err, now)
}

// deliver hands a request's result to the loop; false once the loop has
// ended.
func (s *batchSender) deliver(r *produceResult) bool {
	select {
	case s.results <- r:
		return true
	case <-s.done:
		return false
	}
}

// errVerdictPending marks a partition of a request's result whose error is
// still being classified: its verdict follows in a result of its own.
var errVerdictPending = errors.New("the partition's result is still being classified")

// brokerErr is the error for partition pl of a request that got resp and
// err, as the broker (or the connection) gave it; nil: stored.
func brokerErr(pl *partLine, resp *sarama.ProduceResponse, err error) error {
	if err == nil && resp != nil {
		switch b := resp.GetBlock(pl.topic, pl.id); {
		case b == nil:
			err = fmt.Errorf("the broker's answer has no result for partition %d", pl.id)
		case b.Err != sarama.ErrNoError && b.Err != sarama.ErrDuplicateSequenceNumber:
			err = b.Err
		}
	}
	return err
}

// finish completes the partition's batch with err (nil: Kafka has it) and
// empties it for the next.
func (s *batchSender) finish(pl *partLine, err error) {
	pl.suspects = max(pl.suspects-len(pl.batch), 0)
	pl.split = pl.suspects // the rest of the records refused together
	s.complete(pl.batch, err)
	clear(pl.batch)
	pl.batch, pl.retries, pl.batchSeq, pl.uncertain = pl.batch[:0], 0, -1, false
}

// failed takes err, as classify returned it, for the partition's batch: a
// permanent error fails its records (the next batch reuses their sequence
// numbers: the broker did not take them); a retriable one sends the batch
// again after a back-off.
func (s *batchSender) failed(pl *partLine, err error, now time.Time) {
	if len(pl.batch) == 0 {
		return
	}
	switch {
	case len(pl.batch) > 1 && tooLarge(err):
		// The topic takes smaller batches than kafka.max_message_bytes
		// (its max.message.bytes): the records go back, in order, and
		// travel in batches of half the size, down to one record, which
		// alone can be refused for its size.
		size := 0
		for _, o := range pl.batch {
			size += o.size
		}
		pl.maxBatch, pl.growAt = max(size/2, 1), now.Add(batchRegrow)
		pl.unfill()
		return
	case len(pl.batch) > 1 && refusedRecord(err):
		// The broker takes a batch whole or not at all: the records go
		// back, in order, and travel in halves, down to the record refused,
		// which alone meets the error; the others are stored.
		pl.suspects, pl.split = max(pl.suspects, len(pl.batch)), len(pl.batch)/2
		pl.unfill()
		return
	}
	if len(pl.batch) == 1 && errors.Is(err, sarama.ErrInvalidMessage) && pl.retries+1 >= corruptAttempts {
		// One record, refused as corrupt attempt after attempt for seconds:
		// not damage in transit, which a resend cures, but the record
		// itself. It goes to the error action rather than hold every later
		// record of its partition, other devices' too, for ever.
		err = &RecordError{Topic: pl.topic, Reason: router.ReasonInvalidRecord, Err: err}
	}
	if isPermanent(err) {
		pl.rollBack()
		s.finish(pl, err)
		return
	}
	var kerr sarama.KError
	if errors.As(err, &kerr) && (kerr == sarama.ErrOutOfOrderSequenceNumber || kerr == sarama.ErrUnknownProducerID || kerr == sarama.ErrInvalidProducerEpoch) {
		// The brokers lost this producer's state: a new producer id (once
		// for the batches the old one numbered), and the batch is numbered
		// afresh under it.
		if pl.batchPID.gen == s.pid.gen {
			s.pidStale = true
		}
		pl.batchSeq = -1
	}
	pl.leader = nil // looked up again
	pl.retries++
	pl.retryAt = now.Add(retryBackoff(pl.retries))
	s.noteRetry(pl.topic, pl.id, err)
	s.refreshMetadata()
}

// retryBackoff is the wait before a batch's n-th attempt again: 50ms
// doubling to 1s. sarama's producer (saramaConfig) waits the same.
func retryBackoff(n int) time.Duration {
	return min(50*time.Millisecond<<min(n-1, 5), time.Second)
}

// refreshMetadata asks the brokers for the partitions and leaders of every
// topic the sender writes again, on a goroutine of its own, one refresh at
// a time.
func (s *batchSender) refreshMetadata() {
	if !s.refresh.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.refresh.Store(false)
		_ = s.client.RefreshMetadata()
	}()
}
