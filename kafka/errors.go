package kafka

import (
	"errors"
	"fmt"
	"github.com/fleetgate/fleetgate/router"

	"github.com/IBM/sarama"
)

// errorClass is what the gateway does with a record that failed with an
// error.
type errorClass int

const (
	// retriable: the record stays queued, in order, and is sent again (the
	// producer's own retry, see order.go); its input withholds the
	// acknowledgement until it is stored or kafka.delivery_timeout passes.
	retriable errorClass = iota
	// permanent: retrying sends the same bytes to the same answer; the
	// record fails with a *RecordError and its message goes to the rule's
	// error action (then it is acknowledged).
	permanent
	// absentTopic: permanent only if the gateway's own metadata, asked
	// again of several brokers, confirms the topic does not exist
	// (TopicCache.confirmAbsent); retriable otherwise.
	absentTopic
)

// errorRule is one row of the produce error table.
type errorRule struct {
	code   sarama.KError
	class  errorClass
	reason string // RecordError.Reason for permanent rows
	why    string
}

// produceErrors is the one table of the Kafka error codes a produce (or the
// metadata lookup before it) can end with, following the Java client's
// classification (RetriableException or not). docs/reliability.md has the
// same table (TestErrorTableDocumented keeps them in step). A code not in
// the table is retriable: a record is never sent to the error topic for a
// reason nobody wrote down.
var produceErrors = []errorRule{
	{sarama.ErrUnknownTopicOrPartition, absentTopic, router.ReasonUnknownTopic,
		"a broker whose metadata lags (a topic just created, a restart) answers the same as for a topic that does not exist: only the gateway's own check of several brokers decides"},
	{sarama.ErrLeaderNotAvailable, retriable, "", "a leader election is under way"},
	{sarama.ErrNotLeaderForPartition, retriable, "", "the leader moved; the producer refreshes metadata and follows it"},
	{sarama.ErrFencedLeaderEpoch, retriable, "", "stale leader epoch: refresh metadata"},
	{sarama.ErrUnknownLeaderEpoch, retriable, "", "the broker is behind the client's metadata"},
	{sarama.ErrRequestTimedOut, retriable, "", "the replicas did not acknowledge in time; the write may or may not have happened (idempotence drops the copy)"},
	{sarama.ErrNotEnoughReplicas, retriable, "", "fewer in-sync replicas than min.insync.replicas: waits for the brokers to come back"},
	{sarama.ErrNotEnoughReplicasAfterAppend, retriable, "", "written to the leader but the ISR shrank: retried (idempotence drops the copy)"},
	{sarama.ErrBrokerNotAvailable, retriable, "", "broker down"},
	{sarama.ErrReplicaNotAvailable, retriable, "", "replica down"},
	{sarama.ErrNetworkException, retriable, "", "connection lost"},
	{sarama.ErrKafkaStorageError, retriable, "", "a log directory failed; the partition moves"},
	{sarama.ErrInvalidMessage, retriable, "", "CORRUPT_MESSAGE: a CRC mismatch is damage in transit (Java: CorruptRecordException is retriable)"},
	{sarama.ErrOutOfOrderSequenceNumber, retriable, "", "the idempotent session lost track after a failure; sarama resets it, the record is sent again in order"},
	{sarama.ErrUnknownProducerID, retriable, "", "the broker expired the producer id; sent again"},
	{sarama.ErrInvalidProducerEpoch, retriable, "", "producer epoch bumped; sent again"},
	{sarama.ErrThrottlingQuotaExceeded, retriable, "", "quota: slow down"},
	{sarama.ErrInvalidRequiredAcks, retriable, "", "a configuration fault of the gateway, not of the record: the operator must fix kafka.required_acks"},
	{sarama.ErrUnsupportedCompressionType, retriable, "", "a configuration fault of the gateway (kafka.compression vs broker version), not of the record"},
	{sarama.ErrClusterAuthorizationFailed, retriable, "", "the producer id is refused (IdempotentWrite ACL): a fault of the gateway's credentials, not of the record"},

	{sarama.ErrMessageSizeTooLarge, permanent, router.ReasonRecordTooLarge, "the broker's (or topic's) max.message.bytes is below the record: the same bytes fail again"},
	{sarama.ErrMessageSetSizeTooLarge, permanent, router.ReasonRecordTooLarge, "the batch holding the record exceeds the broker's limit"},
	{sarama.ErrInvalidRecord, permanent, router.ReasonInvalidRecord, "the broker refuses the record itself (e.g. a compacted topic and no key)"},
	{sarama.ErrInvalidTimestamp, permanent, router.ReasonInvalidRecord, "the record's timestamp is outside the topic's message.timestamp.*.ms"},
	{sarama.ErrInvalidTopic, permanent, router.ReasonInvalidTopic, "the topic name is illegal or internal"},
	{sarama.ErrTopicAuthorizationFailed, permanent, router.ReasonNotAuthorized, "no WRITE on this topic: an ACL change needs an operator, not a retry storm from terminals"},
	{sarama.ErrPolicyViolation, permanent, router.ReasonInvalidRecord, "a broker policy refuses the record"},
}

// produceErrorRule returns code's row, and false for a code not in the table.
func produceErrorRule(code sarama.KError) (errorRule, bool) {
	for _, r := range produceErrors {
		if r.code == code {
			return r, true
		}
	}
	return errorRule{}, false
}

// classify decides what a failed record becomes: a *RecordError (permanent,
// the message goes to the error action) or a plain error (retriable). It is
// the one place that makes that call; the table above holds the Kafka codes.
// absent confirms that topic does not exist; it is asked only for
// UNKNOWN_TOPIC_OR_PARTITION.
func classify(topic string, err error, absent func(topic string) bool) error {
	var cfgErr sarama.ConfigurationError
	switch {
	case errors.As(err, &cfgErr):
		// sarama's own size check and similar refusals before sending.
		return &RecordError{Topic: topic, Reason: router.ReasonInvalidRecord, Err: err}
	case errors.Is(err, sarama.ErrInvalidPartition):
		// Our partitioner's answer (a fixed partition the topic lacks).
		return &RecordError{Topic: topic, Reason: router.ReasonInvalidPartition, Err: err}
	}
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		if r, ok := produceErrorRule(kerr); ok {
			switch r.class {
			case permanent:
				return &RecordError{Topic: topic, Reason: r.reason, Err: err}
			case absentTopic:
				if absent != nil && absent(topic) {
					return &RecordError{Topic: topic, Reason: r.reason, Err: err}
				}
			}
		}
	}
	// Everything else, network errors, sarama's circuit breaker and
	// ErrOutOfBrokers included: the record is sent again.
	return fmt.Errorf("kafka topic %q: %w", topic, err)
}

// isPermanent reports whether err, as classify returned it, is permanent.
func isPermanent(err error) bool {
	var re *RecordError
	return errors.As(err, &re)
}
