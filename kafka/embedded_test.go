package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// startEmbedded starts an embedded broker on a free port for the test.
func startEmbedded(t *testing.T, partitions int32, topics ...string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: topics, Partitions: partitions}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// testSaramaConfig is the producer configuration the gateway uses by
// default, in the protocol version given.
func testSaramaConfig(t *testing.T, v sarama.KafkaVersion) *sarama.Config {
	t.Helper()
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = "fleetgate-test"
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Compression = sarama.CompressionLZ4
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 5
	c.Producer.Retry.Backoff = 50 * time.Millisecond
	c.Metadata.AllowAutoTopicCreation = false
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	// Closing a partition consumer waits out its fetch; keep that short.
	c.Consumer.MaxWaitTime = 20 * time.Millisecond
	var err error
	if c.Producer.Partitioner, err = NewPartitioner("murmur2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestClient(t *testing.T, e *Embedded, v sarama.KafkaVersion) sarama.Client {
	t.Helper()
	client, err := sarama.NewClient([]string{e.Addr()}, testSaramaConfig(t, v))
	if err != nil {
		t.Fatalf("sarama.NewClient(%s): %v", e.Addr(), err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestEmbeddedProduceConsume(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V3_9_0_0, sarama.V4_0_0_0, sarama.V2_8_0_0} {
		t.Run(v.String(), func(t *testing.T) {
			const topic, n = "message-gps", 30
			e := startEmbedded(t, 6, topic, "message-log")
			client := newTestClient(t, e, v)

			prod, err := sarama.NewSyncProducerFromClient(client)
			if err != nil {
				t.Fatalf("NewSyncProducerFromClient: %v", err)
			}
			defer func() { _ = prod.Close() }()
			want := map[int32][]string{} // partition -> values in order
			for i := range n {
				key := fmt.Sprintf("D%d", i%7)
				val := fmt.Sprintf("%s#%d", key, i)
				p, _, err := prod.SendMessage(&sarama.ProducerMessage{
					Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(val),
				})
				if err != nil {
					t.Fatalf("SendMessage %d: %v", i, err)
				}
				want[p] = append(want[p], val)
			}
			if len(want) < 2 {
				t.Errorf("7 keys landed on %d partition(s) of 6", len(want))
			}
			// D1 goes to partition 2 of 6, as the Java client puts it.
			if !slices.Contains(want[2], "D1#1") {
				t.Errorf("D1 is not on partition 2: %v", want)
			}

			cons, err := sarama.NewConsumerFromClient(client)
			if err != nil {
				t.Fatalf("NewConsumerFromClient: %v", err)
			}
			defer func() { _ = cons.Close() }()
			for p, vals := range want {
				pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatalf("ConsumePartition %d: %v", p, err)
				}
				var got []string
				timeout := time.After(10 * time.Second)
				for len(got) < len(vals) {
					select {
					case m := <-pc.Messages():
						got = append(got, string(m.Value))
					case err := <-pc.Errors():
						t.Fatalf("consume partition %d: %v", p, err)
					case <-timeout:
						t.Fatalf("partition %d: read %v, want %v", p, got, vals)
					}
				}
				_ = pc.Close()
				if !slices.Equal(got, vals) {
					t.Errorf("partition %d: read %v, want %v", p, got, vals)
				}
			}
		})
	}
}

// TestEmbeddedKcat checks the embedded broker with a librdkafka client from
// another process: kcat reads what sarama wrote, and kcat's murmur2_random
// partitioner puts keys where ours does.
func TestEmbeddedKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if kcat, err = exec.LookPath("kafkacat"); err != nil {
			t.Skip("kcat is not installed")
		}
	}
	runKcat := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}

	t.Run("consume", func(t *testing.T) {
		const topic = "message-log"
		e := startEmbedded(t, 3, topic)
		prod, err := sarama.NewSyncProducerFromClient(newTestClient(t, e, sarama.V3_9_0_0))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = prod.Close() }()
		want := []string{"D1=a", "D1=b", "D1=c"}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatal(err)
			}
		}
		out := runKcat(t, "", "-C", "-b", e.Addr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
		if got := strings.Fields(out); !slices.Equal(got, want) {
			t.Errorf("kcat read %q, want %q", got, want)
		}
	})

	t.Run("murmur2_random", func(t *testing.T) {
		const topic = "message-gps"
		e := startEmbedded(t, 12, topic)
		var in strings.Builder
		want := map[string]int32{}
		for _, c := range javaMurmur2 {
			if c.key == "" {
				continue // kcat cannot tell an empty key from none
			}
			fmt.Fprintf(&in, "%s\tv\n", c.key)
			want[c.key] = c.p12
		}
		runKcat(t, in.String(), "-P", "-b", e.Addr(), "-t", topic, "-K", "\t", "-X", "partitioner=murmur2_random")
		out := runKcat(t, "", "-C", "-b", e.Addr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%p\n")
		got := map[string]int32{}
		for line := range strings.Lines(out) {
			k, p, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
			var n int32
			if _, err := fmt.Sscan(p, &n); err != nil {
				t.Fatalf("kcat line %q: %v", line, err)
			}
			got[k] = n
		}
		if !maps.Equal(got, want) {
			t.Errorf("kcat's murmur2_random partitions %v, ours and Java's %v", got, want)
		}
	})
}

