package broker

import (
	"context"
	"time"

	"github.com/fleetgate/fleetgate/router"
)

// Observer is told about connections and acknowledgements (the metrics
// package implements it). Its methods must be safe for concurrent use and
// cheap: they run on connection goroutines.
type Observer interface {
	// ClientConnected: a client connected and was authenticated.
	ClientConnected()
	// ClientDisconnected: a connected client went away, for any reason.
	ClientDisconnected()
	// ClientRefused: a connection failed authentication.
	ClientRefused()
	// AccessRefused: authentication or the policy refused something. stage
	// is connect (reason unknown_user, bad_password, no_credentials,
	// cert_no_identity, identity_mismatch, will_denied, backoff,
	// client_id_invalid, session_owned), publish or subscribe (reason
	// not_authorized, topic_too_long or invalid_topic; subscribe also
	// subscription_limit,
	// and counts messages withheld from a subscriber), session (a reload ended it: credential_revoked,
	// will_withdrawn).
	AccessRefused(stage, reason string)
	// Acked: a QoS 1/2 message was acknowledged, latency after it was read.
	Acked(source string, latency time.Duration)
	// Refused: a message was not acknowledged for reason: delivery_timeout
	// (Kafka did not answer in kafka.delivery_timeout) or inflight_limit
	// (no room under limits.* in time). Failures the rule engine reports
	// are counted by the engine's own observer.
	Refused(reason string)
	// Resent: a DUP re-send was answered from its first copy.
	Resent()
}

// Limiter bounds the messages and bytes in flight across the process
// (limits.*; limits.Budget implements it). It must be safe for concurrent
// use.
type Limiter interface {
	// TryAcquire takes room for msgs messages of bytes bytes if there is
	// room now.
	TryAcquire(msgs int, bytes int64) bool
	// Acquire waits for that room until ctx ends, then returns its error.
	Acquire(ctx context.Context, msgs int, bytes int64) error
	// Release gives back what TryAcquire or Acquire took.
	Release(msgs int, bytes int64)
}

// Option tunes New.
type Option func(*options)

type options struct {
	obs    Observer
	limit  Limiter
	queued Limiter // limits.max_queued_* (bounds.go)
}

// WithObserver reports connections and acknowledgements to o. Default: none.
func WithObserver(o Observer) Option { return func(op *options) { op.obs = o } }

// WithLimiter makes every message take room from l before it goes to the
// pipeline, and give it back when the pipeline is done with it. At the
// bound the connection's read loop waits (up to kafka.delivery_timeout from
// the message's arrival), so the terminal's writes stall: that is the
// back-pressure. A QoS 1/2 message that gets no room in time is failed like
// a Kafka failure, with reason code 0x97 (quota exceeded) for MQTT 5; a
// QoS 0 message is dropped, counted and logged. Default: no limit.
func WithLimiter(l Limiter) Option { return func(op *options) { op.limit = l } }

// Reasons given to Observer.Refused.
const (
	reasonDeliveryTimeout = router.ReasonDeliveryTimeout
	reasonInflightLimit   = router.ReasonInflightLimit
)

type nopObserver struct{}

func (nopObserver) ClientConnected()             {}
func (nopObserver) ClientDisconnected()          {}
func (nopObserver) ClientRefused()               {}
func (nopObserver) AccessRefused(string, string) {}
func (nopObserver) Acked(string, time.Duration)  {}
func (nopObserver) Refused(string)               {}
func (nopObserver) Resent()                      {}
