package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetgate/fleetgate/router"
)

// ingester feeds the messages of one legacy HTTPS request to the engine and
// waits until all are stored: the HTTP counterpart of a QoS 1 PUBACK.
type ingester struct {
	engine  *router.Engine
	timeout time.Duration // kafka.delivery_timeout
}

// unavailable marks a failure the terminal should retry later (HTTP 503).
type unavailable struct{ err error }

func (u unavailable) Error() string     { return u.err.Error() }
func (u unavailable) Unwrap() error     { return u.err }
func (u unavailable) Unavailable() bool { return true }

// Ingest implements telematics.Ingester. The messages are handed to the
// engine in order, so a request's records keep their order per device.
func (i *ingester) Ingest(ctx context.Context, msgs []router.Message) error {
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	results := make(chan error, len(msgs))
	for k := range msgs {
		i.engine.Process(ctx, &msgs[k], func(err error) { results <- err })
	}
	for range msgs {
		select {
		case err := <-results:
			if err != nil {
				return unavailable{fmt.Errorf("not stored: %w", err)}
			}
		case <-ctx.Done():
			return unavailable{fmt.Errorf("kafka did not store the request's messages in time: %w", ctx.Err())}
		}
	}
	return nil
}