func TestEmbeddedAddr(t *testing.T) {
	tests := []struct {
		name, listen, wantHost string
	}{
		{"loopback", "127.0.0.1:0", "127.0.0.1"},
		{"wildcard", ":0", "127.0.0.1"},
		{"localhost", "localhost:0", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := StartEmbedded(EmbeddedConfig{Listen: tt.listen, Topics: []string{"t"}, Partitions: 1}, zaptest.NewLogger(t))
			if err != nil {
				if tt.name == "localhost" {
					t.Skipf("localhost does not resolve to IPv4 here: %v", err)
				}
				t.Fatalf("StartEmbedded: %v", err)
			}
			t.Cleanup(e.Close)
			host, port, err := net.SplitHostPort(e.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if host != tt.wantHost || port == "0" {
				t.Fatalf("Addr() = %q, want %s:<bound port>", e.Addr(), tt.wantHost)
			}
			// Clients follow the address metadata advertises: it must be
			// the one they connected to.
			client := newTestClient(t, e, sarama.V3_9_0_0)
			brokers := client.Brokers()
			if len(brokers) != 1 || brokers[0].Addr() != e.Addr() {
				var addrs []string
				for _, b := range brokers {
					addrs = append(addrs, b.Addr())
				}
				t.Fatalf("metadata advertises %v, want [%s]", addrs, e.Addr())
			}
		})
	}
}

func TestEmbeddedTopicsAndPartitions(t *testing.T) {
	e := startEmbedded(t, 4, "a", "b")
	client := newTestClient(t, e, sarama.V3_9_0_0)
	for _, topic := range []string{"a", "b"} {
		ps, err := client.Partitions(topic)
		if err != nil {
			t.Fatalf("Partitions(%s): %v", topic, err)
		}
		if len(ps) != 4 {
			t.Errorf("topic %s has %d partitions, want 4", topic, len(ps))
		}
	}
	// Producing to a topic nobody created must not create it.
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close() }()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "nope", Value: sarama.StringEncoder("x")}); err == nil {
		t.Error("produce to an unknown topic succeeded")
	}
	if err := client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	topics, _ := client.Topics()
	if slices.Contains(topics, "nope") {
		t.Errorf("producing created topic nope: %v", topics)
	}
}

func TestEmbeddedErrors(t *testing.T) {
	t.Run("no partitions", func(t *testing.T) {
		if _, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0"}, zaptest.NewLogger(t)); err == nil {
			t.Fatal("StartEmbedded with 0 partitions succeeded")
		}
	})
	t.Run("port in use", func(t *testing.T) {
		e := startEmbedded(t, 1)
		_, err := StartEmbedded(EmbeddedConfig{Listen: e.Addr(), Partitions: 1}, zaptest.NewLogger(t))
		if err == nil || !strings.Contains(err.Error(), e.Addr()) {
			t.Fatalf("second broker on %s: err = %v, want one naming the address", e.Addr(), err)
		}
	})
}

func TestEmbeddedCloseTwice(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := e.Addr()
	e.Close()
	e.Close()
	// The port is free again once it is closed.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s after Close: %v", addr, err)
	}
	_ = ln.Close()
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// startRetaining starts an embedded broker with one partition of topic
// bounded to retention bytes, a client and a sync producer, all closed at
// the test's end. Its logs are dropped: the heap is measured.
func startRetaining(t *testing.T, topic string, retention int64) (*Embedded, sarama.Client, sarama.SyncProducer) {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{topic}, Partitions: 1, RetentionBytes: retention}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	client := newTestClient(t, e, sarama.V3_9_0_0)
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	return e, client, prod
}

