package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// verifyConfig is what `fleetsim verify` was asked to do.
type verifyConfig struct {
	brokers         []string
	topics          []string
	ackedPath       string
	timeout         time.Duration
	partitionsCheck bool
	kafkaVersion    sarama.KafkaVersion
	maxList         int
	jsonOut         bool
}

// defaultTopics are the topics of the five report types the default rule
// routes to.
const defaultTopics = "message-log,message-gps,message-kinematic,message-adas,message-boot"

const verifyUsage = `Usage: fleetsim verify --acked FILE [flags]

Reads the topics from their oldest offsets (partition consumers, no group)
and checks, per device and topic, what 'fleetsim run --acked FILE' recorded:
every acknowledged seq is present (loss); within a partition a device's seqs
never go back (reorder); a seq appears twice only if run re-sent it
(duplicate); the record key is the device_no (wrong-key); with
--partitions-check, the partition is murmur2(device_no) % partitions as the
Java client computes it (wrong-partition); a seq sent as one type is not in
another type's topic (misrouted). Records the file does not list, or lists as
sent but unacknowledged, are counted as extras and allowed: a message may be
stored although its ack was lost. Records whose "run" differs from the file's
are ignored.

It reads until every partition has been read up to the end it had at start
and every acknowledged seq has been found, or --timeout passes.
Exit status: 0 no violation, 1 violations, 2 usage or Kafka errors.

Example:
  fleetsim verify --brokers 127.0.0.1:9092 --acked acked.jsonl --partitions-check

Flags (-flag and --flag are the same):
`

// parseVerifyFlags parses and checks the flags of `fleetsim verify`.
func parseVerifyFlags(args []string, stderr io.Writer) (*verifyConfig, error) {
	c := &verifyConfig{}
	fs := flag.NewFlagSet("fleetsim verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), verifyUsage)
		fs.PrintDefaults()
	}
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	topics := fs.String("topics", defaultTopics, "topics to read, comma-separated")
	fs.StringVar(&c.ackedPath, "acked", "", "acked `file` written by fleetsim run --acked (required)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to wait for the expected records")
	fs.BoolVar(&c.partitionsCheck, "partitions-check", false, "check every record is in partition murmur2(device_no) % partitions")
	version := fs.String("kafka-version", "2.8.0", "Kafka protocol version to speak")
	fs.IntVar(&c.maxList, "max-list", 20, "violations listed per kind")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	c.brokers = splitList(*brokers)
	c.topics = splitList(*topics)
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("--brokers is empty"))
	}
	if len(c.topics) == 0 {
		errs = append(errs, errors.New("--topics is empty"))
	}
	if c.ackedPath == "" {
		errs = append(errs, errors.New("--acked is required"))
	}
	if c.timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be positive"))
	}
	if c.maxList < 0 {
		errs = append(errs, errors.New("--max-list must not be negative"))
	}
	v, err := sarama.ParseKafkaVersion(*version)
	if err != nil {
		errs = append(errs, fmt.Errorf("--kafka-version: %w", err))
	}
	c.kafkaVersion = v
	return c, errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// verifyCommand is `fleetsim verify`.
func verifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseVerifyFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim verify: %v\n", err)
		return 2
	}
	f, err := os.Open(cfg.ackedPath)
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim verify: %v\n", err)
		return 2
	}
	acked, err := readAcked(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim verify: %s: %v\n", cfg.ackedPath, err)
		return 2
	}
	rep, err := verify(ctx, cfg, acked, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "fleetsim verify: %v\n", err)
		return 2
	}
	if cfg.jsonOut {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			fmt.Fprintf(stderr, "fleetsim verify: %v\n", err)
			return 2
		}
	} else {
		rep.writeText(stdout, cfg.ackedPath)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// partitionRead is the progress of reading one partition.
type partitionRead struct {
	topic  string
	id     int32
	target int64 // the end offset when verify started
	next   int64
	pc     sarama.PartitionConsumer
}

// verify reads cfg.topics and checks them against acked.
func verify(ctx context.Context, cfg *verifyConfig, acked *ackedFile, logw io.Writer) (*Report, error) {
	sc := sarama.NewConfig()
	sc.ClientID = "fleetsim-verify"
	sc.Version = cfg.kafkaVersion
	sc.Consumer.Return.Errors = true
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(cfg.brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(cfg.brokers, ","), err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()

	var counts map[string]int32
	if cfg.partitionsCheck {
		counts = map[string]int32{}
	}
	var parts []*partitionRead
	for _, topic := range cfg.topics {
		ids, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		if counts != nil {
			counts[topic] = int32(len(ids))
		}
		for _, id := range ids {
			end, err := client.GetOffset(topic, id, sarama.OffsetNewest)
			if err != nil {
				return nil, fmt.Errorf("topic %s partition %d: end offset: %w", topic, id, err)
			}
			start, err := client.GetOffset(topic, id, sarama.OffsetOldest)
			if err != nil {
				return nil, fmt.Errorf("topic %s partition %d: start offset: %w", topic, id, err)
			}
			parts = append(parts, &partitionRead{topic: topic, id: id, target: end, next: start})
		}
	}
	chk := newChecker(acked, cfg.topics, counts, cfg.maxList)

	// One goroutine per partition forwards records to this one, which owns
	// the checker; stop ends them.
	type msg struct {
		part *partitionRead
		m    *sarama.ConsumerMessage
	}
	records := make(chan msg, 1024)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		for _, p := range parts {
			if p.pc != nil {
				p.pc.AsyncClose()
			}
		}
		wg.Wait()
	}()
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(p.topic, p.id, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("consume %s partition %d: %w", p.topic, p.id, err)
		}
		p.pc = pc
		wg.Go(func() {
			for m := range pc.Messages() {
				select {
				case records <- msg{p, m}:
				case <-stop:
				}
			}
		})
		wg.Go(func() {
			for err := range pc.Errors() {
				fmt.Fprintf(logw, "fleetsim verify: %s partition %d: %v\n", p.topic, p.id, err.Err)
			}
		})
	}

	caughtUp := func() bool {
		for _, p := range parts {
			if p.next < p.target {
				return false
			}
		}
		return true
	}
	deadline := time.NewTimer(cfg.timeout)
	defer deadline.Stop()
read:
	for !(caughtUp() && chk.remaining == 0) {
		select {
		case r := <-records:
			chk.observe(kafkaRecord{Topic: r.m.Topic, Partition: r.m.Partition, Offset: r.m.Offset, Key: r.m.Key, Value: r.m.Value})
			r.part.next = max(r.part.next, r.m.Offset+1)
		case <-deadline.C:
			break read
		case <-ctx.Done():
			break read
		}
	}
	rep := chk.report()
	for _, p := range parts {
		if p.next < p.target {
			rep.Incomplete = append(rep.Incomplete, fmt.Sprintf("%s/%d at offset %d of %d", p.topic, p.id, p.next, p.target))
		}
	}
	return rep, nil
}
