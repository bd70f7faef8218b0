package kafka

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is a settable clock for TopicCache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestCache is a TopicCache over client with a fake clock and no sleep.
func newTestCache(t *testing.T, client sarama.Client) (*TopicCache, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := NewTopicCache(client)
	c.now = clock.Now
	c.sleep = func(time.Duration) {}
	t.Cleanup(c.Close)
	return c, clock
}

func TestTopicCache(t *testing.T) {
	e := startEmbedded(t, 1, "message-log", "message-gps")
	client := newTestClient(t, e, sarama.V3_9_0_0) // fetched all topics' metadata
	requests := countMetadata(e)
	cache, clock := newTestCache(t, client)

	step := func(topic string, want TopicState, wantRequests int32) {
		t.Helper()
		if got := cache.Lookup(topic); got != want {
			t.Errorf("Lookup(%q) = %v, want %v", topic, got, want)
		}
		if got := requests.Load(); got != wantRequests {
			t.Errorf("after Lookup(%q): %d metadata requests, want %d", topic, got, wantRequests)
		}
	}
	step("message-log", TopicExists, 0) // hit: from the client's metadata, no request
	step("message-gps", TopicExists, 0)
	step("message-typo", TopicAbsent, 1) // a miss asks the (one) broker
	step("message-typo", TopicAbsent, 1) // confirmed a moment ago: no request
	step("other-typo", TopicAbsent, 2)   // another topic is asked about

	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("message-new", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	before := requests.Load()
	// Created a moment after a miss of another topic: found at once.
	step("message-new", TopicExists, before+1)
	step("message-new", TopicExists, before+1) // now a hit
	clock.Advance(topicAbsentTTL)
	step("message-typo", TopicAbsent, before+2) // the absence is checked again
}

// lagCluster is a 3-broker kfake cluster whose brokers can be told to
// answer metadata for one topic as if they had not applied it yet.
type lagCluster struct {
	*kfake.Cluster
	mu      sync.Mutex
	lagging map[int32]string // node -> "unknown" or "dead"
	asked   atomic.Int32
}

func startLagCluster(t *testing.T, topic string) (*lagCluster, sarama.Client) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic, "message-log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	lc := &lagCluster{Cluster: kc, lagging: map[int32]string{}}
	kc.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		mr := req.(*kmsg.MetadataRequest)
		if len(mr.Topics) != 1 || mr.Topics[0].Topic == nil || *mr.Topics[0].Topic != topic {
			return nil, nil, false
		}
		lc.asked.Add(1)
		lc.mu.Lock()
		how := lc.lagging[kc.CurrentNode()]
		lc.mu.Unlock()
		switch how {
		case "dead":
			return nil, errors.New("broker does not answer"), true
		case "unknown":
			resp := mr.ResponseKind().(*kmsg.MetadataResponse)
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = &topic
			rt.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			resp.Topics = append(resp.Topics, rt)
			return resp, nil, true
		}
		return nil, nil, false
	})
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
	client, err := sarama.NewClient(kc.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if n := len(client.Brokers()); n != 3 {
		t.Fatalf("client knows %d brokers, want 3", n)
	}
	return lc, client
}

func (lc *lagCluster) set(how map[int32]string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.lagging = how
}

