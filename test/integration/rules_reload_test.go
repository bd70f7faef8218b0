package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/gateway"
	"github.com/fleetgate/fleetgate/kafka"
)

const reloadRulesV1 = `rules:
  - name: device-reports
    sql: SELECT * FROM 'report'
    actions:
      - kafka: {topic: "message-${type}", key: "${device_no}"}
    error_action:
      kafka: {topic: message-dlq, key: "${clientid()}"}
`

// v2 adds a rule writing to a topic the cluster does not have yet: the
// reload creates it (the embedded broker always may).
const reloadRulesV2 = reloadRulesV1 + `  - name: copy
    sql: SELECT device_no, seq FROM 'report'
    actions:
      - kafka: {topic: reloaded-copy, key: "${device_no}"}
`

// writeAtomically saves as editors and config tools do: a temporary file
// renamed over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRulesReloadUnderLoad changes the rules file while devices publish at
// QoS 1: the new rule takes effect within 2 s, from one message on for
// each device (a message runs under one table, never a mix), and nothing is
// lost; then an invalid file is rejected while traffic keeps flowing under
// the rules in force.
func TestRulesReloadUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomically(t, path, reloadRulesV1)
	rules, err := config.LoadRulesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reloads := make(chan bool, 8)
	g := startGatewayWith(t, func(c *config.Config) {
		c.RulesFile, c.Rules = path, rules
		c.Kafka.DeliveryTimeout = 60 * time.Second
	}, func(g *gateway.Gateway) { g.OnRulesReload(func(ok bool) { reloads <- ok }) })

	const devices, inflight = 4, 8
	var stop atomic.Bool
	var acked, failures atomic.Int64
	sent := make([]int, devices)
	var wg sync.WaitGroup
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprintf("RL-%d", d)
			c := connect(t, g.MQTTAddr(), dev)
			window := make(chan paho.Token, inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for tok := range window {
					if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
						failures.Add(1)
					} else {
						acked.Add(1)
					}
				}
			}()
			for s := 1; !stop.Load(); s++ {
				window <- c.Publish("report", 1, false, report("log", dev, s))
				sent[d] = s
				time.Sleep(2 * time.Millisecond)
			}
			close(window)
			<-done
		}()
	}
	waitAcked := func(more int64) {
		t.Helper()
		target := acked.Load() + more
		deadline := time.Now().Add(30 * time.Second)
		for acked.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("traffic stalled at %d acknowledged messages", acked.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReload := func(want bool) time.Duration {
		t.Helper()
		start := time.Now()
		select {
		case ok := <-reloads:
			if ok != want {
				t.Fatalf("reload result %v, want %v", ok, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reload")
		}
		return time.Since(start)
	}

	waitAcked(200)
	writeAtomically(t, path, reloadRulesV2)
	took := waitReload(true)
	t.Logf("valid change applied %v after the write (includes creating topic reloaded-copy)", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("valid change applied after %v, want within 2s", took)
	}
	waitAcked(200)

	before := acked.Load()
	writeAtomically(t, path, reloadRulesV2+"  - name: broken\n    sql: SELECT * FORM 'report'\n    actions: [{kafka: {topic: x}}]\n")
	waitReload(false)
	waitAcked(200)
	t.Logf("invalid change rejected; %d messages acknowledged meanwhile", acked.Load()-before)

	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d publishes got no PUBACK", n)
	}
	total := 0
	for _, s := range sent {
		total += s
	}
	// Nothing lost, nothing out of order, under either table.
	logs := consume(t, g.KafkaBrokers(), "message-log", total)
	next := map[string]float64{}
	for _, r := range logs {
		m := r.json(t)
		dev, seq := m["device_no"].(string), m["seq"].(float64)
		if seq != next[dev]+1 {
			t.Fatalf("message-log: %s seq %v after %v", dev, seq, next[dev])
		}
		next[dev] = seq
	}
	if len(logs) != total {
		t.Fatalf("message-log holds %d records, want %d", len(logs), total)
	}
	// The new rule copies a contiguous run up to the last message of each
	// device: once a message ran under the new table, every later one did.
	copies := consume(t, g.KafkaBrokers(), "reloaded-copy", devices)
	first, last := map[string]float64{}, map[string]float64{}
	for _, r := range copies {
		m := r.json(t)
		dev, seq := m["device_no"].(string), m["seq"].(float64)
		if _, ok := first[dev]; !ok {
			first[dev] = seq
		} else if seq != last[dev]+1 {
			t.Fatalf("reloaded-copy: %s seq %v after %v", dev, seq, last[dev])
		}
		last[dev] = seq
	}
	for d, s := range sent {
		dev := fmt.Sprintf("RL-%d", d)
		if last[dev] != float64(s) {
			t.Errorf("reloaded-copy: %s ends at seq %v, want %d", dev, last[dev], s)
		}
	}
	t.Logf("%d messages, %d copies by the reloaded rule", total, len(copies))
}

// TestRulesReloadNewLiteralTopics runs the gateway against a Kafka cluster
// it does not own (an embedded broker started by the test, so the gateway
// treats it as a real cluster): a reload that names a topic the cluster
// lacks is rejected with kafka.topics.create false, and creates the topic
// with kafka.topics.create true.
func TestRulesReloadNewLiteralTopics(t *testing.T) {
	for _, create := range []bool{false, true} {
		t.Run(fmt.Sprintf("create=%v", create), func(t *testing.T) {
			cluster, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 3,
				Topics: []string{"message-log", "message-boot", "message-gps", "message-kinematic", "message-adas", "message-dlq"}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			path := filepath.Join(t.TempDir(), "rules.yaml")
			writeAtomically(t, path, reloadRulesV1)
			rules, err := config.LoadRulesFile(path)
			if err != nil {
				t.Fatal(err)
			}
			reloads := make(chan bool, 4)
			g := startGatewayWith(t, func(c *config.Config) {
				c.RulesFile, c.Rules = path, rules
				c.Kafka.Brokers = []string{cluster.Addr()}
				c.Kafka.Topics.Create = create
				c.Kafka.Topics.Partitions = 3
			}, func(g *gateway.Gateway) { g.OnRulesReload(func(ok bool) { reloads <- ok }) })

			writeAtomically(t, path, reloadRulesV2) // names reloaded-copy
			select {
			case ok := <-reloads:
				if ok != create {
					t.Fatalf("reload applied = %v, want %v", ok, create)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no reload")
			}
			c := connect(t, g.MQTTAddr(), "D1")
			publish(t, c, "report", report("log", "D1", 1))
			if create {
				if recs := consume(t, g.KafkaBrokers(), "reloaded-copy", 1); string(recs[0].Value) != `{"device_no":"D1","seq":1}` {
					t.Fatalf("reloaded-copy: %s", recs[0].Value)
				}
				return
			}
			// Rejected: the previous rules run, and SIGHUP's path says why.
			err = g.ReloadRules(context.Background())
			if err == nil || !strings.Contains(err.Error(), "kafka topics missing from the cluster: reloaded-copy; create them or set kafka.topics.create: true") {
				t.Fatalf("ReloadRules: %v", err)
			}
			<-reloads
			if recs := consume(t, g.KafkaBrokers(), "message-log", 1); len(recs) != 1 {
				t.Fatalf("message-log holds %d records", len(recs))
			}
		})
	}
}
