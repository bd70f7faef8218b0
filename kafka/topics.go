package kafka

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// TopicState is what TopicCache knows about a topic.
type TopicState int

const (
	// TopicExists: some broker's metadata lists the topic.
	TopicExists TopicState = iota
	// TopicAbsent: a majority of the cluster's brokers, asked directly,
	// all answered that the topic does not exist (twice, some time apart,
	// for a topic the gateway saw before).
	TopicAbsent
	// TopicUndecided: the brokers could not be asked, or disagreed without
	// any listing the topic. The record must not go to the error topic; it
	// fails as retriable (its terminal re-sends it).
	TopicUndecided
)

// TopicCache answers whether a topic exists, so that a record for a topic
// the cluster does not have (a templated topic from a bad payload) goes to
// the error action at once instead of waiting out the producer's retries.
//
// A topic is absent only when the gateway's own, fresh metadata says so:
// one broker that has not yet applied a just-created topic, or lags after
// a restart, answers exactly as for a topic that does not exist
// (UNKNOWN_TOPIC_OR_PARTITION), so a miss asks every broker the client
// knows, directly, over connections of its own. Any broker listing the
// topic makes it exist; absence needs a majority of brokers answering and
// every answer saying "unknown"; a topic listed before (created at start,
// or seen since) must be found absent in two such rounds recheck apart.
// A confirmed absence is remembered for negTTL, so a flood of records for
// one bad topic costs one round per negTTL; misses of many topics at once
// share a round (one request per broker for all of them), and rounds are
// at least minRoundGap apart, so a flood of distinct bad topics costs at
// most a few requests per broker a second. It is safe for concurrent use.
type TopicCache struct {
	client   sarama.Client
	asker    *brokerAsker
	negTTL   time.Duration
	recheck  time.Duration
	roundGap time.Duration
	now      func() time.Time
	sleep    func(time.Duration)

	// topics is the current immutable snapshot of topics known to exist:
	// hits only load it.
	topics atomic.Pointer[map[string]struct{}]

	// mu guards seen, absent, gathering and changes of topics.
	mu        sync.Mutex
	seen      map[string]struct{}  // every topic ever listed
	absent    map[string]time.Time // confirmed absent, and when
	gathering *checkRound          // the next round, taking topics

	// roundMu is held by the caller running a round; lastRound is
	// guarded by it.
	roundMu   sync.Mutex
	lastRound time.Time
}

// checkRound is one question to every broker about the topics missed
// while it was gathered.
type checkRound struct {
	topics []string
	done   chan struct{}
	result map[string]TopicState // set before done is closed
}

// Defaults of NewTopicCache.
const (
	topicAbsentTTL     = time.Second
	topicRecheckAfter  = 500 * time.Millisecond
	topicRoundGap      = 100 * time.Millisecond
	topicAskTimeout    = 2 * time.Second
	maxAbsentRemembers = 4096
)

// NewTopicCache returns a TopicCache over client, starting from the topics
// client's metadata already holds (no request is made). Its checks use the
// brokers client knows, over connections of their own configured like
// client's with short timeouts. Close closes those connections.
func NewTopicCache(client sarama.Client) *TopicCache {
	c := &TopicCache{
		client:   client,
		asker:    newBrokerAsker(client),
		negTTL:   topicAbsentTTL,
		recheck:  topicRecheckAfter,
		roundGap: topicRoundGap,
		now:      time.Now,
		sleep:    time.Sleep,
		seen:     map[string]struct{}{},
		absent:   map[string]time.Time{},
	}
	set := map[string]struct{}{}
	if names, err := client.Topics(); err == nil {
		for _, n := range names {
			set[n] = struct{}{}
			c.seen[n] = struct{}{}
		}
	}
	c.topics.Store(&set)
	return c
}

