package kafka

import "context"

// A sender takes the records Produce has checked to the brokers and
// reports each one's result through its pending.complete, exactly once:
// stored, failed for good (a *RecordError from classify), or failed at
// shutdown. Records with the same topic and key are stored in the order
// send took them, whatever Kafka does meanwhile (docs/reliability.md).
type sender interface {
	// send takes o. It returns an error, and o completes never, only
	// when ctx ends or the producer closes before o was taken.
	send(ctx context.Context, o *outgoing) error
	// shutdown lets the records taken complete until ctx ends, fails
	// the ones left and closes the sender's connections. The Producer
	// calls it once, after the last send.
	shutdown(ctx context.Context) error
}
