package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Re-sending after a connection loss is done here, not by paho: paho's own
// resume (CleanSession=false, AutoReconnect) completes the original tokens as
// successful as soon as it re-queues their packets (messageIds.claimID calls
// flowComplete on the old token), so a message would count as acknowledged
// before any PUBACK came back. We use CleanSession=true, which makes paho fail
// every outstanding token on a connection loss, collect the failed messages
// in order and publish them again, first, on the new connection. Every such
// message is listed as resent in the acked file.

// simDevice is one simulated MQTT terminal. Its generator state (seq,
// vehicle) belongs to its connection's publishing goroutine; its ledger to the
// connection's awaiting goroutine while the load runs.
type simDevice struct {
	id     string
	seq    int64 // last seq generated
	v      *vehicle
	ledger *ledger
}

// outMsg is one MQTT message on its way. barrier marks the publisher's
// request for the messages that failed since the last barrier.
type outMsg struct {
	dev      *simDevice
	seq      int64
	typ      int
	payload  []byte
	attempts int
	start    time.Time // latency counts from here
	slot     time.Time // open loop (--device-rate): when it was due to be sent
	token    mqtt.Token
	barrier  bool
}

// mqttLoad is the MQTT side of a run.
type mqttLoad struct {
	cfg        *runConfig
	pace       *pacer
	stats      *sourceStats
	conns      []*mqttConn
	connectSem chan struct{}
	senderDone func() // called once per connection when it has no new message to send
}

func newMQTTLoad(cfg *runConfig, pace *pacer) *mqttLoad {
	l := &mqttLoad{cfg: cfg, pace: pace, stats: newSourceStats("mqtt"),
		connectSem: make(chan struct{}, cfg.connectParallel)}
	seedRNG := rand.New(rand.NewPCG(cfg.seed, 1))
	l.conns = make([]*mqttConn, cfg.connections)
	for i := range l.conns {
		c := &mqttConn{
			load:     l,
			index:    i,
			rng:      rand.New(rand.NewPCG(cfg.seed, uint64(i)+2)),
			sem:      make(chan struct{}, cfg.inflight),
			inflight: make(chan *outMsg, cfg.inflight+1),
			resendCh: make(chan []*outMsg),
			kick:     make(chan struct{}, 1),
			bufs:     make(chan []byte, cfg.inflight+1),
		}
		if cfg.connections == cfg.devices {
			c.clientID = deviceNo(cfg, i)
		} else {
			c.clientID = fmt.Sprintf("%sSIM-C%05d", cfg.prefix, cfg.deviceOffset+i+1)
		}
		l.conns[i] = c
	}
	// Device d goes to connection d mod C: every connection gets N/C or N/C+1.
	for d := 0; d < cfg.devices; d++ {
		id := deviceNo(cfg, d)
		c := l.conns[d%cfg.connections]
		c.devices = append(c.devices, &simDevice{id: id, v: newVehicle(seedRNG),
			ledger: newLedger(id, "mqtt", len(cfg.mix.types))})
	}
	return l
}

// deviceNo is the device number of MQTT device i (0-based).
func deviceNo(cfg *runConfig, i int) string {
	return fmt.Sprintf("%sSIM-%06d", cfg.prefix, cfg.deviceOffset+i+1)
}

// connectAll connects every client (--warmup) and returns how many are up.
func (l *mqttLoad) connectAll(ctx context.Context) int {
	var wg sync.WaitGroup
	var up atomic.Int64
	for _, c := range l.conns {
		wg.Go(func() {
			if c.connect(ctx) == nil {
				up.Add(1)
			}
		})
	}
	wg.Wait()
	return int(up.Load())
}

// run runs every connection until it is done.
func (l *mqttLoad) run(genCtx, hardCtx context.Context) {
	var wg sync.WaitGroup
	for _, c := range l.conns {
		c.doneSending = sync.OnceFunc(func() {
			if l.senderDone != nil {
				l.senderDone()
			}
		})
		wg.Go(func() { c.run(genCtx, hardCtx) })
	}
	wg.Wait()
	var dw sync.WaitGroup
	for _, c := range l.conns {
		if c.client != nil {
			dw.Go(func() { c.client.Disconnect(250) })
		}
	}
	dw.Wait()
}

// ledgers returns the devices' ledgers in device order. Only after run.
func (l *mqttLoad) ledgers() []*ledger {
	out := make([]*ledger, l.cfg.devices)
	for d := range out {
		c := l.conns[d%l.cfg.connections]
		out[d] = c.devices[d/l.cfg.connections].ledger
	}
	return out
}

