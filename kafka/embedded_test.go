package kafka

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"
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
