package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// javaPartitions6 is where the Apache Kafka Java client's default
// partitioner puts these keys among 6 partitions: toPositive(murmur2(key)) % 6,
// computed with kafka-clients 4.1.2 (the table and how it was made are in
// kafka/partitioner_test.go, javaMurmur2).
var javaPartitions6 = []struct {
	key       string
	partition int32
}{
	{"D1", 2},
	{"STS-00000123", 1},
	{"CSA0000042", 2},
	{"a", 4},
	{"차량1", 4},
	{"21", 0},
	{"foobar", 0},
	{"abc", 3},
}

// tsPattern is what parse_time("yyyy-MM-dd'T'HH:mm:ssz", timestamp()) gives.
var tsPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dUTC$`)

// kcatLine is one line of kcat -f '%k %p %s\n'.
type kcatLine struct {
	key       string
	partition int32
	value     string
}

// kcatConsume reads a topic from the beginning to its end with kcat, as the
// README's tour does, and parses '%k %p %s' lines.
func kcatConsume(t *testing.T, bootstrap, topic string) []kcatLine {
	t.Helper()
	res := mustTool(t, 60*time.Second, "", "kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", `%k %p %s\n`)
	var out []kcatLine
	for _, l := range strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		// The key may hold spaces in general, but none of ours do; the
		// value is compact JSON.
		key, rest, ok1 := strings.Cut(l, " ")
		p, value, ok2 := strings.Cut(rest, " ")
		n, err := strconv.Atoi(p)
		if !ok1 || !ok2 || err != nil {
			t.Fatalf("kcat printed %q, not '%%k %%p %%s'", l)
		}
		out = append(out, kcatLine{key, int32(n), value})
	}
	return out
}

// TestTour is SPEC section 7's tour against real Kafka with the outside
// clients a new user has: mosquitto_pub publishes at QoS 1 (its exit status
// 0 means the PUBACK came), kcat reads the record back with its key, a
// "timestamp" string added by the rule, on the partition Java's producer
// would pick; kcat producing the same keys with librdkafka's murmur2
// partitioner lands on the same partitions; and what cannot be routed goes to
// the dead-letter topic with the reason in a header.
func TestTour(t *testing.T) {
	needTools(t, "mosquitto_pub", "kcat")
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	host, port, _ := strings.Cut(g.MQTTAddr, ":")
	run := newRunID()

	for _, k := range javaPartitions6 {
		payload := fmt.Sprintf(`{"type":"log","device_no":%q,"ts":1763780000000,"ignition":true,"run":%q}`, k.key, run)
		mustTool(t, 30*time.Second, "", "mosquitto_pub", "-h", host, "-p", port, "-t", "report", "-q", "1", "-m", payload)
	}
	published := time.Now().UTC()

	// The PUBACK came, so the records are in Kafka now: no polling.
	gw := map[string]kcatLine{}
	for _, l := range kcatConsume(t, kc.Bootstrap(), "message-log") {
		var v map[string]any
		if json.Unmarshal([]byte(l.value), &v) != nil || v["run"] != run {
			continue
		}
		if _, dup := gw[l.key]; dup {
			t.Errorf("key %s: two records for one QoS 1 publish", l.key)
		}
		gw[l.key] = l
		t.Run("gateway/"+l.key, func(t *testing.T) {
			if v["device_no"] != l.key {
				t.Errorf("key %q, device_no %v", l.key, v["device_no"])
			}
			if v["type"] != "log" || v["ignition"] != true {
				t.Errorf("fields lost: %s", l.value)
			}
			if !strings.Contains(l.value, `"ts":1763780000000`) {
				t.Errorf("ts not kept as the exact integer: %s", l.value)
			}
			ts, _ := v["timestamp"].(string)
			if !tsPattern.MatchString(ts) {
				t.Fatalf("timestamp %v is not yyyy-MM-dd'T'HH:mm:ssz in UTC: %s", v["timestamp"], l.value)
			}
			at, err := time.Parse("2006-01-02T15:04:05MST", ts)
			if err != nil || at.Sub(published).Abs() > time.Minute {
				t.Errorf("timestamp %s is not the time of arrival (about %s)", ts, published.Format(time.RFC3339))
			}
		})
	}
	for _, k := range javaPartitions6 {
		l, ok := gw[k.key]
		if !ok {
			t.Errorf("no record with key %s in message-log although mosquitto_pub got its PUBACK", k.key)
			continue
		}
		if l.partition != k.partition {
			t.Errorf("key %s on partition %d; Java's default partitioner picks %d", k.key, l.partition, k.partition)
		}
	}

	// librdkafka's murmur2 partitioner is Java's: kcat producing the same
	// keys must land beside the gateway's records.
	for _, k := range javaPartitions6 {
		mustTool(t, 30*time.Second, fmt.Sprintf(`{"from":"kcat","run":%q}`+"\n", run),
			"kcat", "-b", kc.Bootstrap(), "-P", "-t", "message-log", "-k", k.key, "-X", "topic.partitioner=murmur2_random")
	}
	kcatP := map[string]int32{}
	for _, l := range kcatConsume(t, kc.Bootstrap(), "message-log") {
		var v map[string]any
		if json.Unmarshal([]byte(l.value), &v) == nil && v["run"] == run && v["from"] == "kcat" {
			kcatP[l.key] = l.partition
		}
	}
	for _, k := range javaPartitions6 {
		p, ok := kcatP[k.key]
		switch {
		case !ok:
			t.Errorf("kcat's record with key %s not found", k.key)
		case p != gw[k.key].partition:
			t.Errorf("key %s: kcat (murmur2_random) wrote partition %d, the gateway %d", k.key, p, gw[k.key].partition)
		}
	}

	// Not JSON: acknowledged, because it is stored in the dead-letter topic.
	client := "tour-" + run
	mustTool(t, 30*time.Second, "", "mosquitto_pub", "-h", host, "-p", port, "-i", client, "-t", "report", "-q", "1", "-m", "not json")
	res := mustTool(t, 60*time.Second, "", "kcat", "-b", kc.Bootstrap(), "-C", "-t", "message-dlq", "-e", "-q", "-f", `%k|%h|%s\n`)
	found := false
	for _, l := range strings.Split(res.Stdout, "\n") {
		parts := strings.SplitN(l, "|", 3)
		if len(parts) != 3 || parts[0] != client {
			continue
		}
		found = true
		if parts[2] != "not json" {
			t.Errorf("dead-letter record value %q, want the original payload", parts[2])
		}
		for _, h := range []string{"error=", "rule=device-reports", "source=mqtt", "client_id=" + client, "mqtt_topic=report"} {
			if !strings.Contains(parts[1], h) {
				t.Errorf("dead-letter headers %q lack %s", parts[1], h)
			}
		}
	}
	if !found {
		t.Errorf("no record keyed %s in message-dlq:\n%s", client, res.Stdout)
	}
}