// mqttConn is one MQTT connection and the devices it carries. Two goroutines
// drive it: run publishes (generation, pacing, the in-flight window,
// reconnects) and await takes the tokens back in publish order.
type mqttConn struct {
	load     *mqttLoad
	index    int
	clientID string
	devices  []*simDevice
	rr       int // next device, round robin
	rng      *rand.Rand
	client   mqtt.Client
	up       bool      // connected, as far as run knows
	sched    *schedule // open loop (--device-rate), else nil

	sem      chan struct{} // the in-flight window
	inflight chan *outMsg  // publish order, to await
	resendCh chan []*outMsg
	kick     chan struct{} // await → run: broken, or nothing pending
	bufs     chan []byte   // await → run: payloads of acked messages, for reuse
	broken   atomic.Bool   // a message failed or the connection was lost
	pending  atomic.Int64  // messages handed to await and not yet settled

	awaitLeft   []*outMsg // failed messages await held when it ended
	doneSending func()    // the connection will generate no new message
}

func (c *mqttConn) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// connect makes one connection attempt.
func (c *mqttConn) connect(ctx context.Context) error {
	l := c.load
	select {
	case l.connectSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.connectSem }()
	if c.client == nil {
		opts := mqtt.NewClientOptions().
			AddBroker(brokerURL(l.cfg.mqttAddr)).
			// A load tool: the broker's certificate is not checked (ssl://,
			// wss://), as for --https.
			SetTLSConfig(&tls.Config{InsecureSkipVerify: true}).
			SetClientID(c.clientID).
			SetUsername(l.cfg.username).
			SetPassword(l.cfg.password).
			SetProtocolVersion(4).
			SetCleanSession(true). // see the comment at the top of this file
			SetAutoReconnect(false).
			SetConnectRetry(false).
			SetKeepAlive(l.cfg.keepAlive).
			SetConnectTimeout(l.cfg.connectTimeout).
			// paho's WriteTimeout bounds only how long Publish waits to hand
			// a packet to the writer goroutine. With at most --inflight
			// messages outstanding that is quick unless the connection just
			// died: a Publish racing paho's connection-loss handling waits
			// for a writer that is gone, the whole timeout (no timeout: for
			// ever).
			SetWriteTimeout(l.cfg.publishTimeout).
			SetOrderMatters(false).
			SetConnectionLostHandler(func(_ mqtt.Client, err error) {
				l.stats.connLost.Add(1)
				l.stats.connected.Add(-1)
				l.stats.noteError("connection lost: " + errText(err))
				c.broken.Store(true)
				c.signal()
			})
		c.client = mqtt.NewClient(opts)
	}
	tok := c.client.Connect()
	var err error
	select {
	case <-tok.Done():
		err = tok.Error()
	case <-time.After(l.cfg.connectTimeout + time.Second):
		err = fmt.Errorf("connect timed out")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		l.stats.connFails.Add(1)
		l.stats.noteError("connect: " + errText(err))
		return err
	}
	c.up = true
	l.stats.connected.Add(1)
	return nil
}

