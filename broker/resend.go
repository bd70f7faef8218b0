package broker

import (
	"hash/fnv"
	"sync"
	"time"
)

// resendLog remembers, per client id, the outcome of its most recent QoS 1/2
// messages by packet id, so that a re-send with the DUP flag (a terminal
// that reconnects and re-sends what it saw no PUBACK for) is answered from
// the first copy instead of being stored twice. A client can only have
// max_inflight messages unacknowledged at a time, so a ring of that many
// entries per client is enough. Safe for concurrent use.
type resendLog struct {
	size int
	ttl  time.Duration

	mu      sync.Mutex
	clients map[string]*clientLog
}

// clientLog is one client id's ring of recent messages.
type clientLog struct {
	mu      sync.Mutex
	size    int
	ring    []resendEntry // nil until the first record
	next    int
	touched time.Time // under resendLog.mu
}

type resendEntry struct {
	used bool
	id   uint16
	sum  uint64  // of topic and payload: a DUP must be the same message
	t    *ticket // while the first copy is in flight; nil once settled
	ok   bool    // settled: the first copy was stored
}

func newResendLog(size int, ttl time.Duration) *resendLog {
	return &resendLog{size: size, ttl: ttl, clients: map[string]*clientLog{}}
}

// client returns the log of a client id, creating it.
func (r *resendLog) client(id string) *clientLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[id]
	if c == nil {
		// The ring is made by the first record: a connection that never
		// sends QoS 1/2 costs no ring.
		c = &clientLog{size: r.size}
		r.clients[id] = c
	}
	c.touched = time.Now()
	return c
}

// forget drops a client id's log (its session ended for good).
func (r *resendLog) forget(id string) {
	r.mu.Lock()
	delete(r.clients, id)
	r.mu.Unlock()
}

// sweep drops the logs of clients not seen for the ttl.
func (r *resendLog) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.clients {
		if now.Sub(c.touched) > r.ttl {
			delete(r.clients, id)
		}
	}
}

// messageSum identifies a message's content.
func messageSum(topic string, payload []byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum64()
}

// record notes a new message (t.sum set) under its packet id.
func (c *clientLog) record(t *ticket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring == nil {
		c.ring = make([]resendEntry, c.size)
	}
	for i := range c.ring {
		if c.ring[i].used && c.ring[i].id == t.id {
			c.ring[i] = resendEntry{used: true, id: t.id, sum: t.sum, t: t}
			return
		}
	}
	c.ring[c.next] = resendEntry{used: true, id: t.id, sum: t.sum, t: t}
	c.next = (c.next + 1) % len(c.ring)
}

// settle records t's outcome and lets go of the ticket.
func (c *clientLog) settle(t *ticket, stored bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ring {
		if e := &c.ring[i]; e.used && e.t == t {
			e.t, e.ok = nil, stored
			return
		}
	}
}

// original finds the first copy of a re-sent message: the ticket still in
// flight, or done=true when it was stored. It returns (nil, false) when the
// message must be processed as new: unknown, different content, or its
// first copy failed.
func (c *clientLog) original(id uint16, sum uint64) (inflight *ticket, stored bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ring {
		e := &c.ring[i]
		if !e.used || e.id != id || e.sum != sum {
			continue
		}
		if e.t == nil {
			return nil, e.ok
		}
		if e.t.isDone() {
			return nil, e.t.err == nil
		}
		return e.t, false
	}
	return nil, false
}

// settleIfDone records t's outcome if it has one. A ticket still on its way
// to Kafka stays in the log: a re-send waits for its real outcome.
func (c *clientLog) settleIfDone(t *ticket) {
	if t.isDone() {
		c.settle(t, t.err == nil)
	}
}
