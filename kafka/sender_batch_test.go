package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// leaderlessMetadata makes the embedded broker answer metadata requests
// for its one topic, of partitions partitions, with partition leaderless
// (LEADER_NOT_AVAILABLE, no leader), as a cluster in a leader election
// answers.
func leaderlessMetadata(t *testing.T, e *Embedded, topic string, partitions, leaderless int32) {
	t.Helper()
	answer := metadataAnswer(t, e)
	c := e.Cluster()
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := answer(req)
		node := resp.ControllerID
		rt := kmsg.NewMetadataResponseTopic()
		name := topic
		rt.Topic = &name
		for p := range partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.Replicas, rp.ISR = p, node, []int32{node}, []int32{node}
			if p == leaderless {
				rp.ErrorCode, rp.Leader, rp.ISR = 5, -1, nil
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = []kmsg.MetadataResponseTopic{rt}
		return resp, nil, true
	})
}

// metadataAnswer returns a function, for use in a control function of
// e's cluster, that starts the answer to a metadata request: the broker
// that got it, no topics.
func metadataAnswer(t *testing.T, e *Embedded) func(kmsg.Request) *kmsg.MetadataResponse {
	t.Helper()
	host, port, err := net.SplitHostPort(e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	c := e.Cluster()
	return func(req kmsg.Request) *kmsg.MetadataResponse {
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		node := c.CurrentNode()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = node, host, int32(portN)
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		cluster := "fleetgate-embedded"
		resp.ClusterID, resp.ControllerID = &cluster, node
		return resp
	}
}

// TestBatchSenderLeaderlessPartitionDoesNotStallOthers: while one
// partition has no leader (an election, an offline partition), the
// records of the other partitions are stored as fast as before: the
// loop must not wait for that partition's leader lookup.
func TestBatchSenderLeaderlessPartitionDoesNotStallOthers(t *testing.T) {
	const topic = "message-log"
	p, emb := startProducerOf(t, ProducerFleetgate, 2, topic)
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: 0, Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	leaderlessMetadata(t, emb, topic, 2, 1)
	// Partition 1's writes are refused, so the sender refreshes metadata
	// and learns that partition 1 has no leader.
	refuseProduces(emb, func(p int32) int16 {
		if p == 1 {
			return 5
		}
		return 0
	})
	defer shutdownSoon(p)
	if err := p.Produce(context.Background(), &router.Record{Topic: topic, Partition: 1, Value: []byte("stuck")}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	worst := slowestRecord(t, p, topic, 0)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of partition 0 took %v while partition 1 had no leader; want under 300ms", worst)
	}
	t.Logf("slowest record of partition 0: %v", worst)
}

// TestBatchSenderUnknownTopicAnswersDoNotStallOthers: a broker that
// answers UNKNOWN_TOPIC_OR_PARTITION for a topic that exists (its
// metadata lags) makes the gateway check the topic with every broker;
// meanwhile the records of another broker's partitions are stored as fast
// as before: that check must not hold up the loop.
func TestBatchSenderUnknownTopicAnswersDoNotStallOthers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(1, "message-log"), kfake.SeedTopics(6, "message-gps"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// message-log on broker 0, message-gps on broker 1, which lags.
	if err := c.MoveTopicPartition("message-log", 0, 0); err != nil {
		t.Fatal(err)
	}
	for part := range int32(6) {
		if err := c.MoveTopicPartition("message-gps", part, 1); err != nil {
			t.Fatal(err)
		}
	}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != 1 {
			return nil, nil, false
		}
		return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return 3 }), nil, true
	})
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	p := newTestProducer(t, cfg)
	defer shutdownSoon(p)
	for part := range int32(6) {
		if err := p.Produce(context.Background(), &router.Record{Topic: "message-gps", Partition: part, Value: []byte("lagging")}, func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	worst := slowestRecord(t, p, "message-log", -1)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of message-log took %v while message-gps's broker answered UNKNOWN_TOPIC_OR_PARTITION; want under 300ms", worst)
	}
	t.Logf("slowest record of message-log: %v", worst)
}

