package kafka

import (
	"fmt"

	"github.com/IBM/sarama"
)

// NewPartitioner returns the sarama.PartitionerConstructor for the
// kafka.partitioner setting:
//
//   - "murmur2" (the default, also chosen by ""): a keyed record goes to
//     toPositive(murmur2(key)) % partitions, the partition the Java client's
//     default partitioner and librdkafka's murmur2_random choose for the same
//     key bytes, so Kafka Streams, Flink and Java producers co-partition with
//     the gateway. A record without a key goes to a random available
//     partition, as with librdkafka's murmur2_random (the Java client would
//     use its sticky partitioner; no consumer can tell the difference).
//   - "fnv1a": sarama's historical hash partitioner (FNV-1a of the key, random
//     without a key). It matches no Java or librdkafka partitioner; it is
//     there for deployments that started with sarama's default.
//   - "random": every record goes to a random available partition; keys only
//     travel with the record.
//
// A keyed record always goes to the partition its key hashes to, over all the
// topic's partitions, even while that partition's leader is unavailable:
// sarama then retries until the leader is back rather than moving the key to
// another partition and breaking per-key order.
//
// Every choice honours a fixed partition: when a message's Metadata
// implements interface{ FixedPartition() (int32, bool) } and that returns
// true, the message goes to that partition, keyed or not; a partition outside
// the topic's range fails the message with an error wrapping
// sarama.ErrInvalidPartition.
//
// The partitioners sarama builds from the constructor are used by one
// goroutine each, as sarama does; they are not safe for concurrent use.
func NewPartitioner(name string) (sarama.PartitionerConstructor, error) {
	var base sarama.PartitionerConstructor
	keyed := true
	switch name {
	case "murmur2", "":
		base = sarama.NewMurmur2Partitioner
	case "fnv1a":
		base = sarama.NewHashPartitioner
	case "random":
		base = sarama.NewRandomPartitioner
		keyed = false
	default:
		return nil, fmt.Errorf("%q is not one of murmur2, fnv1a, random", name)
	}
	return func(topic string) sarama.Partitioner {
		return &partitioner{topic: topic, base: base(topic), keyed: keyed}
	}, nil
}

// partitioner adds fixed partitions to one of sarama's partitioners.
type partitioner struct {
	topic string
	base  sarama.Partitioner
	// keyed is true when base places a keyed record by its key.
	keyed bool
}

var _ sarama.DynamicConsistencyPartitioner = (*partitioner)(nil)

// fixedPartition returns the partition msg is pinned to, if any.
func fixedPartition(msg *sarama.ProducerMessage) (int32, bool) {
	f, ok := msg.Metadata.(interface{ FixedPartition() (int32, bool) })
	if !ok {
		return 0, false
	}
	return f.FixedPartition()
}

// Partition returns the index of msg's partition among the numPartitions
// partitions sarama offers. sarama offers all the topic's partitions, in
// order, whenever MessageRequiresConsistency is true, so that index is the
// partition number for fixed and keyed records.
func (p *partitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if part, ok := fixedPartition(msg); ok {
		if part < 0 || part >= numPartitions {
			return -1, fmt.Errorf("fixed partition %d of topic %q: the topic has %d partitions: %w",
				part, p.topic, numPartitions, sarama.ErrInvalidPartition)
		}
		return part, nil
	}
	return p.base.Partition(msg, numPartitions)
}

// RequiresConsistency is true for the keyed partitioners, so that a key keeps
// its partition while that partition has no leader. sarama asks
// MessageRequiresConsistency instead; this answers for callers that do not.
func (p *partitioner) RequiresConsistency() bool { return p.keyed }

// MessageRequiresConsistency tells sarama to offer all partitions, available
// or not, for a fixed partition and, with a keyed partitioner, for a keyed
// record; a record placed at random gets only the available ones, so that it
// is not held up by a partition without a leader.
func (p *partitioner) MessageRequiresConsistency(msg *sarama.ProducerMessage) bool {
	if _, ok := fixedPartition(msg); ok {
		return true
	}
	return p.keyed && msg.Key != nil
}
