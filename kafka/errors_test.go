package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/test/kfaketest"
)

// failFirstProduces makes the embedded broker answer the first n produce
// requests with code for every partition, then serve normally. It returns
// how many it refused.
func failFirstProduces(e *Embedded, code int16, n int32) *atomic.Int32 {
	var refused atomic.Int32
	kfaketest.FailProduces(e.Cluster(), code, func() bool {
		if refused.Load() >= n {
			return false
		}
		refused.Add(1)
		return true
	})
	return &refused
}

// TestProduceErrorCodes answers each Kafka error code of the table for the
// first produce requests of a record, more of them than sarama retries
// (kafka.delivery_timeout 1s: 5 retries). A retriable code must end with the
// record stored, in its topic; a permanent one with a *RecordError of the
// table's reason, at once. UNKNOWN_TOPIC_OR_PARTITION for a topic the
// metadata lists is retriable: the record is stored, never sent to the
// error topic.
func TestProduceErrorCodes(t *testing.T) {
	const refusals = 8 // sarama gives up after 6 attempts with Retry.Max 5
	for _, rule := range produceErrors {
		t.Run(fmt.Sprintf("%d %s", rule.code, rule.code.Error()), func(t *testing.T) {
			t.Parallel()
			emb, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Topics: []string{"message-log"}, Partitions: 3}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(emb.Close)
			cfg := DefaultConfig()
			cfg.Brokers = []string{emb.Addr()}
			cfg.DeliveryTimeout = time.Second
			p, err := NewProducer(cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			// Warm up: producer id, metadata.
			if err := produceWait(p, &router.Record{Topic: "message-log", Key: []byte("D0"), Value: []byte(`{}`), Partition: -1}, 10*time.Second); err != nil {
				t.Fatalf("warm-up: %v", err)
			}

			refused := failFirstProduces(emb, int16(rule.code), refusals)
			began := time.Now()
			err = produceWait(p, &router.Record{Topic: "message-log", Key: []byte("D1"), Value: []byte(`{"seq":1}`), Partition: -1}, 30*time.Second)
			var re *RecordError
			switch rule.class {
			case permanent:
				if !errors.As(err, &re) || re.Reason != rule.reason {
					t.Fatalf("got %v, want a permanent %s error", err, rule.reason)
				}
				if n := refused.Load(); n != 1 {
					t.Errorf("the broker was asked %d times; a permanent error must not be retried", n)
				}
			default:
				if err != nil {
					t.Fatalf("got %v after %s, want the record stored once the broker stops refusing", err, time.Since(began).Round(time.Millisecond))
				}
				if n := refused.Load(); n != refusals {
					t.Errorf("the broker refused %d produce requests, want %d", n, refusals)
				}
			}
			t.Logf("%s after %s, %d refusals", errString(err), time.Since(began).Round(time.Millisecond), refused.Load())
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "stored"
	}
	return err.Error()
}

// produceWait produces rec and waits for its result.
func produceWait(p *Producer, rec *router.Record, wait time.Duration) error {
	res := make(chan error, 1)
	if err := p.Produce(context.Background(), rec, func(err error) { res <- err }); err != nil {
		return fmt.Errorf("Produce: %w", err)
	}
	select {
	case err := <-res:
		return err
	case <-time.After(wait):
		return fmt.Errorf("no result within %s", wait)
	}
}

func TestClassify(t *testing.T) {
	absent := func(bool) func(string) bool { return nil }
	tests := []struct {
		name   string
		err    error
		absent func(string) bool
		reason string // "" for retriable
	}{
		{"unknown topic, listed", sarama.ErrUnknownTopicOrPartition, func(string) bool { return false }, ""},
		{"unknown topic, confirmed absent", sarama.ErrUnknownTopicOrPartition, func(string) bool { return true }, "unknown_topic"},
		{"not leader", sarama.ErrNotLeaderForPartition, absent(false), ""},
		{"breaker open", errors.New("circuit breaker is open"), absent(false), ""},
		{"out of brokers", sarama.ErrOutOfBrokers, absent(false), ""},
		{"too large", sarama.ErrMessageSizeTooLarge, absent(false), "record_too_large"},
		{"sarama's own size check", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes"), absent(false), "invalid_record"},
		{"wrapped", fmt.Errorf("x: %w", sarama.ErrTopicAuthorizationFailed), absent(false), "not_authorized"},
		{"a code not in the table", sarama.ErrRebalanceInProgress, absent(false), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify("message-log", tt.err, tt.absent)
			var re *RecordError
			switch {
			case tt.reason == "" && errors.As(err, &re):
				t.Fatalf("classify = permanent %v, want retriable", err)
			case tt.reason != "" && (!errors.As(err, &re) || re.Reason != tt.reason):
				t.Fatalf("classify = %v, want permanent %s", err, tt.reason)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("classify lost the cause: %v", err)
			}
		})
	}
}

// TestErrorTableDocumented keeps docs/reliability.md's error table in step
// with produceErrors: a row per code, starting "| <code> |", saying
// "retriable" or "permanent" and the reason.
func TestErrorTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(string(doc), "\n") {
		if f := strings.Split(l, "|"); len(f) > 3 && strings.HasPrefix(l, "| ") {
			rows[strings.TrimSpace(f[1])] = l
		}
	}
	for _, r := range produceErrors {
		row, ok := rows[fmt.Sprint(int16(r.code))]
		if !ok {
			t.Errorf("docs/reliability.md has no error table row for code %d (%v)", r.code, r.code)
			continue
		}
		var want []string
		switch r.class {
		case retriable:
			want = []string{"retriable"}
		case permanent:
			want = []string{"permanent", "`" + r.reason + "`"}
		case absentTopic:
			want = []string{"retriable", "`" + r.reason + "`"}
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("docs/reliability.md row for code %d does not say %s: %s", r.code, w, row)
			}
		}
	}
}