// slowestRecord produces records of one device to topic (partition: -1
// for its key's) one at a time for 2s and returns the longest any took.
func slowestRecord(t *testing.T, p *Producer, topic string, partition int32) time.Duration {
	t.Helper()
	var worst time.Duration
	end := time.Now().Add(2 * time.Second)
	for i := 1; time.Now().Before(end); i++ {
		start := time.Now()
		if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: partition, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	return worst
}

// TestBatchSenderTopicWithoutPartitionsDoesNotStallOthers: while the
// brokers do not know a topic's partitions yet (just created, their
// metadata lags), its records wait and the records of other topics are
// stored as fast as before: the loop must not wait for the lookup.
func TestBatchSenderTopicWithoutPartitionsDoesNotStallOthers(t *testing.T) {
	const topic, fresh = "message-log", "message-new"
	p, emb := startProducerOf(t, ProducerFleetgate, 1, topic)
	adm := testAdmin(t, p)
	if err := adm.CreateTopic(fresh, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := p.RefreshTopics(); err != nil {
		t.Fatal(err)
	}
	// A metadata request about the fresh topic alone (the sender's
	// partition lookup) gets UNKNOWN_TOPIC_OR_PARTITION.
	answer := metadataAnswer(t, emb)
	c := emb.Cluster()
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.MetadataRequest)
		if len(r.Topics) != 1 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != fresh {
			return nil, nil, false
		}
		resp := answer(req)
		rt := kmsg.NewMetadataResponseTopic()
		name := fresh
		rt.Topic, rt.ErrorCode = &name, 3
		resp.Topics = []kmsg.MetadataResponseTopic{rt}
		return resp, nil, true
	})
	defer shutdownSoon(p)
	if err := p.Produce(context.Background(), &router.Record{Topic: fresh, Key: []byte("D2"), Partition: -1, Value: []byte("waits")}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	worst := slowestRecord(t, p, topic, -1)
	if worst > 300*time.Millisecond {
		t.Fatalf("a record of %s took %v while %s's partitions were unknown; want under 300ms", topic, worst, fresh)
	}
	t.Logf("slowest record of %s: %v", topic, worst)
}

// TestBatchSenderDeletedTopicFailsItsRecords: records of a topic deleted
// after the sender knew it, taken before the producer learnt it was
// gone, fail with unknown_topic (their messages go to the error action)
// once the gateway's own check finds the topic absent; they must not
// wait in the sender until shutdown, keyed (the partition count is
// looked up) or on a fixed partition (the leader is).
func TestBatchSenderDeletedTopicFailsItsRecords(t *testing.T) {
	for _, partition := range []int32{-1, 0} {
		t.Run(fmt.Sprint("partition ", partition), func(t *testing.T) {
			const topic, gone = "message-log", "message-old"
			p, _ := startProducerWith(t, 1, func(c *Config) { c.Producer = ProducerFleetgate }, topic, gone)
			if err := produceSync(t, p, &router.Record{Topic: gone, Key: []byte("D1"), Partition: partition, Value: []byte("1")}); err != nil {
				t.Fatal(err)
			}
			adm := testAdmin(t, p)
			if err := adm.DeleteTopic(gone); err != nil {
				t.Fatal(err)
			}
			// The sender's metadata learns the deletion (as any refresh
			// after a failed send does); the producer's topic list not yet.
			if err := p.out.(*batchSender).client.RefreshMetadata(); err != nil {
				t.Fatal(err)
			}
			defer shutdownSoon(p)
			failsWithin5s(t, p, &router.Record{Topic: gone, Key: []byte("D1"), Partition: partition, Value: []byte("2")},
				router.ReasonUnknownTopic, "a record of the deleted topic")
		})
	}
}

