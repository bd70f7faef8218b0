package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fleetgate/fleetgate/limits"
	"github.com/fleetgate/fleetgate/router"
)

// ingester feeds the messages of one legacy HTTPS request to the engine and
// waits until all are stored: the HTTP counterpart of a QoS 1 PUBACK.
type ingester struct {
	engine  *router.Engine
	timeout time.Duration  // kafka.delivery_timeout
	budget  *limits.Budget // limits.*
	obs     interface{ Refused(reason string) }
}

// errAtLimit refuses a request when the gateway is at its in-flight bound.
var errAtLimit = errors.New("gateway at its in-flight bound (limits.*)")

// unavailable marks a failure the terminal should retry later (HTTP 503).
type unavailable struct{ err error }

func (u unavailable) Error() string     { return u.err.Error() }
func (u unavailable) Unwrap() error     { return u.err }
func (u unavailable) Unavailable() bool { return true }

// Ingest implements telematics.Ingester. The messages are handed to the
// engine in order, so a request's records keep their order per device.
//
// The request takes room for all its messages under limits.* at once, or
// is refused at once (503): an HTTP client retries later by itself, so
// waiting would only hold its connection. The room is given back when the
// engine is done with the last of them, even after Ingest gave up waiting.
func (i *ingester) Ingest(ctx context.Context, msgs []router.Message) error {
	var size int64
	for k := range msgs {
		size += int64(len(msgs[k].Payload))
	}
	if !i.budget.TryAcquire(len(msgs), size) {
		i.obs.Refused(router.ReasonInflightLimit)
		return unavailable{errAtLimit}
	}
	var left atomic.Int64
	left.Store(int64(len(msgs)))
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	results := make(chan error, len(msgs))
	for k := range msgs {
		i.engine.Process(ctx, &msgs[k], func(err error) {
			if left.Add(-1) == 0 {
				i.budget.Release(len(msgs), size)
			}
			results <- err
		})
	}
	for range msgs {
		select {
		case err := <-results:
			if err != nil {
				return unavailable{fmt.Errorf("not stored: %w", err)}
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				i.obs.Refused(router.ReasonDeliveryTimeout)
			}
			return unavailable{fmt.Errorf("kafka did not store the request's messages in time: %w", ctx.Err())}
		}
	}
	return nil
}