// Lookup tells whether topic exists. A hit costs one atomic load and a map
// lookup; a miss joins the next round of questions to the brokers and waits
// for it (two rounds recheck apart for a topic seen before), unless an
// absence was confirmed less than negTTL ago.
func (c *TopicCache) Lookup(topic string) TopicState {
	if _, ok := (*c.topics.Load())[topic]; ok {
		return TopicExists
	}
	c.mu.Lock()
	if _, ok := (*c.topics.Load())[topic]; ok {
		c.mu.Unlock()
		return TopicExists // learnt while we waited for the lock
	}
	if at, ok := c.absent[topic]; ok && c.now().Sub(at) < c.negTTL {
		c.mu.Unlock()
		return TopicAbsent
	}
	return c.ask(topic)
}

// confirmAbsent reports whether topic is absent by a check of the brokers
// made now, whatever the cache lists: the producer calls it when Kafka
// answered UNKNOWN_TOPIC_OR_PARTITION for a record, and sends that record
// to the error action only if it returns true.
func (c *TopicCache) confirmAbsent(topic string) bool {
	c.mu.Lock()
	if at, ok := c.absent[topic]; ok && c.now().Sub(at) < c.negTTL {
		c.mu.Unlock()
		return true
	}
	return c.ask(topic) == TopicAbsent
}

// ask adds topic to the round being gathered (starting one if none is) and
// waits for its result. c.mu is held on entry and released.
func (c *TopicCache) ask(topic string) TopicState {
	r := c.gathering
	leader := r == nil
	if leader {
		r = &checkRound{done: make(chan struct{})}
		c.gathering = r
	}
	if !slices.Contains(r.topics, topic) {
		r.topics = append(r.topics, topic)
	}
	c.mu.Unlock()
	if leader {
		c.run(r)
	}
	<-r.done
	return r.result[topic]
}

// run asks the brokers about r's topics, one round at a time, rounds at
// least roundGap apart, and records what it learnt.
func (c *TopicCache) run(r *checkRound) {
	c.roundMu.Lock()
	defer c.roundMu.Unlock()
	if !c.lastRound.IsZero() {
		if gap := c.roundGap - c.now().Sub(c.lastRound); gap > 0 {
			c.sleep(gap)
		}
	}
	c.mu.Lock()
	c.gathering = nil // later misses start the next round
	topics := r.topics
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		_, seen[t] = c.seen[t]
	}
	c.mu.Unlock()
	c.lastRound = c.now()

	res := c.asker.verdicts(topics)
	var again []string
	for _, t := range topics {
		if res[t] == TopicAbsent && seen[t] {
			again = append(again, t)
		}
	}
	if len(again) > 0 {
		c.sleep(c.recheck)
		for t, v := range c.asker.verdicts(again) {
			res[t] = v
		}
	}

	c.mu.Lock()
	for _, t := range topics {
		switch res[t] {
		case TopicExists:
			c.learn(t)
		case TopicAbsent:
			c.forget(t)
			c.rememberAbsent(t)
		}
	}
	c.mu.Unlock()
	r.result = res
	close(r.done)
}

// rememberAbsent records a confirmed absence, keeping the record bounded.
// c.mu is held.
func (c *TopicCache) rememberAbsent(topic string) {
	if len(c.absent) >= maxAbsentRemembers {
		now := c.now()
		for t, at := range c.absent {
			if now.Sub(at) >= c.negTTL {
				delete(c.absent, t)
			}
		}
		if len(c.absent) >= maxAbsentRemembers {
			clear(c.absent)
		}
	}
	c.absent[topic] = c.now()
}

// learn adds topic to the snapshot. c.mu is held.
func (c *TopicCache) learn(topic string) {
	old := *c.topics.Load()
	set := make(map[string]struct{}, len(old)+1)
	for t := range old {
		set[t] = struct{}{}
	}
	set[topic] = struct{}{}
	c.topics.Store(&set)
	c.seen[topic] = struct{}{}
	delete(c.absent, topic)
}

