package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// envConnectHome names the Kafka Connect installation made by
// `test/kafka/fetch connect` (./test/run exports it).
const envConnectHome = "FLEETGATE_CONNECT_HOME"

// connectHome returns the fetched Kafka Connect, or fails the test saying
// how to fetch it.
func connectHome(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envConnectHome)
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "fleetgate", "kafka-connect-"+kafkatest.DefaultKafkaVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", ".complete")); err != nil {
		t.Fatalf("no Kafka Connect in %s: run test/kafka/fetch connect (./test/run does) or set %s", dir, envConnectHome)
	}
	return dir
}

// connectWorker is Apache Kafka Connect in standalone mode (Kafka's own
// ConnectStandalone, connect-runtime and connect-file from Maven Central)
// running as a child process beside a kafkatest cluster.
type connectWorker struct {
	rest string // http://127.0.0.1:port
	log  string
}

// startConnect runs a standalone worker with the given connectors (name ->
// properties) against kc; it is stopped by t.Cleanup.
func startConnect(t *testing.T, kc *kafkatest.Cluster, connectors map[string]map[string]string) *connectWorker {
	t.Helper()
	home := connectHome(t)
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	w := &connectWorker{rest: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "connect.log")}
	write := func(name string, props map[string]string) string {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(props)) {
			fmt.Fprintf(&b, "%s=%s\n", k, props[k])
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dlog4j2.configurationFile=" + write("log4j2.properties", map[string]string{
			"status": "warn", "appender.out.type": "Console", "appender.out.name": "OUT",
			"appender.out.layout.type": "PatternLayout", "appender.out.layout.pattern": "[%d{ISO8601}] %p %m (%c)%n",
			"rootLogger.level": "WARN", "rootLogger.appenderRef.out.ref": "OUT",
			// The task's start and its failures, not the per-poll chatter.
			"logger.task.name": "org.apache.kafka.connect.runtime.WorkerSinkTask", "logger.task.level": "INFO",
		}),
		"-cp", filepath.Join(home, "lib", "*"), "org.apache.kafka.connect.cli.ConnectStandalone",
		write("worker.properties", map[string]string{
			"bootstrap.servers": kc.Bootstrap(),
			"listeners":         w.rest,
			// Keys are device numbers, not JSON: strings. Connectors choose
			// their value converter.
			"key.converter":                     "org.apache.kafka.connect.storage.StringConverter",
			"value.converter":                   "org.apache.kafka.connect.storage.StringConverter",
			"offset.storage.file.filename":      filepath.Join(dir, "offsets"),
			"offset.flush.interval.ms":          "1000",
			"consumer.auto.offset.reset":        "earliest",
			"consumer.metadata.max.age.ms":      "1000",
			"plugin.discovery":                  "only_scan",
			"task.shutdown.graceful.timeout.ms": "2000",
		}),
	}
	for _, name := range slices.Sorted(maps.Keys(connectors)) {
		props := map[string]string{"name": name}
		for k, v := range connectors[name] {
			props[k] = v
		}
		args = append(args, write(name+".properties", props))
	}
	out, err := os.Create(w.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := startChild(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("kafka connect log:\n%s", tailFile(w.log, 60))
		}
	})
	// Ready: every connector's task RUNNING, as the REST API reports.
	waitFor(t, 60*time.Second, "Kafka Connect tasks running", func() error {
		select {
		case <-done:
			return fmt.Errorf("kafka connect exited:\n%s", tailFile(w.log, 40))
		default:
		}
		for name := range connectors {
			if st, err := w.taskState(name); err != nil || st != "RUNNING" {
				return fmt.Errorf("connector %s: task %q (%v)", name, st, err)
			}
		}
		return nil
	})
	return w
}

// taskState is the state of the connector's first task (RUNNING, FAILED...).
func (w *connectWorker) taskState(name string) (string, error) {
	resp, err := http.Get(w.rest + "/connectors/" + name + "/status")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		Tasks []struct {
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Tasks) == 0 {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	if st.Tasks[0].State == "FAILED" {
		return "FAILED", fmt.Errorf("%s", st.Tasks[0].Trace)
	}
	return st.Tasks[0].State, nil
}

// readLines returns the lines of a sink's output file ("" while absent).
func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines
}