// reconnect drops the client's connection and connects again, with backoff,
// until it succeeds or ctx ends.
func (c *mqttConn) reconnect(ctx context.Context) bool {
	if c.client != nil && c.client.IsConnected() {
		c.client.Disconnect(0)
		c.load.stats.connected.Add(-1)
	}
	c.up = false
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if c.connect(ctx) == nil {
			return true
		}
		d := backoff/2 + time.Duration(c.rng.Int64N(int64(backoff)))
		if sleepCtx(ctx, d) != nil {
			break
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return false
}

// hasMore reports whether a device still has messages to send.
func (c *mqttConn) hasMore() bool {
	if len(c.devices) == 0 {
		return false
	}
	m := c.load.cfg.messages
	return m == 0 || c.devices[c.rr].seq < m
}

// generate makes the next device's next message.
func (c *mqttConn) generate() *outMsg {
	cfg := c.load.cfg
	d := c.devices[c.rr]
	c.rr = (c.rr + 1) % len(c.devices)
	d.seq++
	d.v.step(c.rng)
	t := cfg.mix.pick(c.rng)
	h := reportHeader{typ: cfg.mix.types[t], device: d.id, ts: time.Now().UnixMilli(), seq: d.seq, run: cfg.runID}
	var buf []byte
	select {
	case buf = <-c.bufs:
	default:
		buf = make([]byte, 0, cfg.size+64)
	}
	buf = appendReport(buf[:0], h, d.v, c.rng, cfg.size)
	return &outMsg{dev: d, seq: d.seq, typ: t, payload: buf}
}

// acquire takes a slot of the in-flight window.
func (c *mqttConn) acquire(ctx context.Context) bool {
	select {
	case c.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// publish sends m (holding a window slot) and hands it to await.
func (c *mqttConn) publish(m *outMsg) {
	st := c.load.stats
	m.attempts++
	if m.attempts > 1 {
		st.resent.Add(1)
	}
	st.sent.Add(1)
	st.inflight.Add(1)
	c.pending.Add(1)
	m.start = time.Now()
	if !m.slot.IsZero() && m.attempts == 1 {
		m.start = m.slot // open loop: latency counts from the scheduled send time
	}
	m.token = c.client.Publish(c.load.cfg.topic, byte(c.load.cfg.qos), false, m.payload)
	c.inflight <- m
}

// run is the publishing goroutine of the connection.
func (c *mqttConn) run(genCtx, hardCtx context.Context) {
	cfg := c.load.cfg
	defer c.doneSending()
	if !c.up && c.connect(genCtx) != nil && (!cfg.reconnect || !c.reconnect(genCtx)) {
		return // its devices send nothing
	}
	awaitDone := make(chan struct{})
	go func() {
		defer close(awaitDone)
		c.await(hardCtx)
	}()
	left := c.publishLoop(genCtx, hardCtx)
	close(c.inflight)
	<-awaitDone
	c.settleUnsent(append(c.awaitLeft, left...))
}

// publishLoop publishes until there is nothing left to send and nothing
// pending, and returns the messages it could not send.
func (c *mqttConn) publishLoop(genCtx, hardCtx context.Context) []*outMsg {
	cfg := c.load.cfg
	var queue []*outMsg // to re-send, in their original order
	for {
		if c.broken.Load() {
			c.inflight <- &outMsg{barrier: true}
			failed := <-c.resendCh
			queue = append(failed, queue...)
			if !cfg.reconnect || !c.reconnect(hardCtx) {
				return queue
			}
			continue
		}
		if len(queue) > 0 {
			if c.load.pace.Wait(hardCtx) != nil || !c.acquire(hardCtx) {
				return queue
			}
			m := queue[0]
			queue = queue[1:]
			c.publish(m)
			continue
		}
		if genCtx.Err() == nil && c.hasMore() {
			var slot time.Time
			if c.sched != nil {
				var err error
				if slot, err = c.sched.wait(genCtx); err != nil {
					continue
				}
			}
			if c.load.pace.Wait(genCtx) != nil || !c.acquire(genCtx) {
				continue
			}
			m := c.generate()
			m.slot = slot
			c.publish(m)
			continue
		}
		// Nothing new to send: wait for the outstanding acks, or for a
		// failure whose messages must be sent again.
		c.doneSending()
		if c.pending.Load() == 0 {
			return nil
		}
		select {
		case <-c.kick:
		case <-hardCtx.Done():
			return nil
		}
	}
}

// await is the awaiting goroutine: it takes the messages in publish order,
// waits for each token, and records the outcome. A failed message is kept
// for the publisher, which asks for them with a barrier.
func (c *mqttConn) await(hardCtx context.Context) {
	st := c.load.stats
	qos0 := c.load.cfg.qos == 0
	var failed []*outMsg
	for m := range c.inflight {
		if m.barrier {
			c.broken.Store(false)
			c.resendCh <- failed
			failed = nil
			continue
		}
		completed := true
		select {
		case <-m.token.Done():
		case <-hardCtx.Done():
			completed = false
		}
		<-c.sem
		st.inflight.Add(-1)
		switch {
		case !completed:
			st.noteError("no ack before the end of --drain")
			failed = append(failed, m)
		case m.token.Error() != nil:
			st.failed.Add(1)
			st.noteError("publish: " + errText(m.token.Error()))
			failed = append(failed, m)
			c.broken.Store(true)
		default:
			st.ack(c.index, time.Since(m.start), 1)
			m.dev.ledger.settle(m.typ, m.seq, !qos0, m.attempts)
			// paho is done with a payload once its token completed.
			select {
			case c.bufs <- m.payload:
			default:
			}
			m.payload = nil
		}
		if c.pending.Add(-1) == 0 || c.broken.Load() {
			c.signal()
		}
	}
	c.awaitLeft = failed
}

// settleUnsent records messages that were never acknowledged, and counts
// them. Called once both goroutines are done.
func (c *mqttConn) settleUnsent(ms []*outMsg) {
	for _, m := range ms {
		m.dev.ledger.settle(m.typ, m.seq, false, m.attempts)
	}
	c.load.stats.unacked.Add(int64(len(ms)))
}

// brokerURL is --mqtt as paho takes it: host:port is MQTT over TCP; a URL
// (tcp://, ssl://, ws://, wss://) is used as it is.
func brokerURL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "tcp://" + addr
}
