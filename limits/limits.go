// Package limits bounds the memory that messages in flight may hold across
// the whole process. The inputs take room from one Budget (a count of
// messages and a count of payload bytes) before they hand a message to the
// rule engine, and give it back when the engine is done with it, stored or
// not. When there is no room, MQTT intake waits (its read loop pauses, which
// is the back-pressure a terminal feels) and HTTP is refused with 503 at once.
package limits

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Config is the limits: section of the configuration.
type Config struct {
	// MaxInflightMessages is how many messages may be between their arrival
	// and the end of their Kafka produce at once, all inputs together
	// (limits.max_inflight_messages). Default 20000.
	MaxInflightMessages int64 `mapstructure:"max_inflight_messages"`
	// MaxInflightBytes bounds the payload bytes of those messages
	// (limits.max_inflight_bytes). The heap they hold is a small multiple of
	// it (docs/operations.md has measured figures). It must be at least
	// mqtt.max_packet_bytes and telematics.max_body_bytes so the largest
	// single message or request fits. Default 67108864 (64 MiB).
	MaxInflightBytes int64 `mapstructure:"max_inflight_bytes"`

	// MaxQueuedMessages bounds the QoS 1/2 messages the MQTT broker holds
	// for subscribers, all sessions together: offline persistent sessions
	// and messages not yet acknowledged (limits.max_queued_messages). At the
	// bound the oldest is dropped. Default 100000.
	MaxQueuedMessages int64 `mapstructure:"max_queued_messages"`
	// MaxQueuedBytes bounds the bytes (topic + payload) of those messages
	// (limits.max_queued_bytes). Must be at least mqtt.max_packet_bytes.
	// Default 67108864 (64 MiB).
	MaxQueuedBytes int64 `mapstructure:"max_queued_bytes"`
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{MaxInflightMessages: 20000, MaxInflightBytes: 64 << 20,
		MaxQueuedMessages: 100000, MaxQueuedBytes: 64 << 20}
}

// Validate checks the configuration; its errors name the key at fault.
func (c Config) Validate() error {
	var errs []error
	if c.MaxInflightMessages < 1 {
		errs = append(errs, fmt.Errorf("limits.max_inflight_messages: %d must be at least 1", c.MaxInflightMessages))
	}
	if c.MaxInflightBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits.max_inflight_bytes: %d must be at least 1024", c.MaxInflightBytes))
	}
	if c.MaxQueuedMessages < 1 {
		errs = append(errs, fmt.Errorf("limits.max_queued_messages: %d must be at least 1", c.MaxQueuedMessages))
	}
	if c.MaxQueuedBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits.max_queued_bytes: %d must be at least 1024", c.MaxQueuedBytes))
	}
	return errors.Join(errs...)
}

// Budget is the process-wide room for messages in flight. Waiters are served
// in arrival order, and a TryAcquire does not overtake them. It is safe for
// concurrent use.
type Budget struct {
	maxMsgs, maxBytes int64
	// Room is taken from msgs first, then bytes, and every caller does the
	// same, so holding one while waiting for the other cannot deadlock:
	// whoever holds bytes holds msgs and releases both without waiting.
	msgs, bytes *semaphore.Weighted
	inMsgs      atomic.Int64
	inBytes     atomic.Int64
}

// New returns a budget with cfg's limits; cfg must be valid.
func New(cfg Config) *Budget {
	return &Budget{
		maxMsgs:  cfg.MaxInflightMessages,
		maxBytes: cfg.MaxInflightBytes,
		msgs:     semaphore.NewWeighted(cfg.MaxInflightMessages),
		bytes:    semaphore.NewWeighted(cfg.MaxInflightBytes),
	}
}

// TryAcquire takes room for msgs messages of bytes payload bytes in all if
// there is room now and nobody is waiting for it. A request larger than a
// limit is cut to that limit, so it can go alone rather than never; Release
// must be given the same numbers.
func (b *Budget) TryAcquire(msgs int, bytes int64) bool {
	m, n := b.clamp(msgs, bytes)
	if !b.msgs.TryAcquire(m) {
		return false
	}
	if !b.bytes.TryAcquire(n) {
		b.msgs.Release(m)
		return false
	}
	b.taken(m, n)
	return true
}

// Acquire waits for room as TryAcquire takes it, until ctx ends; then it
// returns ctx's error and holds nothing.
func (b *Budget) Acquire(ctx context.Context, msgs int, bytes int64) error {
	m, n := b.clamp(msgs, bytes)
	if err := b.msgs.Acquire(ctx, m); err != nil {
		return err
	}
	if err := b.bytes.Acquire(ctx, n); err != nil {
		b.msgs.Release(m)
		return err
	}
	b.taken(m, n)
	return nil
}

// Release gives back what TryAcquire or Acquire took with the same numbers.
func (b *Budget) Release(msgs int, bytes int64) {
	m, n := b.clamp(msgs, bytes)
	b.inMsgs.Add(-m)
	b.inBytes.Add(-n)
	b.bytes.Release(n)
	b.msgs.Release(m)
}

// InUse returns the messages and bytes held now.
func (b *Budget) InUse() (msgs, bytes int64) { return b.inMsgs.Load(), b.inBytes.Load() }

// Limits returns the configured limits.
func (b *Budget) Limits() (msgs, bytes int64) { return b.maxMsgs, b.maxBytes }

func (b *Budget) taken(m, n int64) {
	b.inMsgs.Add(m)
	b.inBytes.Add(n)
}

func (b *Budget) clamp(msgs int, bytes int64) (int64, int64) {
	return max(min(int64(msgs), b.maxMsgs), 0), max(min(bytes, b.maxBytes), 0)
}
