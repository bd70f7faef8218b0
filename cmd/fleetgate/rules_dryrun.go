package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/schema"
)

// rulesTest dry-runs the rules on one message through the real engine, with
// a sink that stores nothing and a publisher that publishes nothing, and
// prints every output the engine traces, one JSON line each.
func rulesTest(args []string, stdout, stderr io.Writer, stdin io.Reader) int {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); none: the development default")
	topic := fs.String("topic", "", "MQTT topic the message is published to (required)")
	clientID := fs.String("client-id", "", "MQTT client id (clientid())")
	payload := fs.String("payload", "", "the message payload, normally a JSON object")
	payloadFile := fs.String("payload-file", "", `read the payload from this file ("-": stdin)`)
	source := fs.String("source", "mqtt", "input the message comes from: mqtt, sts or csa")
	principal := fs.String("principal", "", "authenticated identity (principal())")
	now := fs.String("now", "", "receive time (timestamp()): RFC 3339 or epoch milliseconds; default now")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "fleetgate rules test: %s\n\n%s", msg, rulesUsage)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *topic == "":
		return usage("want --topic")
	case router.ValidTopicName(*topic) != nil:
		return usage(router.ValidTopicName(*topic).Error())
	case (*payload == "") == (*payloadFile == ""):
		return usage("want one of --payload and --payload-file")
	}
	body := []byte(*payload)
	if *payloadFile != "" {
		var err error
		if *payloadFile == "-" {
			body, err = io.ReadAll(stdin)
		} else {
			body, err = os.ReadFile(*payloadFile)
		}
		if err != nil {
			fmt.Fprintf(stderr, "fleetgate rules test: %v\n", err)
			return 1
		}
	}
	received := time.Now()
	if *now != "" {
		t, err := parseNow(*now)
		if err != nil {
			return usage(err.Error())
		}
		received = t
	}

	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	out := &traceWriter{w: stdout}
	compiled, err := compileWithData(context.Background(), cfg, stderr, out.lookup)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	sink := newDryRunSink(cfg.Kafka, compiled)
	opts := router.Options{
		Publisher:      dryRunPublisher{},
		MaxRecordBytes: cfg.Kafka.MaxMessageBytes,
		Trace:          out.trace,
		Config:         cfg.Router,
	}
	if cfg.MQTT.Auth.EnforceDeviceIdentity {
		opts.EnforceIdentity = []string{"mqtt"}
	}
	engine := router.NewEngine(compiled, sink, opts, zap.NewNop())

	msg := &router.Message{Source: *source, Topic: *topic, ClientID: *clientID, Principal: *principal,
		Payload: body, Received: received}
	result := make(chan error, 1)
	engine.Process(context.Background(), msg, func(err error) { result <- err })
	err = <-result
	if r, refused := router.Refused(err); refused {
		fmt.Fprintf(stderr, "fleetgate rules test: the message would be refused (MQTT 5: PUBACK 0x87) after its error records: %v\n", r)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetgate rules test: the message would not be stored: %v\n", err)
		return 1
	}
	if out.err != nil {
		fmt.Fprintf(stderr, "fleetgate rules test: %v\n", out.err)
		return 1
	}
	if out.lines == 0 {
		fmt.Fprintf(stderr, "no rule matched: the message would be acknowledged, counted as unmatched and logged\n")
	}
	return 0
}

// parseNow reads --now: RFC 3339 or epoch milliseconds.
func parseNow(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q is neither RFC 3339 nor epoch milliseconds", s)
	}
	return t, nil
}

// dryRunSink stands in for the Kafka producer. It refuses records the
// producer would refuse before sending (invalid topic name, a topic that
// neither kafka.topics.names nor a rule names, a record over
// kafka.max_message_bytes, a fixed partition past kafka.topics.partitions),
// with the producer's own error type so that the engine takes the same
// path, and stores every other record at once.
type dryRunSink struct {
	known      map[string]bool
	maxBytes   int
	partitions int32
}

func newDryRunSink(kc kafka.Config, rules *router.Rules) *dryRunSink {
	s := &dryRunSink{known: map[string]bool{}, maxBytes: kc.MaxMessageBytes, partitions: kc.Topics.Partitions}
	for _, t := range slices.Concat(kc.Topics.Names, rules.LiteralTopics()) {
		s.known[t] = true
	}
	return s
}

// Produce implements router.Sink.
func (s *dryRunSink) Produce(_ context.Context, rec *router.Record, done func(error)) error {
	done(s.check(rec))
	return nil
}