// TestKafkaConnectDownstream is the contract with downstream consumers
// shown with a real one: Apache Kafka Connect (standalone) reads the
// message-* topics the gateway writes with FileStreamSink connectors while
// fleetsim drives MQTT and legacy STS traffic. The sink with Kafka's
// StringConverter holds every acknowledged record byte for byte as a Kafka
// consumer reads it, once; the sink with Kafka's JsonConverter
// (schemas.enable=false) parses every record of the report topics as JSON
// and holds each acknowledged report.
func TestKafkaConnectDownstream(t *testing.T) {
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	dir := t.TempDir()
	exact, parsed := filepath.Join(dir, "exact.txt"), filepath.Join(dir, "json.txt")
	w := startConnect(t, kc, map[string]map[string]string{
		"fleetgate-exact": {
			"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
			"tasks.max":       "1",
			"topics.regex":    "message-.*",
			"file":            exact,
		},
		"fleetgate-json": {
			"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
			"tasks.max":       "1",
			// The dead-letter topic holds the original payloads, JSON or not.
			"topics.regex":                   "message-(?!dlq$).*",
			"file":                           parsed,
			"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
			"value.converter.schemas.enable": "false",
		},
	})

	run := fmt.Sprintf("connect-%d", time.Now().UnixNano()%1e9)
	sim := startSim(t, "--mqtt", g.MQTTAddr, "--devices", "8", "--inflight", "4", "--messages", "25",
		"--https", g.HTTPSAddr, "--sts-devices", "2", "--prefix", "KC-", "--run-id", run, "--drain", "15s")
	sum := sim.wait(90 * time.Second)
	acked, unacked, _ := sum.total()
	if acked == 0 || unacked != 0 {
		t.Fatalf("fleetsim: %s; want every message acknowledged", sum.brief())
	}
	simVerify(t, kc, sim)

	// What a Kafka consumer reads of this run, all message-* topics.
	ours := func(v []byte) bool { return strings.Contains(string(v), `"run":"`+run+`"`) }
	var consumed []string
	topicOf := map[string][]string{} // record value -> the topics a consumer read it in
	for _, r := range readTopics(t, kc, append(append([]string{}, reportTopics...), "message-dlq")...) {
		if ours(r.Value) {
			consumed = append(consumed, string(r.Value))
			topicOf[string(r.Value)] = append(topicOf[string(r.Value)], r.Topic)
		}
	}
	if int64(len(consumed)) != sum.Records {
		t.Fatalf("a consumer reads %d records of run %s; fleetsim counted %d", len(consumed), run, sum.Records)
	}

	// The exact sink catches up to the consumer.
	var sunk []string
	waitFor(t, 30*time.Second, "the StringConverter sink to hold every record", func() error {
		if st, err := w.taskState("fleetgate-exact"); st != "RUNNING" {
			return fmt.Errorf("sink task %s: %v", st, err)
		}
		sunk = sunk[:0]
		for _, l := range readLines(exact) {
			if ours([]byte(l)) {
				sunk = append(sunk, l)
			}
		}
		if len(sunk) < len(consumed) {
			return fmt.Errorf("%d of %d records in %s", len(sunk), len(consumed), exact)
		}
		return nil
	})
	slices.Sort(sunk)
	slices.Sort(consumed)
	if !slices.Equal(sunk, consumed) {
		t.Fatalf("the sink's output is not the records as produced: %d lines, %d records; first difference: %s",
			len(sunk), len(consumed), firstDiff(sunk, consumed))
	}

	// Every acknowledged message is in the sink, in the topic of its type,
	// exactly once (no re-sends in this run).
	type msgID struct {
		device, typ string
		seq         int64
	}
	inSink := map[msgID]int{}
	sinkTopics := map[msgID][]string{}
	for _, l := range sunk {
		var rep report
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			t.Fatalf("sink line is not JSON: %v: %s", err, l)
		}
		id := msgID{rep.DeviceNo, rep.Type, rep.Seq}
		inSink[id]++
		sinkTopics[id] = append(sinkTopics[id], topicOf[l]...)
	}
	want := 0
	for _, line := range ackedLines(t, sim.ackedPath) {
		for _, sp := range line.Seq {
			for seq := sp[0]; seq <= sp[1]; seq++ {
				want++
				if n := inSink[msgID{line.Device, line.Type, seq}]; n == 0 {
					t.Errorf("acknowledged %s %s seq %d (topic %s) is not in the sink's output", line.Device, line.Type, seq, line.Topic)
				} else if n > 1 && line.Source == "mqtt" {
					t.Errorf("acknowledged %s %s seq %d is %d times in the sink's output", line.Device, line.Type, seq, n)
				} else if ts := sinkTopics[msgID{line.Device, line.Type, seq}]; !slices.Contains(ts, line.Topic) {
					t.Errorf("acknowledged %s %s seq %d reached the sink from topics %v, not %s (the topic of its type)", line.Device, line.Type, seq, ts, line.Topic)
				}
			}
		}
	}
	if want == 0 {
		t.Fatal("the acked file lists no acknowledged message")
	}

	// Kafka's JsonConverter parses every report the gateway wrote (a
	// record it could not parse would fail the task).
	var parsedOurs int
	devSeq := regexp.MustCompile(`device_no=([^,}]+)`)
	waitFor(t, 30*time.Second, "the JsonConverter sink to hold every report", func() error {
		if st, err := w.taskState("fleetgate-json"); st != "RUNNING" {
			return fmt.Errorf("JsonConverter sink task %s: %v", st, err)
		}
		parsedOurs = 0
		for _, l := range readLines(parsed) {
			if strings.Contains(l, "run="+run) {
				if !devSeq.MatchString(l) {
					return fmt.Errorf("JsonConverter line without device_no: %s", l)
				}
				parsedOurs++
			}
		}
		if parsedOurs < len(consumed) {
			return fmt.Errorf("%d of %d reports parsed", parsedOurs, len(consumed))
		}
		return nil
	})
	if parsedOurs != len(consumed) {
		t.Errorf("the JsonConverter sink holds %d reports of the run; a consumer reads %d", parsedOurs, len(consumed))
	}
	t.Logf("Kafka Connect sinks hold all %d records of run %s (%d acknowledged messages): byte for byte, and parsed by JsonConverter",
		len(consumed), run, want)
}

// ackedEntry is a line of fleetsim's acked file (cmd/fleetsim/acked.go).
type ackedEntry struct {
	Device string     `json:"device"`
	Source string     `json:"source"`
	Type   string     `json:"type"`
	Topic  string     `json:"topic"`
	Seq    [][2]int64 `json:"seq"`
}

func ackedLines(t *testing.T, path string) []ackedEntry {
	t.Helper()
	var out []ackedEntry
	for i, l := range readLines(path) {
		if i == 0 {
			continue // the header
		}
		var e ackedEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, e)
	}
	return out
}

// firstDiff describes the first place two sorted lists differ.
func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("sink %q, consumer %q", a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}
