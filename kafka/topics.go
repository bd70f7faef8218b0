package kafka

import (
	"errors"
	"fmt"
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
// one bad topic costs one round per negTTL. It is safe for concurrent use.
type TopicCache struct {
	client  sarama.Client
	asker   *brokerAsker
	negTTL  time.Duration
	recheck time.Duration
	now     func() time.Time
	sleep   func(time.Duration)

	// topics is the current immutable snapshot of topics known to exist:
	// hits only load it.
	topics atomic.Pointer[map[string]struct{}]

	// mu is held by the one caller asking the brokers; it guards seen
	// and absent.
	mu     sync.Mutex
	seen   map[string]struct{}  // every topic ever listed
	absent map[string]time.Time // confirmed absent, and when
}

// Defaults of NewTopicCache.
const (
	topicAbsentTTL     = time.Second
	topicRecheckAfter  = 500 * time.Millisecond
	topicAskTimeout    = 2 * time.Second
	maxAbsentRemembers = 4096
)

// NewTopicCache returns a TopicCache over client, starting from the topics
// client's metadata already holds (no request is made). Its checks use the
// brokers client knows, over connections of their own configured like
// client's with short timeouts. Close closes those connections.
func NewTopicCache(client sarama.Client) *TopicCache {
	c := &TopicCache{
		client:  client,
		asker:   newBrokerAsker(client),
		negTTL:  topicAbsentTTL,
		recheck: topicRecheckAfter,
		now:     time.Now,
		sleep:   time.Sleep,
		seen:    map[string]struct{}{},
		absent:  map[string]time.Time{},
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
// lookup; a miss asks the brokers (blocking for that round, or two rounds
// for a topic seen before) unless an absence was confirmed less than negTTL
// ago. Callers that miss while another asks wait for it and answer from
// what it learnt.
func (c *TopicCache) Lookup(topic string) TopicState {
	if _, ok := (*c.topics.Load())[topic]; ok {
		return TopicExists
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := (*c.topics.Load())[topic]; ok {
		return TopicExists // learnt while we waited for the lock
	}
	if at, ok := c.absent[topic]; ok && c.now().Sub(at) < c.negTTL {
		return TopicAbsent
	}
	return c.check(topic)
}

// confirmAbsent reports whether topic is absent by a check of the brokers
// made now, whatever the cache holds: the producer calls it when Kafka
// answered UNKNOWN_TOPIC_OR_PARTITION for a record, and sends that record
// to the error action only if it returns true.
func (c *TopicCache) confirmAbsent(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.absent[topic]; ok && c.now().Sub(at) < c.negTTL {
		return true
	}
	return c.check(topic) == TopicAbsent
}

// check asks the brokers about topic. c.mu is held.
func (c *TopicCache) check(topic string) TopicState {
	rounds := 1
	if _, ok := c.seen[topic]; ok {
		rounds = 2
	}
	for i := range rounds {
		if i > 0 {
			c.sleep(c.recheck)
		}
		switch c.asker.verdict(topic) {
		case TopicExists:
			c.learn(topic)
			return TopicExists
		case TopicUndecided:
			return TopicUndecided
		}
	}
	c.forget(topic)
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
	return TopicAbsent
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

// verdict asks every known broker about topic.
func (a *brokerAsker) verdict(topic string) TopicState {
	var addrs []string
	for _, b := range a.client.Brokers() {
		addrs = append(addrs, b.Addr())
	}
	if len(addrs) == 0 {
		return TopicUndecided
	}
	type answer struct {
		listed, unknown bool
	}
	answers := make([]answer, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			code, err := a.ask(addr, topic)
			switch {
			case err != nil:
			case code == sarama.ErrUnknownTopicOrPartition:
				answers[i].unknown = true
			case code == sarama.ErrNoError, code == sarama.ErrLeaderNotAvailable:
				answers[i].listed = true
			}
		})
	}
	wg.Wait()
	unknown := 0
	for _, a := range answers {
		if a.listed {
			return TopicExists
		}
		if a.unknown {
			unknown++
		}
	}
	// A majority of the brokers, every one of them saying "unknown".
	if unknown > len(addrs)/2 {
		return TopicAbsent
	}
	return TopicUndecided
}

// ask returns the error code addr's metadata gives for topic.
func (a *brokerAsker) ask(addr, topic string) (sarama.KError, error) {
	a.mu.Lock()
	b := a.conns[addr]
	if b == nil {
		b = sarama.NewBroker(addr)
		if err := b.Open(a.conf); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			a.mu.Unlock()
			return 0, err
		}
		a.conns[addr] = b
	}
	a.mu.Unlock()
	// Only this topic; a metadata request never creates one here
	// (AllowAutoTopicCreation is false).
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(a.conf.Version, []string{topic}))
	if err != nil {
		a.mu.Lock()
		if a.conns[addr] == b {
			delete(a.conns, addr)
		}
		a.mu.Unlock()
		_ = b.Close()
		return 0, err
	}
	for _, t := range resp.Topics {
		if t.Name == topic {
			return t.Err, nil
		}
	}
	return 0, fmt.Errorf("kafka broker %s: no answer for topic %q", addr, topic)
}

func (a *brokerAsker) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, b := range a.conns {
		_ = b.Close()
		delete(a.conns, addr)
	}
}
