package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// recordingObserver remembers what the producer reports.
type recordingObserver struct {
	n      atomic.Int32
	topic  atomic.Value
	maxLat atomic.Int64
}

func (o *recordingObserver) Produced(topic string, latency time.Duration) {
	o.n.Add(1)
	o.topic.Store(topic)
	if int64(latency) > o.maxLat.Load() {
		o.maxLat.Store(int64(latency))
	}
}

func TestProducerReportsStoredRecords(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{"message-log"}, Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cfg := DefaultConfig()
	cfg.Brokers = []string{emb.Addr()}
	obs := &recordingObserver{}
	p, err := NewProducer(cfg, zap.NewNop(), WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := produceSync(t, p, &router.Record{Topic: "message-log", Partition: -1, Value: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	// A record refused before Kafka is not reported as produced.
	if err := produceSync(t, p, &router.Record{Topic: "no-such-topic", Partition: -1, Value: []byte("{}")}); err == nil {
		t.Fatal("a record for an unknown topic was stored")
	}
	if obs.n.Load() != 1 || obs.topic.Load() != "message-log" || obs.maxLat.Load() <= 0 {
		t.Fatalf("observer saw %d records, topic %v, latency %v; want 1 of message-log with a latency",
			obs.n.Load(), obs.topic.Load(), time.Duration(obs.maxLat.Load()))
	}
}

func TestProducerShutdownIsCutShortAtItsDeadline(t *testing.T) {
	p, emb := startProducer(t, 1, "message-log")
	if err := produceSync(t, p, &router.Record{Topic: "message-log", Partition: -1, Value: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	// Kafka never answers again.
	release := make(chan struct{})
	defer close(release)
	cluster := emb.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	res := make(chan error, 1)
	if err := p.Produce(context.Background(), &router.Record{Topic: "message-log", Partition: -1, Value: []byte("held")},
		func(err error) { res <- err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := p.Shutdown(ctx)
	took := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline: %v; want the deadline's error", err)
	}
	if took > 300*time.Millisecond+abortGrace+time.Second {
		t.Fatalf("Shutdown took %s with a 300ms deadline", took)
	}
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("the held record was reported stored")
		}
	case <-time.After(abortGrace + time.Second):
		t.Fatal("the held record never got its result")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestProberFollowsTheCluster(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{"message-log"}, Partitions: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cfg := DefaultConfig()
	cfg.Brokers = []string{emb.Addr()}
	pr, err := NewProber(cfg, nil, []string{"message-log"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	pr.interval = 50 * time.Millisecond
	pr.Start()
	defer pr.Close()
	if err := pr.Err(); err != nil {
		t.Fatalf("after Start with Kafka up: %v", err)
	}

	var down atomic.Bool
	cluster := emb.Cluster()
	var asked atomic.Int32
	cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		asked.Add(1)
		// Never ask for every topic of the cluster, never create one.
		if r := req.(*kmsg.MetadataRequest); len(r.Topics) != 1 || r.AllowAutoTopicCreation {
			t.Errorf("probe asked for %d topics, auto-create %v", len(r.Topics), r.AllowAutoTopicCreation)
		}
		cluster.KeepControl()
		if down.Load() {
			return nil, errors.New("down"), true
		}
		return nil, nil, false
	})
	waitErr := func(wantNil bool) error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := pr.Err()
			if (err == nil) == wantNil {
				return err
			}
			if time.Now().After(deadline) {
				t.Fatalf("prober still says %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	down.Store(true)
	if err := waitErr(false); !strings.Contains(err.Error(), emb.Addr()) {
		t.Errorf("error %q does not name the broker", err)
	}
	down.Store(false)
	waitErr(true)
	if asked.Load() == 0 {
		t.Fatal("the control never saw a probe")
	}
	emb.Close()
	waitErr(false)
}

func TestProberStaleAnswerCountsAsUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	pr, err := NewProber(cfg, nil, []string{"message-log"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	pr.interval = time.Second
	pr.err, pr.checked = nil, time.Now().Add(-4*time.Second)
	if err := pr.Err(); err == nil || !strings.Contains(err.Error(), "no probe answer") {
		t.Fatalf("a 4s-old answer with a 1s interval: %v", err)
	}
	pr.Close() // never started: returns at once
}