// TestTopicCacheLaggingBrokers: a broker that has not applied a topic
// answers UNKNOWN_TOPIC_OR_PARTITION for it. The cache must not take that
// for absence while another broker lists the topic, nor when too few
// brokers answer; and a topic it knew must be found absent twice.
func TestTopicCacheLaggingBrokers(t *testing.T) {
	const topic = "message-new"
	lc, client := startLagCluster(t, topic)
	ids := []int32{}
	for _, b := range client.Brokers() {
		ids = append(ids, b.ID())
	}
	slices.Sort(ids)

	cases := []struct {
		name   string
		how    map[int32]string
		seen   bool
		want   TopicState
		rounds int32 // requests to the brokers: 3 a round
	}{
		{"two of three lag", map[int32]string{ids[0]: "unknown", ids[1]: "unknown"}, false, TopicExists, 3},
		{"one lags, one dead", map[int32]string{ids[0]: "unknown", ids[1]: "dead"}, false, TopicExists, 3},
		{"all three answer unknown", map[int32]string{ids[0]: "unknown", ids[1]: "unknown", ids[2]: "unknown"}, false, TopicAbsent, 3},
		{"two unknown, one dead: a majority", map[int32]string{ids[0]: "unknown", ids[1]: "unknown", ids[2]: "dead"}, false, TopicAbsent, 3},
		{"one unknown, two dead: undecided", map[int32]string{ids[0]: "unknown", ids[1]: "dead", ids[2]: "dead"}, false, TopicUndecided, 3},
		{"a known topic is asked about twice", map[int32]string{ids[0]: "unknown", ids[1]: "unknown", ids[2]: "unknown"}, true, TopicAbsent, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache, _ := newTestCache(t, client)
			set := map[string]struct{}{} // forget what the client listed
			cache.topics.Store(&set)
			if c.seen {
				cache.seen[topic] = struct{}{}
			} else {
				delete(cache.seen, topic)
			}
			lc.set(c.how)
			before := lc.asked.Load()
			if got := cache.Lookup(topic); got != c.want {
				t.Errorf("Lookup = %v, want %v", got, c.want)
			}
			if got := lc.asked.Load() - before; got != c.rounds {
				t.Errorf("%d metadata requests, want %d", got, c.rounds)
			}
		})
	}

	t.Run("confirmAbsent for a topic the cache lists", func(t *testing.T) {
		cache, _ := newTestCache(t, client)
		lc.set(map[int32]string{ids[0]: "unknown"}) // one stale broker answered a produce with unknown
		if cache.confirmAbsent(topic) {
			t.Fatal("confirmAbsent = true while two brokers list the topic")
		}
		if cache.Lookup(topic) != TopicExists {
			t.Fatal("the topic is no longer known")
		}
		lc.set(map[int32]string{ids[0]: "unknown", ids[1]: "unknown", ids[2]: "unknown"}) // deleted
		if !cache.confirmAbsent(topic) {
			t.Fatal("confirmAbsent = false when every broker says unknown")
		}
	})
}

func TestTopicCacheConcurrentMisses(t *testing.T) {
	e := startEmbedded(t, 1, "message-log")
	client := newTestClient(t, e, sarama.V3_9_0_0)
	requests := countMetadata(e)
	cache, _ := newTestCache(t, client) // the fake clock stands still

	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 100 {
				if cache.Lookup("message-log") != TopicExists {
					t.Error("Lookup(message-log) is not TopicExists")
					return
				}
				if cache.Lookup("typo-"+string(rune('a'+i))) != TopicAbsent {
					t.Error("Lookup(typo) is not TopicAbsent")
					return
				}
			}
		})
	}
	wg.Wait()
	if n := requests.Load(); n < 1 || n > 16 {
		t.Errorf("%d metadata requests for 1600 misses of 16 topics, want 1 to 16 (rounds are shared)", n)
	}
}

// TestTopicCacheFloodOfDistinctTopics: 2000 misses of distinct bad topics
// from 50 goroutines share rounds spaced at least 100 ms apart, so the
// broker sees a few requests a second, not one per miss; every answer is
// right.
func TestTopicCacheFloodOfDistinctTopics(t *testing.T) {
	e := startEmbedded(t, 1, "message-log")
	client := newTestClient(t, e, sarama.V3_9_0_0)
	requests := countMetadata(e)
	cache := NewTopicCache(client)
	t.Cleanup(cache.Close)

	began := time.Now()
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := range 40 {
				if got := cache.Lookup(fmt.Sprintf("typo-%d-%d", g, i)); got != TopicAbsent {
					t.Errorf("Lookup(typo) = %v", got)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	n := requests.Load()
	t.Logf("2000 distinct misses in %s: %d metadata requests", elapsed.Round(time.Millisecond), n)
	if limit := int32(elapsed/topicRoundGap) + 2; n > limit {
		t.Errorf("%d metadata requests in %s, want at most %d (one round per %s)", n, elapsed, limit, topicRoundGap)
	}
}

func BenchmarkTopicCacheHit(b *testing.B) {
	cache := &TopicCache{}
	set := map[string]struct{}{"message-log": {}, "message-gps": {}}
	cache.topics.Store(&set)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if cache.Lookup("message-gps") != TopicExists {
				b.Fatal("miss")
			}
		}
	})
}
