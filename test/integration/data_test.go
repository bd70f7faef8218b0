package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/lookup"
)

const dataRules = `rules:
  - name: fleet-logs
    sql: >-
      SELECT *, lookup('vehicles', device_no) AS vehicle,
        lookup('registry', device_no) AS registration
      FROM 'fleet/+/log'
    actions:
      - kafka: {topic: "message-${type}", key: "${device_no}", schema: "${type}"}
    error_action:
      kafka: {topic: message-dlq, key: "${device_no}"}
`

const dataLogSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["type", "device_no", "ts", "level", "msg"],
  "properties": {
    "device_no": {"type": "string", "pattern": "^[0-9]{15}$"},
    "ts": {"type": "integer"},
    "level": {"enum": ["debug", "info", "warn", "error"]},
    "vehicle": {"type": "object", "required": ["vin"]}
  }
}`

const (
	devA = "861234567890123"
	devB = "861234567890124"
)

func logReport(device, level string) []byte {
	return []byte(`{"type":"log","device_no":"` + device + `","ts":1764576000000,"level":"` + level + `","msg":"coolant temperature high"}`)
}

// TestEnrichedAndValidated goes through the real broker and the embedded
// Kafka: a valid report is stored enriched with its vehicle, an invalid one
// lands in the DLQ with schema_invalid and the JSON pointer and keyword, a
// change of the lookup file is picked up without a restart, and a record of
// the compacted registry topic is followed live.
func TestEnrichedAndValidated(t *testing.T) {
	dir := t.TempDir()
	vehicles := filepath.Join(dir, "vehicles.jsonl")
	writeAtomically(t, vehicles, `{"device_no":"`+devA+`","vin":"WDB9634031L123456","plate":"B-FG 1234"}`+"\n")
	if err := os.Mkdir(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, filepath.Join(dir, "schemas", "log.json"), dataLogSchema)
	rulesPath := filepath.Join(dir, "rules.yaml")
	writeAtomically(t, rulesPath, dataRules)
	rules, err := config.LoadRulesFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, func(c *config.Config) {
		c.RulesFile, c.Rules = rulesPath, rules
		c.Lookups = lookup.Config{
			"vehicles": {File: vehicles, Key: "device_no"},
			"registry": {KafkaTopic: "vehicle-registry"},
		}
		c.Schemas.Dir = filepath.Join(dir, "schemas")
	})
	c := connect(t, g.MQTTAddr(), "fleet-terminal")

	// 1. Valid and enriched; 2. invalid: the DLQ says where and why.
	publish(t, c, "fleet/"+devA+"/log", logReport(devA, "warn"))
	publish(t, c, "fleet/"+devA+"/log", logReport(devA, "loud"))
	logs := consume(t, g.KafkaBrokers(), "message-log", 1)
	if len(logs) != 1 {
		t.Fatalf("message-log has %d records, want 1", len(logs))
	}
	v := logs[0].json(t)
	if veh, _ := v["vehicle"].(map[string]any); veh["vin"] != "WDB9634031L123456" || veh["plate"] != "B-FG 1234" || logs[0].Key != devA {
		t.Errorf("stored record not enriched with its vehicle: key %s, %s", logs[0].Key, logs[0].Value)
	}
	if _, ok := v["registration"]; ok {
		t.Errorf("a key the registry topic lacks gave a value: %s", logs[0].Value)
	}
	dlq := consume(t, g.KafkaBrokers(), "message-dlq", 1)
	if len(dlq) != 1 {
		t.Fatalf("message-dlq has %d records, want 1", len(dlq))
	}
	h := dlq[0].Headers
	if !strings.HasPrefix(h["error"], "schema_invalid: ") || h["schema_pointer"] != "/level" || h["schema_keyword"] != "enum" ||
		string(dlq[0].Value) != string(logReport(devA, "loud")) {
		t.Errorf("DLQ record: headers %v, value %s", h, dlq[0].Value)
	}

	// 3. The lookup file changes: the next reports see the new rows, with
	// no restart.
	writeAtomically(t, vehicles, `{"device_no":"`+devA+`","vin":"WDB9634031L123456","plate":"B-FG 9999"}`+"\n"+
		`{"device_no":"`+devB+`","vin":"WDB9634031L654321","plate":"B-FG 4321"}`+"\n")
	stored := 1
	pollStored(t, "the reloaded lookup file", func() bool {
		publish(t, c, "fleet/"+devB+"/log", logReport(devB, "info"))
		stored++
		// Records of several partitions come in no global order: look at all.
		return anyRecord(t, consume(t, g.KafkaBrokers(), "message-log", stored), func(v map[string]any) bool {
			veh, _ := v["vehicle"].(map[string]any)
			return v["device_no"] == devB && veh["plate"] == "B-FG 4321"
		})
	})

	// 4. A record of the compacted registry topic is followed live.
	prod := syncProducer(t, g.KafkaBrokers())
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "vehicle-registry", Key: sarama.StringEncoder(devA),
		Value: sarama.StringEncoder(`{"registered": "2021-03-01", "owner": "North Logistics"}`)}); err != nil {
		t.Fatal(err)
	}
	pollStored(t, "the registry record", func() bool {
		publish(t, c, "fleet/"+devA+"/log", logReport(devA, "info"))
		stored++
		return anyRecord(t, consume(t, g.KafkaBrokers(), "message-log", stored), func(v map[string]any) bool {
			reg, _ := v["registration"].(map[string]any)
			veh, _ := v["vehicle"].(map[string]any)
			return reg["owner"] == "North Logistics" && veh["plate"] == "B-FG 9999"
		})
	})

	// 5. Schemas are reloaded with the rules: a schema that now allows
	// "loud" takes effect at the next rules reload.
	writeAtomically(t, filepath.Join(dir, "schemas", "log.json"), strings.Replace(dataLogSchema, `"error"]`, `"error", "loud"]`, 1))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.ReloadRules(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "fleet/"+devA+"/log", logReport(devA, "loud"))
	stored++
	if !anyRecord(t, consume(t, g.KafkaBrokers(), "message-log", stored), func(v map[string]any) bool { return v["level"] == "loud" }) {
		t.Error(`after the reload, the "loud" report was not stored`)
	}

	// 6. A schema that does not compile rejects the reload; the rules in
	// force keep their schemas.
	writeAtomically(t, filepath.Join(dir, "schemas", "log.json"), `{"type": "severity"}`)
	if err := g.ReloadRules(ctx); err == nil || !strings.Contains(err.Error(), "log.json does not compile") {
		t.Fatalf("reload with a broken schema: %v", err)
	}
	publish(t, c, "fleet/"+devA+"/log", logReport(devA, "silent"))
	dlq = consume(t, g.KafkaBrokers(), "message-dlq", 2)
	if len(dlq) != 2 || !strings.Contains(string(dlq[0].Value)+string(dlq[1].Value), `"silent"`) ||
		dlq[0].Headers["schema_keyword"] != "enum" || dlq[1].Headers["schema_keyword"] != "enum" {
		t.Errorf("after a rejected reload: %d DLQ records, headers %v %v", len(dlq), dlq[0].Headers, dlq[1].Headers)
	}
}

func anyRecord(t *testing.T, recs []record, match func(map[string]any) bool) bool {
	t.Helper()
	for _, r := range recs {
		if match(r.json(t)) {
			return true
		}
	}
	return false
}

// pollStored retries cond (which publishes and reads back) until it holds.
func pollStored(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not picked up within 20s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func syncProducer(t *testing.T, brokers []string) sarama.SyncProducer {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestStartWaitsForKafkaLookups: a gateway whose lookup table is a topic
// with history opens its inputs only once it has read all of it, so the
// very first report is enriched from the newest record.
func TestStartWaitsForKafkaLookups(t *testing.T) {
	ext, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Listen: "127.0.0.1:0", Partitions: 3,
		Topics: []string{"message-log", "message-boot", "message-gps", "message-kinematic", "message-adas", "message-dlq", "vehicle-registry"}},
		zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	prod := syncProducer(t, []string{ext.Addr()})
	var history []*sarama.ProducerMessage
	for i := range 20000 {
		history = append(history, &sarama.ProducerMessage{Topic: "vehicle-registry", Key: sarama.StringEncoder(devA),
			Value: sarama.StringEncoder(`{"revision":` + strconv.Itoa(i) + `}`)})
	}
	if err := prod.SendMessages(history); err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	writeAtomically(t, rulesPath, `rules:
  - name: enrich
    sql: SELECT device_no, lookup('registry', device_no).revision AS revision FROM 'fleet/+/log'
    actions:
      - kafka: {topic: message-log, key: "${device_no}"}
`)
	rules, err := config.LoadRulesFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, func(c *config.Config) {
		c.Kafka.Brokers = []string{ext.Addr()}
		c.RulesFile, c.Rules = rulesPath, rules
		c.Lookups = lookup.Config{"registry": {KafkaTopic: "vehicle-registry"}}
	})
	publish(t, connect(t, g.MQTTAddr(), "first"), "fleet/"+devA+"/log", logReport(devA, "info"))
	recs := consume(t, g.KafkaBrokers(), "message-log", 1)
	if got := string(recs[0].Value); got != `{"device_no":"`+devA+`","revision":19999}` {
		t.Errorf("the first report after start: %s, want the newest revision", got)
	}
}