func (s *dryRunSink) check(rec *router.Record) error {
	if err := kafka.ValidTopicName(rec.Topic); err != nil {
		return &kafka.RecordError{Topic: rec.Topic, Reason: router.ReasonInvalidTopic, Err: err}
	}
	if !s.known[rec.Topic] {
		return &kafka.RecordError{Topic: rec.Topic, Reason: router.ReasonUnknownTopic,
			Err: errors.New("the topic is neither in kafka.topics.names nor named by a rule (rules test assumes the cluster has exactly those)")}
	}
	msg := &sarama.ProducerMessage{Topic: rec.Topic, Value: sarama.ByteEncoder(rec.Value)}
	if rec.Key != nil {
		msg.Key = sarama.ByteEncoder(rec.Key)
	}
	for _, h := range rec.Headers {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	if size := msg.ByteSize(2); s.maxBytes > 0 && size > s.maxBytes {
		return &kafka.RecordError{Topic: rec.Topic, Reason: router.ReasonRecordTooLarge,
			Err: fmt.Errorf("record is %d bytes; kafka.max_message_bytes is %d", size, s.maxBytes)}
	}
	if rec.Partition >= s.partitions {
		return &kafka.RecordError{Topic: rec.Topic, Reason: router.ReasonInvalidPartition,
			Err: fmt.Errorf("partition %d does not exist; kafka.topics.partitions is %d", rec.Partition, s.partitions)}
	}
	return nil
}

// dryRunPublisher accepts every republish; the trace prints it.
type dryRunPublisher struct{}

func (dryRunPublisher) Publish(string, []byte, byte) error { return nil }

// traceWriter prints engine traces as JSON lines.
type traceWriter struct {
	mu    sync.Mutex
	w     io.Writer
	lines int
	err   error
}

func (t *traceWriter) trace(tr router.Trace) {
	var o object
	o.add("rule", tr.Rule)
	switch {
	case tr.Action == "error_action":
		o.add("failed", tr.Failed)
		o.add("reason", tr.Reason)
		if tr.Err != nil {
			o.add("error", tr.Err.Error())
		}
		if tr.Record != nil {
			var e object
			recordFields(&e, tr.Record)
			o.addRaw("error_action", e.bytes())
		} else {
			o.addRaw("error_action", []byte("null")) // none, or it failed too
		}
	case tr.Record != nil:
		o.add("action", tr.Action)
		recordFields(&o, tr.Record)
	default:
		o.add("action", tr.Action)
		o.add("mqtt_topic", tr.MQTTTopic)
		o.add("qos", int(tr.QoS))
		o.addRaw("value", jsonValue(tr.Payload))
	}
	t.mu.Lock()
	t.lines++
	t.mu.Unlock()
	t.write(o.bytes())
}

func (t *traceWriter) write(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.w.Write(append(line, '\n')); err != nil && t.err == nil {
		t.err = err
	}
}

// lookup prints a lookup() the rules made.
func (t *traceWriter) lookup(table, key string, found bool) {
	var o object
	o.add("lookup", table)
	o.add("key", key)
	o.addRaw("found", []byte(strconv.FormatBool(found)))
	t.write(o.bytes())
}

// recordFields adds a Kafka record's topic, key, partition (when fixed),
// headers, the schema it was validated against, and value.
func recordFields(o *object, r *router.Record) {
	o.add("topic", r.Topic)
	if r.Key != nil {
		o.add("key", string(r.Key))
	} else {
		o.addRaw("key", []byte("null"))
	}
	if r.Partition >= 0 {
		o.add("partition", r.Partition)
	}
	var h object
	for _, x := range r.Headers {
		h.add(x.Key, string(x.Value))
	}
	o.addRaw("headers", h.bytes())
	value := r.Value
	if r.Schema != "" {
		o.add("schema", r.Schema)
		if id, payload, err := schema.Unframe(value); err == nil && json.Valid(payload) {
			o.add("format", "confluent")
			o.add("schema_id", id)
			value = payload
		}
	}
	o.addRaw("value", jsonValue(value))
}

// jsonValue returns b compacted when it is JSON, else b as a JSON string
// (a binary payload passed through by SELECT *).
func jsonValue(b []byte) []byte {
	var buf bytes.Buffer
	if json.Valid(b) && json.Compact(&buf, b) == nil {
		return buf.Bytes()
	}
	return marshal(string(b))
}

// marshal encodes v as JSON without escaping <, > and & (the output is
// read by people, not embedded in HTML).
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // strings and numbers only
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// object builds a JSON object with its members in the order added.
type object struct {
	buf bytes.Buffer
}

func (o *object) add(key string, v any) {
	o.addRaw(key, marshal(v))
}

func (o *object) addRaw(key string, raw []byte) {
	if o.buf.Len() == 0 {
		o.buf.WriteByte('{')
	} else {
		o.buf.WriteByte(',')
	}
	o.buf.Write(marshal(key))
	o.buf.WriteByte(':')
	o.buf.Write(raw)
}

func (o *object) bytes() []byte {
	if o.buf.Len() == 0 {
		return []byte("{}")
	}
	return append(bytes.Clone(o.buf.Bytes()), '}')
}
