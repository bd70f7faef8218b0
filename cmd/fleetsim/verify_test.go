package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// startKafka starts an in-memory Kafka-protocol broker with the report
// topics, 6 partitions each.
func startKafka(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, strings.Split(defaultTopics, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// produce writes records keyed by device like the gateway does; a record
// with part >= 0 goes to that partition instead of the key's.
type testProduce struct {
	topic, device string
	seq           int64
	part          int32
}

func produce(t *testing.T, broker string, recs []testProduce) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true // SyncProducer needs it
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, r := range recs {
		part := r.part
		if part < 0 {
			part = expectedPartition(r.device, 6)
		}
		v := fmt.Sprintf(`{"type":%q,"device_no":%q,"ts":1763780000000,"seq":%d,"run":"r1"}`,
			strings.TrimPrefix(r.topic, "message-"), r.device, r.seq)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: r.topic, Partition: part,
			Key: sarama.StringEncoder(r.device), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyAgainstKafka(t *testing.T) {
	acked := `{"fleetsim":"acked/v1","run":"r1","qos":1}
{"device":"SIM-000001","source":"mqtt","type":"gps","topic":"message-gps","seq":[[1,2],[4,4]]}
{"device":"SIM-000001","source":"mqtt","type":"log","topic":"message-log","seq":[[3,3]]}
{"device":"SIM-000002","source":"mqtt","type":"gps","topic":"message-gps","seq":[[1,3]]}
`
	good := []testProduce{
		{"message-gps", "SIM-000001", 1, -1}, {"message-gps", "SIM-000002", 1, -1},
		{"message-gps", "SIM-000001", 2, -1}, {"message-log", "SIM-000001", 3, -1},
		{"message-gps", "SIM-000002", 2, -1}, {"message-gps", "SIM-000001", 4, -1},
		{"message-gps", "SIM-000002", 3, -1},
	}
	// A partition SIM-000002 does not hash to.
	wrong := (expectedPartition("SIM-000002", 6) + 1) % 6
	tests := []struct {
		name     string
		recs     []testProduce
		args     []string
		wantCode int
		want     []string
	}{
		{name: "clean", recs: good, args: []string{"--partitions-check"}, wantCode: 0,
			want: []string{"OK: no loss", "message-gps"}},
		{name: "loss", recs: good[:6], wantCode: 1,
			want: []string{"loss: 1 seqs missing", "SIM-000002 message-gps seq 3", "FAILED: 1 violations"}},
		{name: "wrong partition", args: []string{"--partitions-check"}, wantCode: 1,
			recs: append(good[:6:6], testProduce{"message-gps", "SIM-000002", 3, wrong}),
			want: []string{"wrong-partition: 1 records", fmt.Sprintf("SIM-000002 message-gps partition %d offset 0 seq 3", wrong)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := startKafka(t)
			produce(t, broker, tt.recs)
			path := filepath.Join(t.TempDir(), "acked.jsonl")
			if err := os.WriteFile(path, []byte(acked), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			start := time.Now()
			code := verifyCommand(context.Background(), append([]string{"--brokers", broker, "--acked", path, "--timeout", "2s"}, tt.args...), &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.wantCode, out.String(), errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantCode == 0 && time.Since(start) > 1500*time.Millisecond {
				t.Errorf("a complete verification took %v: it should not wait for --timeout", time.Since(start))
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := verifyCommand(context.Background(), []string{"--brokers", "127.0.0.1:9092"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--acked is required") {
		t.Errorf("no --acked: exit %d, %s", code, errOut.String())
	}
	broker := startKafka(t)
	path := filepath.Join(t.TempDir(), "acked.jsonl")
	if err := os.WriteFile(path, []byte(`{"device":"D","topic":"message-gps","seq":[[1,1]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := verifyCommand(context.Background(), []string{"--brokers", broker, "--acked", path, "--topics", "no-such-topic"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "no-such-topic") {
		t.Errorf("unknown topic: exit %d, %s", code, errOut.String())
	}
}
