package broker

import (
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// queueAccounts bounds the QoS 1/2 messages mochi holds for subscribers:
// each session's in-flight store (cl.State.Inflight), which is where a
// message waits for a PUBACK and, for a disconnected persistent session,
// for the subscriber to come back. mochi caps it only by count (8,192 by
// default) and keeps a copy of the payload per subscriber, so ten offline
// sessions subscribed to "#" could hold gigabytes.
//
// Every message mochi adds (OnQosPublish) is counted against its session
// (mqtt.max_queued_messages, mqtt.max_queued_bytes) and against all
// sessions together (limits.max_queued_*, through the Limiter). Over a cap
// the oldest queued message is dropped, from the session for a session
// cap and from all sessions for the process-wide one; the new message is
// never the one dropped (mochi would put it back), which the validation of
// the caps (at least one message of mqtt.max_packet_bytes fits) makes
// possible. A dropped message is removed from mochi's store, so it is
// neither sent on reconnection nor re-sent, and counted by reason.
//
// mochi removes messages through several paths; PUBACK, expiry and clean
// sessions tell the hooks which, a full write queue does not (resync then
// compares with the store). Accounts are keyed by client id: a new
// connection taking a session over replaces the account of the old one.
// It is safe for concurrent use.
type queueAccounts struct {
	maxMsgs  int
	maxBytes int64
	total    Limiter // limits.max_queued_*; nil: no process-wide cap
	info     *int64  // mochi's Info.Inflight, kept right when we drop
	obs      LimitObserver
	log      *zap.Logger

	mu    sync.Mutex
	accts map[string]*queueAccount
	order fifo // all sessions, oldest first
	seq   uint64
	msgs  int64
	bytes int64
}

type queueAccount struct {
	cl      *mqtt.Client
	entries map[uint16]queueEntry
	order   fifo
	bytes   int64
}

type queueEntry struct {
	seq     uint64
	bytes   int64
	charged bool // holds room in total
}

// queueRef names an entry in a fifo; it is stale once its account no
// longer has an entry of that seq for the id.
type queueRef struct {
	acct *queueAccount
	id   uint16
	seq  uint64
}

func (r queueRef) live() bool {
	e, ok := r.acct.entries[r.id]
	return ok && e.seq == r.seq
}

// fifo is a queue of refs with lazy deletion: stale refs are skipped when
// popped and squeezed out when they outnumber live ones.
type fifo struct {
	refs []queueRef
	head int
}

func (f *fifo) push(r queueRef, live int) {
	f.refs = append(f.refs, r)
	if n := len(f.refs) - f.head; n > 64 && n > 2*live {
		kept := f.refs[:0]
		for _, r := range f.refs[f.head:] {
			if r.live() {
				kept = append(kept, r)
			}
		}
		clear(f.refs[len(kept):])
		f.refs, f.head = kept, 0
	}
}

// pop returns the oldest live ref other than skip.
func (f *fifo) pop(skip queueRef) (queueRef, bool) {
	for i := f.head; i < len(f.refs); i++ {
		r := f.refs[i]
		if !r.live() {
			if i == f.head {
				f.refs[i] = queueRef{}
				f.head++
			}
			continue
		}
		if r == skip {
			continue
		}
		if i == f.head {
			f.refs[i] = queueRef{}
			f.head++
		}
		return r, true
	}
	return queueRef{}, false
}

func newQueueAccounts(maxMsgs int, maxBytes int64, total Limiter, info *int64, obs LimitObserver, log *zap.Logger) *queueAccounts {
	return &queueAccounts{maxMsgs: maxMsgs, maxBytes: maxBytes, total: total, info: info, obs: obs, log: log,
		accts: map[string]*queueAccount{}}
}

// account returns cl's account, replacing one of an older connection with
// the same client id.
func (q *queueAccounts) account(cl *mqtt.Client) *queueAccount {
	a := q.accts[cl.ID]
	if a != nil && a.cl == cl {
		return a
	}
	if a != nil {
		q.release(a)
	}
	a = &queueAccount{cl: cl, entries: map[uint16]queueEntry{}}
	q.accts[cl.ID] = a
	return a
}

// added counts a message mochi has just stored for cl and makes room for
// it under the caps.
func (q *queueAccounts) added(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return // our own acks of inbound QoS 2 hold no payload
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.add(q.account(cl), pk)
}

func (q *queueAccounts) add(a *queueAccount, pk packets.Packet) {
	n := messageBytes(pk.TopicName, pk.Payload, pk.Properties)
	if old, ok := a.entries[pk.PacketID]; ok { // a re-send, or an id mochi freed without telling
		q.drop(a, pk.PacketID, old)
	}
	q.seq++
	ref := queueRef{acct: a, id: pk.PacketID, seq: q.seq}
	e := queueEntry{seq: q.seq, bytes: n}
	a.entries[pk.PacketID] = e
	a.bytes += n
	q.msgs++
	q.bytes += n
	a.order.push(ref, len(a.entries))
	q.order.push(ref, int(q.msgs))

	for len(a.entries) > q.maxMsgs || a.bytes > q.maxBytes {
		old, ok := a.order.pop(ref)
		if !ok {
			break
		}
		q.evict(old, ReasonQueueSession)
	}
	if q.total == nil {
		return
	}
	for !q.total.TryAcquire(1, n) {
		old, ok := q.order.pop(ref)
		if !ok {
			return // alone over the cap: not charged (validation prevents it)
		}
		q.evict(old, ReasonQueueTotal)
	}
	e.charged = true
	a.entries[pk.PacketID] = e
}

// evict drops a live entry from its account and from mochi's store.
func (q *queueAccounts) evict(r queueRef, reason string) {
	e := r.acct.entries[r.id]
	q.drop(r.acct, r.id, e)
	cl := r.acct.cl
	pk, ok := cl.State.Inflight.Get(r.id)
	if !ok || pk.FixedHeader.Type != packets.Publish {
		return // already gone, or a QoS 2 flow past PUBREC (no payload left)
	}
	if cl.State.Inflight.Delete(r.id) {
		atomic.AddInt64(q.info, -1)
		cl.State.Inflight.IncreaseSendQuota()
	}
	q.obs.BrokerDropped(reason)
	q.log.Info("queued message dropped", zap.String("reason", reason), zap.String("client_id", cl.ID),
		zap.Bool("connected", !cl.Closed()), zap.String("mqtt_topic", pk.TopicName), zap.Int64("bytes", e.bytes))
}

// drop removes an entry from the counts.
func (q *queueAccounts) drop(a *queueAccount, id uint16, e queueEntry) {
	delete(a.entries, id)
	a.bytes -= e.bytes
	q.msgs--
	q.bytes -= e.bytes
	if e.charged {
		q.total.Release(1, e.bytes)
	}
}

// removed forgets a message mochi has removed from cl's store (PUBACK,
// expiry, clean session). If the id is in the store again, it already
// names a newer message, which stays counted.
func (q *queueAccounts) removed(cl *mqtt.Client, id uint16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	a := q.accts[cl.ID]
	if a == nil || a.cl != cl {
		return
	}
	e, ok := a.entries[id]
	if !ok {
		return
	}
	if _, again := cl.State.Inflight.Get(id); again {
		return
	}
	q.drop(a, id, e)
}

// resync makes cl's account match its store: it forgets messages no longer
// there and counts ones it has not seen (inherited from a previous
// connection).
func (q *queueAccounts) resync(cl *mqtt.Client) {
	if cl.Net.Inline {
		return
	}
	stored := cl.State.Inflight.GetAll(false)
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(stored) == 0 {
		// Nothing queued (every new or clean session): an idle connection
		// holds no account; added makes one with the first message.
		if a := q.accts[cl.ID]; a != nil {
			q.release(a)
			delete(q.accts, cl.ID)
		}
		return
	}
	a := q.account(cl)
	have := make(map[uint16]bool, len(stored))
	for _, pk := range stored {
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		have[pk.PacketID] = true
		if _, ok := a.entries[pk.PacketID]; !ok {
			q.add(a, pk)
		}
	}
	for id, e := range a.entries {
		if !have[id] {
			q.drop(a, id, e)
		}
	}
}

// forget drops cl's account: its session ended and mochi discards its store.
func (q *queueAccounts) forget(cl *mqtt.Client) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.accts[cl.ID]; a != nil && a.cl == cl {
		q.release(a)
		delete(q.accts, cl.ID)
	}
}

// release uncounts every entry of a.
func (q *queueAccounts) release(a *queueAccount) {
	for id, e := range a.entries {
		q.drop(a, id, e)
	}
	a.order = fifo{}
}

// usage returns the messages and bytes queued in all sessions, and the
// number of sessions with an account.
func (q *queueAccounts) usage() (msgs, bytes int64, sessions int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs, q.bytes, len(q.accts)
}