// forget drops topic from the snapshot (it was deleted). c.mu is held.
func (c *TopicCache) forget(topic string) {
	old := *c.topics.Load()
	if _, ok := old[topic]; !ok {
		return
	}
	set := make(map[string]struct{}, len(old))
	for t := range old {
		if t != topic {
			set[t] = struct{}{}
		}
	}
	c.topics.Store(&set)
}

// Refresh reloads the topic list now: call it after creating topics. A
// topic missing from this one listing is not taken as absent (the broker
// asked may lag): it stays known as seen, and a record for it is checked
// with every broker.
func (c *TopicCache) Refresh() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, err := listTopics(c.client)
	if err != nil {
		return fmt.Errorf("refresh kafka topic list: %w", err)
	}
	for t := range set {
		c.seen[t] = struct{}{}
		delete(c.absent, t)
	}
	c.topics.Store(&set)
	return nil
}

// Close closes the connections the checks opened.
func (c *TopicCache) Close() { c.asker.close() }

// brokerAsker sends the same metadata request to every broker a client
// knows, in parallel, over connections of its own.
type brokerAsker struct {
	client sarama.Client
	conf   *sarama.Config

	mu    sync.Mutex
	conns map[string]*sarama.Broker
}

func newBrokerAsker(client sarama.Client) *brokerAsker {
	conf := *client.Config()
	conf.Net.DialTimeout = topicAskTimeout
	conf.Net.ReadTimeout = topicAskTimeout
	conf.Net.WriteTimeout = topicAskTimeout
	return &brokerAsker{client: client, conf: &conf, conns: map[string]*sarama.Broker{}}
}

// verdicts asks every known broker about topics, in one request each, in
// parallel. A topic any broker lists exists; one that a majority of the
// brokers answered, every answer "unknown", is absent; any other is
// undecided.
func (a *brokerAsker) verdicts(topics []string) map[string]TopicState {
	var addrs []string
	for _, b := range a.client.Brokers() {
		addrs = append(addrs, b.Addr())
	}
	answers := make([]map[string]sarama.KError, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { answers[i] = a.ask(addr, topics) })
	}
	wg.Wait()
	out := make(map[string]TopicState, len(topics))
	for _, t := range topics {
		listed, unknown := false, 0
		for _, ans := range answers {
			code, ok := ans[t]
			switch {
			case !ok:
			case code == sarama.ErrUnknownTopicOrPartition:
				unknown++
			case code == sarama.ErrNoError, code == sarama.ErrLeaderNotAvailable:
				listed = true
			}
		}
		switch {
		case listed:
			out[t] = TopicExists
		case len(addrs) > 0 && unknown > len(addrs)/2:
			out[t] = TopicAbsent
		default:
			out[t] = TopicUndecided
		}
	}
	return out
}

// ask returns the error code addr's metadata gives for each of topics; nil
// when addr does not answer.
func (a *brokerAsker) ask(addr string, topics []string) map[string]sarama.KError {
	a.mu.Lock()
	b := a.conns[addr]
	if b == nil {
		b = sarama.NewBroker(addr)
		if err := b.Open(a.conf); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			a.mu.Unlock()
			return nil
		}
		a.conns[addr] = b
	}
	a.mu.Unlock()
	// Only these topics; a metadata request never creates one here
	// (AllowAutoTopicCreation is false).
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(a.conf.Version, topics))
	if err != nil {
		a.mu.Lock()
		if a.conns[addr] == b {
			delete(a.conns, addr)
		}
		a.mu.Unlock()
		_ = b.Close()
		return nil
	}
	out := make(map[string]sarama.KError, len(resp.Topics))
	for _, t := range resp.Topics {
		out[t.Name] = t.Err
	}
	return out
}

func (a *brokerAsker) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, b := range a.conns {
		_ = b.Close()
		delete(a.conns, addr)
	}
}