// TestBatchSenderDeletedTopicDoesNotStallOthers: a keyed record of a
// topic the sender knew but whose metadata has since gone (deleted, and a
// refresh learnt it) must not hold the loop while sarama asks the brokers
// about it again, with retries: the records of other topics behind it are
// stored as fast as before.
func TestBatchSenderDeletedTopicDoesNotStallOthers(t *testing.T) {
	const topic, gone = "message-log", "message-old"
	p, _ := startProducerWith(t, 1, func(c *Config) { c.Producer = ProducerFleetgate }, topic, gone)
	if err := produceSync(t, p, &router.Record{Topic: gone, Key: []byte("D1"), Partition: -1, Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := testAdmin(t, p).DeleteTopic(gone); err != nil {
		t.Fatal(err)
	}
	if err := p.out.(*batchSender).client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	defer shutdownSoon(p)
	res := make(chan error, 1)
	if err := p.Produce(context.Background(), &router.Record{Topic: gone, Key: []byte("D1"), Partition: -1, Value: []byte("2")},
		func(err error) { res <- err }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D2"), Partition: -1, Value: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Fatalf("a record of %s took %v behind one of the deleted %s; want under 300ms", topic, took, gone)
	}
	select {
	case <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("the deleted topic's record did not complete within 5s")
	}
}

// TestBatchSenderSpreadsKeysOverPartitionsAdded: the loop places keyed
// records by the partition count it looked up, not by asking for every
// record; partitions added to the topic are used once the client's
// metadata has them, within recountEvery.
func TestBatchSenderSpreadsKeysOverPartitionsAdded(t *testing.T) {
	const topic = "message-log"
	p, _ := startProducerOf(t, ProducerFleetgate, 1, topic)
	defer shutdownSoon(p)
	for i := range 3 { // the loop has looked the count up, and recounted
		if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D0"), Partition: -1, Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testAdmin(t, p).CreatePartitions(topic, 4, nil, false); err != nil {
		t.Fatal(err)
	}
	client := p.out.(*batchSender).client
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(recountEvery + 5*time.Second)
	for i := 1; ; i++ {
		if err := produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D" + strconv.Itoa(i)), Partition: -1, Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		n, err := client.GetOffset(topic, 3, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Logf("partition 3 got its first record after %d records", i)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record on partition 3 of 4 after %d keyed records; want the added partitions used within %v", i, recountEvery)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failsWithin5s produces rec, what the messages call it, and wants it to
// fail with a RecordError of reason within 5s.
func failsWithin5s(t *testing.T, p *Producer, rec *router.Record, reason, what string) {
	t.Helper()
	res := make(chan error, 1)
	if err := p.Produce(context.Background(), rec, func(err error) { res <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		var re *RecordError
		if !errors.As(err, &re) || re.Reason != reason {
			t.Fatalf("%s: %v; want a RecordError %s", what, err, reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not complete within 5s", what)
	}
}

// lossyProxy forwards Kafka connections to a broker and, for the produce
// requests cut picks, lets the broker handle the request but drops its
// answer and the connection: a lost answer to a stored batch. While mute
// is set it drops every answer and keeps the connections: a broker that
// takes requests and never answers.
type lossyProxy struct {
	ln    net.Listener
	to    string
	cut   func() bool
	drops atomic.Int64
	mute  atomic.Bool
}

// startLossyCluster starts an embedded cluster with topic reached only
// through a lossyProxy (its metadata names the proxy), and returns the
// proxy's address.
func startLossyCluster(t *testing.T, partitions int32, topic string, cut func() bool) (*kfake.Cluster, *lossyProxy) {
	t.Helper()
	direct, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &lossyProxy{ln: front, to: direct.Addr().String(), cut: cut}
	go px.serve()
	t.Cleanup(func() { front.Close() })
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			return &advertisedListener{Listener: direct, addr: front.Addr()}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, px
}

func (p *lossyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.conn(c)
	}
}

// conn forwards one connection, Kafka frame by frame.
func (p *lossyProxy) conn(c net.Conn) {
	b, err := net.Dial("tcp", p.to)
	if err != nil {
		c.Close()
		return
	}
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); b.Close() }) }
	defer closeBoth()
	var dropping atomic.Bool
	go func() {
		defer closeBoth()
		for {
			frame, err := readFrame(b)
			if err != nil {
				return
			}
			if dropping.Load() {
				p.drops.Add(1)
				return
			}
			if p.mute.Load() {
				continue
			}
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}()
	for {
		frame, err := readFrame(c)
		if err != nil {
			return
		}
		if binary.BigEndian.Uint16(frame[4:]) == uint16(kmsg.Produce) && p.cut() {
			dropping.Store(true)
		}
		if _, err := b.Write(frame); err != nil {
			return
		}
	}
}

// readFrame reads one size-prefixed Kafka frame, its size included.
func readFrame(r io.Reader) ([]byte, error) {
	frame := make([]byte, 4)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	frame = append(frame, make([]byte, binary.BigEndian.Uint32(frame))...)
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}

// TestBatchSenderCompletesEachRecordOnceThroughLostAnswersAndShutdown:
// devices hand records over without waiting while the broker refuses
// writes, answers UNKNOWN_PRODUCER_ID or without the partitions' results,
// and answers to stored batches are lost with their connection; then the
// producer shuts down with a deadline that cuts it short. Every record
// completes exactly once, each device's stored records are a prefix of
// what it handed over (in order, once each with idempotence), and every
// record reported stored is in Kafka.
func TestBatchSenderCompletesEachRecordOnceThroughLostAnswersAndShutdown(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent ", idempotent), func(t *testing.T) {
			const topic, devices, each, partitions = "message-gps", 16, 400, 4
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(9, 10))
			faults := true
			pick := func(n int) int {
				mu.Lock()
				defer mu.Unlock()
				if !faults {
					return -1
				}
				return rng.IntN(n)
			}
			c, px := startLossyCluster(t, partitions, topic, func() bool { return pick(3) == 0 })
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				pr := req.(*kmsg.ProduceRequest)
				switch pick(10) {
				case 0:
					if idempotent {
						return kfaketest.Answer(pr, func(int32) int16 { return 59 }), nil, true // UNKNOWN_PRODUCER_ID
					}
				case 1:
					return kfaketest.Answer(pr, func(p int32) int16 { return []int16{6, 7, 19, 5}[p%4] }), nil, true
				case 2:
					return pr.ResponseKind(), nil, true // no partition's result
				}
				return nil, nil, false
			})
			cfg := DefaultConfig()
			cfg.Brokers, cfg.Idempotent = []string{px.ln.Addr().String()}, idempotent
			p := newTestProducer(t, cfg)
			var calls, stored [devices][each + 1]atomic.Int32
			var handed [devices]int
			var wg sync.WaitGroup
			for d := range devices {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for s := 1; s <= each; s++ {
						time.Sleep(time.Millisecond)
						rec := &router.Record{Topic: topic, Key: []byte(fmt.Sprintf("D%d", d)), Partition: -1, Value: []byte(fmt.Sprintf(`%d:%d`, d, s))}
						if err := p.Produce(context.Background(), rec, func(err error) {
							calls[d][s].Add(1)
							if err == nil {
								stored[d][s].Store(1)
							}
						}); err != nil {
							return // closed
						}
						handed[d] = s
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_ = p.Shutdown(ctx)
			wg.Wait()
			mu.Lock()
			faults = false
			mu.Unlock()
			last := map[int]int{}
			for part := range int32(partitions) {
				for _, v := range readPartition(t, px.ln.Addr().String(), topic, part) {
					var d, s int
					fmt.Sscanf(v, "%d:%d", &d, &s)
					if s > last[d]+1 || idempotent && s != last[d]+1 {
						t.Fatalf("device %d: record %d stored after %d", d, s, last[d])
					}
					last[d] = max(last[d], s)
				}
			}
			n := 0
			for d := range devices {
				for s := 1; s <= handed[d]; s++ {
					if k := calls[d][s].Load(); k != 1 {
						t.Fatalf("record %d:%d completed %d times", d, s, k)
					}
					if stored[d][s].Load() == 1 {
						n++
						if s > last[d] {
							t.Fatalf("record %d:%d was reported stored; Kafka has device %d up to %d", d, s, d, last[d])
						}
					}
				}
			}
			if n == 0 || px.drops.Load() == 0 {
				t.Fatalf("%d records stored, %d answers lost: the test tested nothing", n, px.drops.Load())
			}
			t.Logf("%d records stored, %d answers lost", n, px.drops.Load())
		})
	}
}

