package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// orderGate keeps every device's records in order whatever sarama does with
// a record it gives up on.
//
// sarama keeps a partition's records in order while it retries, but it can
// fail a record and still store the ones queued behind it: its circuit
// breakers (three failed leader lookups open them for 10 s), an exhausted
// Producer.Retry.Max, a metadata lookup that timed out. A failed record that
// its terminal sends again then lands after newer records of the same
// device. The gate makes that impossible by construction: of the records
// with the same topic and key, only one is in sarama's hands at a time (the
// line's head); the others wait here, in arrival order, and follow once the
// head is stored or has failed for good (a permanent error: it goes to the
// error action). A head that fails with a retriable error is sent again
// after retryBackoff, as long as the producer runs; its input gives up on
// its own at kafka.delivery_timeout (no acknowledgement) and the record
// stays at the head of its line, so a re-send from the terminal can never
// overtake it. Records without a key have no device and bypass the gate.
//
// Records of different keys still travel together: sarama batches the heads
// of all lines of a partition into one request. What the gate costs is one
// Kafka round trip per record of one device: a device's records are stored
// at most one per round trip (docs/reliability.md).
//
// The gate's methods are safe for concurrent use. The feeder goroutine,
// started by newOrderGate and stopped by stop, is the only sender to sarama
// other than Produce.
type orderGate struct {
	input        chan<- *sarama.ProducerMessage
	retryBackoff time.Duration

	mu      sync.Mutex
	lines   map[string]*keyLine
	queue   []*sarama.ProducerMessage // heads the feeder sends next
	aborted error                     // set by abort: fail instead of retrying
	idle    chan struct{}             // closed when lines is empty; nil if nobody waits

	wake     chan struct{}
	quit     chan struct{}
	quitOnce sync.Once
	done     chan struct{}
}

// keyLine is the records of one topic and key that are not stored yet: the
// head (in sarama, in the feeder's queue or waiting for its retry) and the
// records behind it.
type keyLine struct {
	waiting []*sarama.ProducerMessage
	timer   *time.Timer // the head's retry, while it waits for it
	head    *sarama.ProducerMessage
}

