package router

import "context"

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Kafka record an action wants written.
type Record struct {
	Topic string
	Key   []byte
	// Partition is the fixed partition, or -1 to let the sink's partitioner
	// choose from the key.
	Partition int32
	Headers   []Header
	Value     []byte
	// Schema is the schema Value was validated against ("": none); it is
	// not sent, rules test prints it.
	Schema string
}

// Sink stores records. The kafka package's producer implements it.
type Sink interface {
	// Produce hands rec to the sink. It may block while the sink is full (that is
	// the back-pressure) until ctx is done, in which case it returns ctx's error
	// and done is never called. Otherwise done is called exactly once, from any
	// goroutine, with nil when the record is stored or with the reason it is not.
	// Records given in order with the same topic and key are stored in that order.
	Produce(ctx context.Context, rec *Record, done func(error)) error
}

// PermanentError is implemented by sink errors that no retry can cure (unknown
// topic, record too large, invalid record). The engine sends the message to the
// rule's error action for those; any other error fails the message so that its
// sender retries it later.
type PermanentError interface {
	error
	Permanent() bool
}