// TestBatchSenderPartitionTurnedLeaderlessDoesNotStallOthers: a partition
// whose last batch was stored, and which a metadata refresh (after another
// partition's failure) then shows leaderless, is looked up off the loop
// too: the other partition's records keep being stored in a few ms.
func TestBatchSenderPartitionTurnedLeaderlessDoesNotStallOthers(t *testing.T) {
	const topic = "message-log"
	p, emb := startProducerOf(t, ProducerFleetgate, 2, topic)
	for part := range int32(2) {
		if err := produceSync(t, p, &router.Record{Topic: topic, Partition: part, Value: []byte("0")}); err != nil {
			t.Fatal(err)
		}
	}
	leaderlessMetadata(t, emb, topic, 2, 1)
	var once atomic.Bool
	refuseProduces(emb, func(int32) int16 {
		if once.CompareAndSwap(false, true) {
			return 6 // NOT_LEADER_OR_FOLLOWER: the sender refreshes its metadata
		}
		return 0
	})
	if err := produceSync(t, p, &router.Record{Topic: topic, Partition: 0, Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the refresh's retries for the leaderless partition
	defer shutdownSoon(p)
	if err := p.Produce(context.Background(), &router.Record{Topic: topic, Partition: 1, Value: []byte("stuck")}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	if worst := slowestRecord(t, p, topic, 0); worst > 300*time.Millisecond {
		t.Fatalf("a record of partition 0 took %v once partition 1 turned leaderless; want under 300ms", worst)
	}
}

// shutdownSoon shuts p down, failing within 100ms the records it holds.
func shutdownSoon(p *Producer) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = p.Shutdown(ctx)
}

// TestBatchSenderKeepsSequencesOfABatchThatMayBeStored: a batch whose
// answer was lost (the broker stored it) and which then fails for good on
// its retry (here TOPIC_AUTHORIZATION_FAILED) may be in Kafka; its
// sequence numbers must not be given to the next batch, or the broker
// takes that batch, of the same shape, for a copy of the stored one and
// answers "stored" without storing it: a record acknowledged and lost.
func TestBatchSenderKeepsSequencesOfABatchThatMayBeStored(t *testing.T) {
	const topic = "message-log"
	var produces atomic.Int64
	c, px := startLossyCluster(t, 1, topic, func() bool { return produces.Load() == 1 })
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produces.Add(1) == 3 { // the retry of the batch whose answer was lost
			return kfaketest.Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return 29 }), nil, true
		}
		return nil, nil, false
	})
	cfg := DefaultConfig()
	cfg.Brokers = []string{px.ln.Addr().String()}
	p := newTestProducer(t, cfg)
	t.Cleanup(func() { p.Close() })
	produce := func(v string) error {
		return produceSync(t, p, &router.Record{Topic: topic, Key: []byte("D1"), Partition: -1, Value: []byte(v)})
	}
	if err := produce("1"); err != nil {
		t.Fatal(err)
	}
	var re *RecordError
	if err := produce("2"); !errors.As(err, &re) {
		t.Fatalf("the batch refused on its retry: %v; want a RecordError", err)
	}
	if err := produce("3"); err != nil {
		t.Fatal(err)
	}
	if px.drops.Load() == 0 {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	got := readPartition(t, px.ln.Addr().String(), topic, 0)
	if !containsValue(got, "3") {
		t.Fatalf("record 3 was reported stored; the partition holds %q", got)
	}
}

