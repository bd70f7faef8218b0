package telematics

import (
	"context"
	"slices"
	"sync"
)

// deviceOrder lets one request per device at a time hand its messages to the
// Ingester, in the order the requests asked (first come, first served), so
// that two overlapping requests of one terminal (a retry on a new connection
// while the first attempt is still being stored) are stored in arrival
// order. Requests of different devices never wait for each other. The zero
// value is ready; it is safe for concurrent use and holds no state for
// devices with no request in progress.
type deviceOrder struct {
	mu sync.Mutex
	// queues has an entry while a device's turn is held; waiters are the
	// requests queued behind the holder, oldest first.
	queues map[string]*deviceQueue
}

type deviceQueue struct {
	waiters []chan struct{}
}

// lock waits for device's turn. It returns ctx's error, without the turn,
// when ctx is done first; otherwise the caller must call unlock.
func (o *deviceOrder) lock(ctx context.Context, device string) error {
	o.mu.Lock()
	q, held := o.queues[device]
	if !held {
		if o.queues == nil {
			o.queues = make(map[string]*deviceQueue)
		}
		o.queues[device] = &deviceQueue{}
		o.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	q.waiters = append(q.waiters, turn)
	o.mu.Unlock()

	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	o.mu.Lock()
	select {
	case <-turn:
		// The turn was handed to us as ctx expired: pass it on.
		o.mu.Unlock()
		o.unlock(device)
	default:
		// Still queued, so q is still the device's live entry.
		q.waiters = slices.DeleteFunc(q.waiters, func(c chan struct{}) bool { return c == turn })
		o.mu.Unlock()
	}
	return ctx.Err()
}

// unlock hands device's turn to the oldest waiter, or forgets the device.
func (o *deviceOrder) unlock(device string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queues[device]
	if len(q.waiters) == 0 {
		delete(o.queues, device)
		return
	}
	next := q.waiters[0]
	q.waiters = slices.Delete(q.waiters, 0, 1)
	close(next)
}
