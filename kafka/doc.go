// Package kafka writes the gateway's records to Kafka, and runs the embedded
// development broker when no cluster is configured.
//
// The producer is IBM/sarama's, set for durability by default: acks=all,
// idempotent, lz4, a short linger, and retries (kafka.retry_budget). Which
// Kafka errors are retried and which send a record to the error action is one
// table, produceErrors (errors.go). Each device's records pass an order gate
// (order.go): one record per topic and key in sarama's hands at a time, and a
// record sarama gives back is sent again before any later one of its device,
// so order holds whatever sarama's retries and circuit breakers do. Keyed records are partitioned as the Java client
// partitions them, murmur2(key) % partitions (NewPartitioner), so Kafka
// Streams, Flink and Java producers co-partition with the gateway; a key keeps
// its partition while that partition has no leader.
//
// Topics are never created by writes. At start EnsureTopics checks the topics
// the configuration names and, with kafka.topics.create, creates the missing
// ones; TopicCache lets the per-record path refuse an unknown (templated)
// topic at once instead of waiting out retries, deciding absence only from
// every broker's own answer (topics.go).
//
// With no kafka.brokers, StartEmbedded runs an in-memory, single-node,
// Kafka-protocol broker (franz-go's kfake) that any Kafka client can use, for
// development and demos only: its data is lost when it stops.
package kafka