func newOrderGate(input chan<- *sarama.ProducerMessage, retryBackoff time.Duration) *orderGate {
	g := &orderGate{
		input:        input,
		retryBackoff: retryBackoff,
		lines:        map[string]*keyLine{},
		wake:         make(chan struct{}, 1),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	go g.feed()
	return g
}

// lineKey is the gate's line for rec's topic and key; "" for a record
// without a key.
func lineKey(topic string, key []byte) string {
	if key == nil {
		return ""
	}
	return topic + "\x00" + string(key)
}

func pendingOf(msg *sarama.ProducerMessage) *pending { return msg.Metadata.(*pending) }

// admit takes msg into its line. It returns true when msg is its line's
// head and the caller must send it to sarama now (or call cancel), false
// when it waits behind an earlier record of its key.
func (g *orderGate) admit(msg *sarama.ProducerMessage) bool {
	k := pendingOf(msg).line
	if k == "" {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if l := g.lines[k]; l != nil {
		l.waiting = append(l.waiting, msg)
		return false
	}
	g.lines[k] = &keyLine{head: msg}
	return true
}

// handOver queues a head whose caller stopped waiting for sarama's input:
// the feeder sends it, in its place, and its done is called as usual.
func (g *orderGate) handOver(msg *sarama.ProducerMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.push(msg)
}

// cancel undoes admit for a head that will not be sent (the producer is
// closing): its done is never called, and the records that waited behind
// it fail with err, since storing them would put them before it.
func (g *orderGate) cancel(msg *sarama.ProducerMessage, err error) {
	k := pendingOf(msg).line
	if k == "" {
		return
	}
	g.mu.Lock()
	failed := g.drop(k)
	g.mu.Unlock()
	failAll(failed, err)
}

// stored completes msg: Kafka has it. The next record of its line goes.
func (g *orderGate) stored(msg *sarama.ProducerMessage) {
	g.finish(msg, nil)
}

// failed completes msg with err as classify returned it. A permanent error
// completes it (and the next record of its line goes); a retriable one
// sends it again after the back-off, or, once the gate is aborted, fails it
// and every record behind it.
func (g *orderGate) failed(msg *sarama.ProducerMessage, err error) {
	k := pendingOf(msg).line
	if k == "" || isPermanent(err) {
		g.finish(msg, err)
		return
	}
	g.mu.Lock()
	l := g.lines[k]
	if abortErr := g.aborted; abortErr != nil || l == nil {
		failed := g.drop(k)
		g.mu.Unlock()
		pendingOf(msg).complete(err)
		failAll(failed, abortErr)
		return
	}
	again := resend(msg)
	l.head = again
	l.timer = time.AfterFunc(g.retryBackoff, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if l.timer == nil {
			return // aborted meanwhile
		}
		l.timer = nil
		g.push(again)
	})
	g.mu.Unlock()
}

// finish calls msg's done with err and lets the next record of its line go.
func (g *orderGate) finish(msg *sarama.ProducerMessage, err error) {
	pd := pendingOf(msg)
	var failed []*sarama.ProducerMessage
	var abortErr error
	if pd.line != "" {
		g.mu.Lock()
		failed, abortErr = g.next(pd.line), g.aborted
		g.mu.Unlock()
	}
	pd.complete(err)
	failAll(failed, abortErr)
}

// failAll fails msgs with err.
func failAll(msgs []*sarama.ProducerMessage, err error) {
	for _, m := range msgs {
		pendingOf(m).complete(err)
	}
}

// next makes the first waiting record of line k its head and queues it for
// sarama, or removes the line. Once the gate is aborted nothing goes to
// sarama any more: it removes the line and returns the records waiting in
// it, for the caller to fail. g.mu is held.
func (g *orderGate) next(k string) []*sarama.ProducerMessage {
	l := g.lines[k]
	if l == nil {
		return nil
	}
	if len(l.waiting) == 0 || g.aborted != nil {
		return g.drop(k)
	}
	l.head = l.waiting[0]
	l.waiting[0] = nil
	l.waiting = l.waiting[1:]
	g.push(l.head)
	return nil
}

// drop removes line k and returns the records waiting in it. g.mu is held.
func (g *orderGate) drop(k string) []*sarama.ProducerMessage {
	l := g.lines[k]
	if l == nil {
		return nil
	}
	w := l.waiting
	l.waiting = nil
	l.head = nil
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	delete(g.lines, k)
	if len(g.lines) == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	return w
}

// push queues a head for the feeder. g.mu is held.
func (g *orderGate) push(msg *sarama.ProducerMessage) {
	g.queue = append(g.queue, msg)
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// feed sends queued heads to sarama. It never holds g.mu while sending:
// sarama's input can be full while sarama waits for the completion
// goroutines, which take g.mu.
func (g *orderGate) feed() {
	defer close(g.done)
	for {
		g.mu.Lock()
		var msg *sarama.ProducerMessage
		if len(g.queue) > 0 {
			msg = g.queue[0]
			g.queue[0] = nil
			g.queue = g.queue[1:]
		}
		g.mu.Unlock()
		if msg == nil {
			select {
			case <-g.wake:
				continue
			case <-g.quit:
				return
			}
		}
		select {
		case g.input <- msg:
		case <-g.quit:
			g.mu.Lock()
			g.queue = append([]*sarama.ProducerMessage{msg}, g.queue...)
			g.mu.Unlock()
			return
		}
	}
}

// waitIdle returns once no line is left (every keyed record completed), or
// with ctx's error.
func (g *orderGate) waitIdle(ctx context.Context) error {
	g.mu.Lock()
	if len(g.lines) == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abort stops the feeder and fails, with err, every record not in sarama's
// hands: the ones waiting in lines, queued for the feeder or waiting for a
// retry. Heads in sarama's hands fail with their line when sarama gives
// them back. Call it before closing sarama's input.
func (g *orderGate) abort(err error) {
	g.quitOnce.Do(func() { close(g.quit) })
	<-g.done
	g.mu.Lock()
	g.aborted = err
	inSarama := map[*sarama.ProducerMessage]bool{}
	for _, l := range g.lines {
		if l.head != nil {
			inSarama[l.head] = true
		}
	}
	for _, m := range g.queue {
		delete(inSarama, m) // queued, not sent
	}
	var failed []*sarama.ProducerMessage
	for k, l := range g.lines {
		if l.head != nil && l.timer == nil && inSarama[l.head] {
			// sarama has it: its result fails the rest of the line.
			failed = append(failed, l.waiting...)
			l.waiting = nil
			continue
		}
		if l.head != nil {
			failed = append(failed, l.head)
		}
		failed = append(failed, g.drop(k)...)
	}
	g.queue = nil
	g.mu.Unlock()
	failAll(failed, err)
}

// stop ends the feeder once nothing is queued (after waitIdle).
func (g *orderGate) stop() {
	g.quitOnce.Do(func() { close(g.quit) })
	<-g.done
}

// resend is a fresh copy of msg for sarama: a message sarama gave back
// carries its retry count and sequence state.
func resend(msg *sarama.ProducerMessage) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic:    msg.Topic,
		Key:      msg.Key,
		Value:    msg.Value,
		Headers:  msg.Headers,
		Metadata: msg.Metadata,
	}
}
