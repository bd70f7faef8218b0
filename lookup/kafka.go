package lookup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// maxBatch bounds how many records a partition applies under one lock.
const maxBatch = 512

// kafkaSource keeps a table in step with a compacted topic: one partition
// consumer per partition (no consumer group: every gateway reads the whole
// topic), from the oldest offset, for as long as the source is open.
// Partitions added to the topic later are found every refresh and
// followed too.
type kafkaSource struct {
	table    *Table
	topic    string
	log      *zap.Logger
	consumer sarama.Consumer
	refresh  time.Duration // how often to look for new partitions
	behind   atomic.Int32  // partitions not yet at their end offset of the start
	wg       sync.WaitGroup

	mu  sync.Mutex // guards pcs and known
	pcs []sarama.PartitionConsumer
	// known are the partitions being followed.
	known map[int32]bool

	done      chan struct{} // closed by close: stop looking for partitions
	stopOnce  sync.Once
	partsDone sync.WaitGroup // the goroutine looking for partitions
}

func newKafkaSource(t *Table, cfg TableConfig, log *zap.Logger, refresh time.Duration) *kafkaSource {
	if refresh <= 0 {
		refresh = DefaultPartitionRefresh
	}
	return &kafkaSource{table: t, topic: cfg.KafkaTopic, log: log, refresh: refresh,
		known: map[int32]bool{}, done: make(chan struct{})}
}

// start reads the end offsets and starts a consumer per partition. It
// returns at once; ready reports when every partition has been read up to
// the end offset it had at start.
func (k *kafkaSource) start(client sarama.Client) error {
	key := "lookups." + k.table.name + ".kafka_topic"
	parts, err := client.Partitions(k.topic)
	if err != nil {
		return fmt.Errorf("%s: topic %q: %w", key, k.topic, err)
	}
	type target struct {
		p      int32
		oldest int64
		end    int64
	}
	targets := make([]target, 0, len(parts))
	for _, p := range parts {
		end, err := client.GetOffset(k.topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("%s: end offset of %s/%d: %w", key, k.topic, p, err)
		}
		oldest, err := client.GetOffset(k.topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("%s: oldest offset of %s/%d: %w", key, k.topic, p, err)
		}
		targets = append(targets, target{p, oldest, end})
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	k.consumer = consumer
	k.table.replace(map[string][]byte{}, time.Now())
	for _, t := range targets {
		// OffsetOldest rather than t.oldest: retention may have moved the
		// log start since it was read.
		pc, err := consumer.ConsumePartition(k.topic, t.p, sarama.OffsetOldest)
		if err != nil {
			_ = k.close()
			return fmt.Errorf("%s: consume %s/%d: %w", key, k.topic, t.p, err)
		}
		caughtUp := t.end <= t.oldest
		if !caughtUp {
			k.behind.Add(1)
		}
		k.followPartition(t.p, pc, t.end, caughtUp)
	}
	k.partsDone.Add(1)
	go k.watchPartitions(client)
	return nil
}

func (k *kafkaSource) followPartition(p int32, pc sarama.PartitionConsumer, end int64, caughtUp bool) {
	k.mu.Lock()
	k.pcs = append(k.pcs, pc)
	k.known[p] = true
	k.mu.Unlock()
	k.wg.Add(2)
	go k.follow(pc, end, caughtUp)
	go k.errors(pc)
}

// watchPartitions looks for partitions added to the topic every refresh
// and follows each from its oldest offset. A table that was ready stays
// ready: a new partition's records are applied as they are read.
func (k *kafkaSource) watchPartitions(client sarama.Client) {
	defer k.partsDone.Done()
	tick := time.NewTicker(k.refresh)
	defer tick.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-tick.C:
		}
		if err := client.RefreshMetadata(k.topic); err != nil {
			k.log.Warn("lookup topic metadata", zap.String("table", k.table.name), zap.String("topic", k.topic), zap.Error(err))
			continue
		}
		parts, err := client.Partitions(k.topic)
		if err != nil {
			k.log.Warn("lookup topic partitions", zap.String("table", k.table.name), zap.String("topic", k.topic), zap.Error(err))
			continue
		}
		for _, p := range parts {
			k.mu.Lock()
			known := k.known[p]
			k.mu.Unlock()
			if known {
				continue
			}
			pc, err := k.consumer.ConsumePartition(k.topic, p, sarama.OffsetOldest)
			if err != nil {
				k.table.obs.LookupRefreshFailed(k.table.name)
				k.log.Warn("lookup topic: cannot follow a new partition", zap.String("table", k.table.name),
					zap.String("topic", k.topic), zap.Int32("partition", p), zap.Error(err))
				continue
			}
			k.log.Info("lookup table following a new partition", zap.String("table", k.table.name),
				zap.String("topic", k.topic), zap.Int32("partition", p))
			k.followPartition(p, pc, 0, true)
		}
	}
}