// TestBatchSenderFailsRecordsOfAPartitionTheTopicLacks: a record for a
// fixed partition the topic does not have, which Produce let through on
// its own metadata (stale here: the topic was deleted and created again
// with fewer partitions), fails with invalid_partition once the sender's
// metadata shows the count; before, the brokers'
// UNKNOWN_TOPIC_OR_PARTITION for it (the topic exists) was retried for as
// long as the process ran.
func TestBatchSenderFailsRecordsOfAPartitionTheTopicLacks(t *testing.T) {
	const topic = "message-log"
	p, _ := startProducerOf(t, ProducerFleetgate, 4, topic)
	if err := produceSync(t, p, &router.Record{Topic: topic, Partition: 3, Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	adm := testAdmin(t, p)
	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if ps, err := p.Client().Partitions(topic); err != nil || len(ps) != 4 {
		t.Fatalf("the producer's metadata has %d partitions (%v); the test needs the 4 from before", len(ps), err)
	}
	defer shutdownSoon(p)
	failsWithin5s(t, p, &router.Record{Topic: topic, Partition: 3, Value: []byte("2")},
		router.ReasonInvalidPartition, "a record for partition 3 of a topic of 1")
	if err := produceSync(t, p, &router.Record{Topic: topic, Partition: 0, Value: []byte("3")}); err != nil {
		t.Fatalf("record for partition 0 after it: %v", err)
	}
}

// testAdmin is an admin client over p's connections to the brokers.
func testAdmin(t *testing.T, p *Producer) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdminFromClient(p.Client())
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

// TestBatchSenderRecountForgetsAGoneTopic: a recount that finds a topic
// gone from the metadata (no partitions) forgets its count, so its next
// records are held and looked up again (which fails them if it was
// deleted) instead of being placed by a stale count, and the recount does
// not ask about it again; a topic still there takes its new count.
func TestBatchSenderRecountForgetsAGoneTopic(t *testing.T) {
	s := &batchSender{counting: true, parters: map[string]*topicParts{
		"message-gone": {n: 6},
		"message-kept": {n: 6},
	}}
	s.recounted(map[string]int32{"message-gone": 0, "message-kept": 8, "message-new": 3})
	if s.counting {
		t.Error("still counting after the recount's answer")
	}
	if tp := s.parters["message-gone"]; tp != nil {
		t.Fatalf("the gone topic is still placed by a count of %d; want it forgotten", tp.n)
	}
	if tp := s.parters["message-kept"]; tp == nil || tp.n != 8 {
		t.Errorf("the kept topic's count is %+v; want 8", tp)
	}
	if tp := s.parters["message-new"]; tp != nil {
		t.Error("a topic the loop did not know was added by the recount; only a lookup adds one")
	}
	o := &outgoing{msg: sarama.ProducerMessage{Topic: "message-gone"}, pd: pending{partition: -1}}
	if s.placeOne(o) {
		t.Error("a record of the forgotten topic was placed; want it held for a lookup")
	}
}