// TestEmbeddedRetention produces 32 times the retention bound into one
// partition: the oldest records go (the log start offset moves up, and a
// consumer asking for them is told they are out of range), the newest stay
// readable, and the heap in use after a collection comes back to about the
// bound instead of growing with what was produced.
func TestEmbeddedRetention(t *testing.T) {
	const (
		topic      = "message-gps"
		bound      = 1 << 20
		valueBytes = 8 << 10
		n          = 32 * bound / valueBytes
		perSend    = 64
		// slack covers kfake's segments beyond the bound (the oldest,
		// part dropped, and the active one with spare capacity: an
		// eighth of the bound each), what arrives between two retention
		// passes, and the clients' buffers. No consumer reads sealed
		// segments here, which would keep more (embeddedSegmentsPerRetention).
		// Without retention the heap grows by 32 MiB.
		slack = 3 * bound
	)
	_, client, prod := startRetaining(t, topic, bound)

	// Random values: lz4 cannot shrink them, so the broker stores about
	// valueBytes a record.
	rnd := rand.NewChaCha8([32]byte{1})
	value := func(i int) []byte {
		v := make([]byte, valueBytes)
		_, _ = rnd.Read(v)
		copy(v, fmt.Sprintf("%08d", i))
		return v
	}
	send := func(from, to int) {
		t.Helper()
		var msgs []*sarama.ProducerMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.ByteEncoder(value(i))})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("produce records %d..%d: %v", from, to-1, err)
		}
	}
	send(0, perSend) // the connection and the producer's buffers exist before the baseline
	base := liveHeap()
	for i := perSend; i < n; i += perSend {
		send(i, min(i+perSend, n))
	}

	// The retention loop runs every second; wait for a pass after the
	// last record (under load the first check may come before it).
	var grown, oldest, newest int64
	deadline := time.Now().Add(4 * embeddedRetentionEvery)
	for {
		grown = int64(liveHeap()) - int64(base)
		var err error
		if oldest, err = client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil {
			t.Fatal(err)
		}
		if newest, err = client.GetOffset(topic, 0, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
		if grown < bound+slack && (newest-oldest)*valueBytes <= bound+perSend*valueBytes || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("produced %d MiB; heap in use after GC %.1f MiB before, grew by %.1f MiB (bound %d MiB per partition)", n*valueBytes>>20, float64(base)/(1<<20), float64(grown)/(1<<20), bound>>20)
	if grown >= bound+slack {
		t.Errorf("heap in use grew by %d bytes after producing %d, want under %d: the broker keeps records beyond its bound", grown, n*valueBytes, bound+slack)
	}
	kept := newest - oldest
	t.Logf("log start offset %d, end %d: %d records (%d KiB) kept", oldest, newest, kept, kept*valueBytes>>10)
	if newest != n {
		t.Fatalf("end offset %d, want %d", newest, n)
	}
	// About the bound is kept: not everything, not nothing.
	if kept*valueBytes > bound+perSend*valueBytes || kept*valueBytes < bound/2 {
		t.Errorf("%d records of %d bytes kept, want about %d bytes", kept, valueBytes, bound)
	}

	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cons.Close() }()
	if pc, err := cons.ConsumePartition(topic, 0, 0); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		if err == nil {
			_ = pc.Close()
		}
		t.Errorf("consume from offset 0 after retention: err = %v, want %v", err, sarama.ErrOffsetOutOfRange)
	}
	const last = 5
	pc, err := cons.ConsumePartition(topic, 0, n-last)
	if err != nil {
		t.Fatalf("consume the newest records: %v", err)
	}
	defer func() { _ = pc.Close() }()
	for i := n - last; i < n; i++ {
		select {
		case m := <-pc.Messages():
			if want := fmt.Sprintf("%08d", i); m.Offset != int64(i) || string(m.Value[:8]) != want {
				t.Fatalf("read offset %d value %q, want offset %d value %s", m.Offset, m.Value[:8], i, want)
			}
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d not read in 10s", i)
		}
	}
}

// TestEmbeddedRetentionOff: a negative RetentionBytes keeps every record,
// more than the default bound, even through a retention pass.
func TestEmbeddedRetentionOff(t *testing.T) {
	const topic = "t"
	e, client, prod := startRetaining(t, topic, -1)
	// Random, so that lz4 cannot shrink it below the default bound.
	v := make([]byte, 64<<10)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(v)
	for range DefaultEmbeddedRetentionBytes/len(v) + 16 {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	e.Cluster().ApplyRetention()
	if oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || oldest != 0 {
		t.Errorf("log start offset %d (err %v), want 0: records were dropped", oldest, err)
	}
}

// TestEmbeddedRetentionConfig: the broker describes the bound it keeps to,
// the 8 MiB default when none is given, and none when every record is kept.
func TestEmbeddedRetentionConfig(t *testing.T) {
	cases := []struct {
		name      string
		retention int64
		want      string
	}{
		{"default", 0, "8388608"},
		{"set", 2 << 20, "2097152"},
		{"keep everything", -1, "-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 1, RetentionBytes: c.retention}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			if got := kfaketest.BrokerConfig(t, e.Addr(), "log.retention.bytes"); got != c.want {
				t.Errorf("log.retention.bytes = %q, want %q", got, c.want)
			}
		})
	}
}