// follow applies a partition's records until its consumer is closed.
func (k *kafkaSource) follow(pc sarama.PartitionConsumer, end int64, caughtUp bool) {
	defer k.wg.Done()
	var changes []change
	for msg := range pc.Messages() {
		changes = changes[:0]
		if c, ok := k.change(msg); ok {
			changes = append(changes, c)
		}
		last := msg.Offset
	drain:
		for len(changes) < maxBatch {
			select {
			case m, ok := <-pc.Messages():
				if !ok {
					break drain
				}
				if c, ok := k.change(m); ok {
					changes = append(changes, c)
				}
				last = m.Offset
			default:
				break drain
			}
		}
		k.table.apply(changes, time.Now())
		if !caughtUp && last >= end-1 {
			caughtUp = true
			k.behind.Add(-1)
			k.log.Info("lookup table caught up with its topic", zap.String("table", k.table.name),
				zap.String("topic", k.topic), zap.Int32("partition", msg.Partition), zap.Int("rows", k.table.Len()))
		}
	}
}

// change turns a record into a table change: a tombstone deletes its
// key; a value must be a JSON object. A record that is neither is refused,
// counted and logged (ok false), and the key keeps its last good row.
func (k *kafkaSource) change(m *sarama.ConsumerMessage) (c change, ok bool) {
	if len(m.Key) == 0 {
		k.refuse(m, "the record has no key")
		return change{}, false
	}
	if m.Value == nil {
		return change{key: string(m.Key)}, true
	}
	// Sized to the value, so that the row kept is not a grown buffer's
	// spare capacity (compact JSON is never longer).
	row := bytes.NewBuffer(make([]byte, 0, len(m.Value)))
	if err := json.Compact(row, m.Value); err != nil || row.Len() == 0 || row.Bytes()[0] != '{' {
		k.refuse(m, "the value is not a JSON object")
		return change{}, false
	}
	return change{key: string(m.Key), row: row.Bytes()}, true
}

func (k *kafkaSource) refuse(m *sarama.ConsumerMessage, why string) {
	k.table.obs.LookupRefreshFailed(k.table.name)
	k.log.Warn("lookup record refused", zap.String("table", k.table.name), zap.String("topic", m.Topic),
		zap.Int32("partition", m.Partition), zap.Int64("offset", m.Offset), zap.String("reason", why))
}

// errors logs a partition consumer's errors (when the client returns them).
func (k *kafkaSource) errors(pc sarama.PartitionConsumer) {
	defer k.wg.Done()
	for err := range pc.Errors() {
		k.table.obs.LookupRefreshFailed(k.table.name)
		k.log.Warn("lookup topic consumer error", zap.String("table", k.table.name), zap.Error(err))
	}
}

func (k *kafkaSource) tableName() string { return k.table.name }
func (k *kafkaSource) ready() bool       { return k.behind.Load() == 0 }

func (k *kafkaSource) close() error {
	k.stopOnce.Do(func() { close(k.done) })
	k.partsDone.Wait()
	k.mu.Lock()
	pcs := k.pcs
	k.pcs = nil
	k.mu.Unlock()
	for _, pc := range pcs {
		pc.AsyncClose()
	}
	k.wg.Wait()
	if k.consumer == nil {
		return nil
	}
	err := k.consumer.Close()
	k.consumer = nil
	return err
}
