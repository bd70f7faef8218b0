package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// ackStore is paho's ordered in-memory session store, watched: paho puts a
// QoS 1 PUBLISH in it before sending and deletes it when the PUBACK arrives,
// and re-sends (with DUP set) what is still in it when a session resumes.
// The store is therefore the truth about what was acknowledged. paho's
// tokens are not: on resume paho completes the old tokens as if they had
// succeeded (messageIds.claimID calls flowComplete).
type ackStore struct {
	*paho.OrderedMemoryStore
	mu      sync.Mutex
	pending map[string]int64 // outbound key → seq awaiting its PUBACK
	put     map[int64]bool   // seqs handed to paho's session
	acked   map[int64]bool
	resent  map[int64]bool // seqs pending when the session resumed
}

func newAckStore() *ackStore {
	return &ackStore{OrderedMemoryStore: paho.NewOrderedMemoryStore(), pending: map[string]int64{},
		put: map[int64]bool{}, acked: map[int64]bool{}, resent: map[int64]bool{}}
}

func (s *ackStore) Put(key string, m packets.ControlPacket) {
	if pub, ok := m.(*packets.PublishPacket); ok {
		var v struct{ Seq int64 }
		_ = json.Unmarshal(pub.Payload, &v)
		s.mu.Lock()
		s.pending[key] = v.Seq
		s.put[v.Seq] = true
		s.mu.Unlock()
	}
	s.OrderedMemoryStore.Put(key, m)
}

func (s *ackStore) Del(key string) {
	s.mu.Lock()
	if seq, ok := s.pending[key]; ok {
		delete(s.pending, key)
		s.acked[seq] = true
	}
	s.mu.Unlock()
	s.OrderedMemoryStore.Del(key)
}

// resuming records that what is pending now is about to be re-sent.
func (s *ackStore) resuming() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seq := range s.pending {
		s.resent[seq] = true
	}
	return len(s.pending)
}

func (s *ackStore) inflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *ackStore) wasPut(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put[seq]
}

func (s *ackStore) snapshot() (acked, resent map[int64]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked, resent = map[int64]bool{}, map[int64]bool{}
	for k := range s.acked {
		acked[k] = true
	}
	for k := range s.resent {
		resent[k] = true
	}
	return acked, resent
}

// resumingTerminal is a paho MQTT 3.1.1 client with a persistent session
// (CleanSession false) that reconnects by hand: on each Connect paho
// re-sends every unacknowledged PUBLISH with the DUP flag, before anything
// new.
type resumingTerminal struct {
	t      *testing.T
	device string
	run    string
	store  *ackStore
	client paho.Client
	lost   chan struct{}
	connMu sync.RWMutex // held for writing while (re)connecting
}

func newResumingTerminal(t *testing.T, addr, device, run string) *resumingTerminal {
	rt := &resumingTerminal{t: t, device: device, run: run, store: newAckStore(), lost: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(device).
		SetProtocolVersion(4).SetCleanSession(false).SetStore(rt.store).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).
		SetWriteTimeout(2 * time.Second).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) {
			select {
			case rt.lost <- struct{}{}:
			default:
			}
		})
	rt.client = paho.NewClient(opts)
	t.Cleanup(func() {
		if rt.client.IsConnected() {
			rt.client.Disconnect(100)
		}
	})
	return rt
}

// connect connects (resuming the session), retrying for up to 30 s, and
// returns how many messages paho re-sends.
func (rt *resumingTerminal) connect() int {
	rt.t.Helper()
	n, err := rt.reconnect()
	if err != nil {
		rt.t.Fatal(err)
	}
	return n
}

// reconnect is connect for goroutines other than the test's.
func (rt *resumingTerminal) reconnect() (resent int, err error) {
	rt.connMu.Lock()
	defer rt.connMu.Unlock()
	resent = rt.store.resuming()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok := rt.client.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			return resent, nil
		}
		if time.Now().After(deadline) {
			return resent, fmt.Errorf("%s: reconnect: %v", rt.device, tok.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (rt *resumingTerminal) payload(seq int64) string {
	return fmt.Sprintf(`{"type":"log","device_no":%q,"seq":%d,"run":%q,"ts":%d}`, rt.device, seq, rt.run, time.Now().UnixMilli())
}

// publish hands seq to paho's session and reports whether it took it (it
// is then in the store and will be sent, or re-sent on resume, until
// acknowledged). It does not wait for the PUBACK.
func (rt *resumingTerminal) publish(seq int64) bool {
	rt.connMu.RLock()
	defer rt.connMu.RUnlock()
	if !rt.client.IsConnected() {
		return false
	}
	rt.client.Publish("report", 1, false, rt.payload(seq))
	return rt.store.wasPut(seq)
}

// waitAcked waits until nothing is pending.
func (rt *resumingTerminal) waitAcked(timeout time.Duration) {
	rt.t.Helper()
	waitFor(rt.t, timeout, rt.device+": every message acknowledged", func() error {
		if n := rt.store.inflight(); n > 0 {
			return fmt.Errorf("%d awaiting PUBACK", n)
		}
		return nil
	})
}

// deviceSeqs reads the seqs of device's records of run in message-log, in
// partition order (one key, one partition).
func deviceSeqs(t *testing.T, kc *kafkatest.Cluster, device, run string) []int64 {
	t.Helper()
	p, err := sarama.NewMurmur2Partitioner("message-log").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(device)}, topicPartitions)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range readPartition(t, kc, "message-log", p) {
		if r.Key != device {
			continue
		}
		v, err := r.report()
		if err != nil || v.Run != run {
			continue
		}
		seqs = append(seqs, v.Seq)
	}
	return seqs
}

// streamCheck is the verdict on one device's records.
type streamCheck struct {
	records  int
	dups     int     // records repeating an earlier seq of a re-sent message
	lost     []int64 // acknowledged, not in Kafka
	reorders []string
	badDups  []int64 // repeated although never re-sent
}

func (c streamCheck) ok() bool { return len(c.lost)+len(c.reorders)+len(c.badDups) == 0 }

func (c streamCheck) String() string {
	return fmt.Sprintf("%d records, %d duplicates of re-sent messages; lost %v; reordered %v; duplicates never re-sent %v",
		c.records, c.dups, c.lost, c.reorders, c.badDups)
}

// checkStream checks a device's seqs in partition order: every acknowledged
// seq is there; each seq's first occurrence comes after every smaller one's
// (duplicates of re-sent messages may repeat an old seq later, which is not
// a reordering); a seq repeats only if it was re-sent.
func checkStream(seqs []int64, acked, resent map[int64]bool) streamCheck {
	c := streamCheck{records: len(seqs)}
	seen := map[int64]bool{}
	var greatest int64
	for i, q := range seqs {
		if seen[q] {
			if resent[q] {
				c.dups++
			} else {
				c.badDups = append(c.badDups, q)
			}
			continue
		}
		if i > 0 && q < greatest {
			c.reorders = append(c.reorders, fmt.Sprintf("%d after %d", q, greatest))
		}
		seen[q] = true
		greatest = max(greatest, q)
	}
	for q := range acked {
		if !seen[q] {
			c.lost = append(c.lost, q)
		}
	}
	sort.Slice(c.lost, func(i, j int) bool { return c.lost[i] < c.lost[j] })
	return c
}

// TestResendWithDupAfterLostAcks: a terminal with a persistent session
// publishes while its PUBACKs are lost on the way (the gateway stored the
// messages), the connection drops, and paho re-sends the unacknowledged
// messages with the DUP flag on reconnect. Every acknowledged message is in
// Kafka, nothing is reordered, and only re-sent messages may be there twice.
// Without de-duplication each re-sent message is stored twice; with
// de-duplication of (client, packet id) re-sends, once.
func TestResendWithDupAfterLostAcks(t *testing.T) {
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	px := startProxy(t, g.MQTTAddr)
	run := newRunID()
	rt := newResumingTerminal(t, px.Addr(), "RS-"+run+"-LOST", run)
	rt.connect()

	const acked1, lost, acked2 = 20, 20, 20
	var seq int64
	for range acked1 {
		seq++
		if !rt.publish(seq) {
			t.Fatalf("seq %d not taken", seq)
		}
	}
	rt.waitAcked(15 * time.Second)

	// The gateway stores these, but its PUBACKs are dropped.
	px.DropAcks(true)
	for range lost {
		seq++
		if !rt.publish(seq) {
			t.Fatalf("seq %d not taken", seq)
		}
	}
	waitFor(t, 30*time.Second, "the messages whose acks are lost stored", func() error {
		got := deviceSeqs(t, kc, rt.device, run)
		if len(got) < int(seq) {
			return fmt.Errorf("%d of %d in Kafka", len(got), seq)
		}
		return nil
	})
	if n := rt.store.inflight(); n != lost {
		t.Fatalf("%d messages await a PUBACK, want the %d whose acks were dropped", n, lost)
	}
	dupsBefore := px.dups.Load()
	px.Cut()
	waitFor(t, 10*time.Second, "paho notices the cut", func() error {
		if rt.client.IsConnected() {
			return errNotYet
		}
		return nil
	})
	px.DropAcks(false)
	resent := rt.connect()
	for range acked2 {
		seq++
		if !rt.publish(seq) {
			t.Fatalf("seq %d not taken", seq)
		}
	}
	rt.waitAcked(30 * time.Second)
	if d := px.dups.Load() - dupsBefore; d != int64(resent) || resent != lost {
		t.Errorf("paho re-sent %d messages with DUP set, %d were pending; want %d", d, resent, lost)
	}

	acked, resentSet := rt.store.snapshot()
	if len(acked) != int(seq) {
		t.Errorf("%d of %d messages acknowledged", len(acked), seq)
	}
	c := checkStream(deviceSeqs(t, kc, rt.device, run), acked, resentSet)
	if !c.ok() {
		t.Errorf("%s: %s", rt.device, c)
	}
	t.Logf("%s: %d re-sent with DUP; %s", rt.device, resent, c)
	if c.dups > 0 {
		t.Logf("the gateway stored %d re-sent messages a second time: no de-duplication of DUP re-sends", c.dups)
	}
}

// TestResendWithDupUnderCuts cuts a persistent-session terminal's
// connection again and again while it publishes with up to 16 messages in
// flight. Each time some unacknowledged messages were stored and others had
// not reached the gateway at all; paho re-sends all of them with DUP set.
// Every acknowledged message must be in Kafka exactly in order (first
// occurrences), duplicates only of re-sent messages: a gateway that dropped
// DUP re-sends as duplicates would lose the messages whose first copy never
// arrived.
func TestResendWithDupUnderCuts(t *testing.T) {
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	px := startProxy(t, g.MQTTAddr)
	run := newRunID()
	rt := newResumingTerminal(t, px.Addr(), "RS-"+run+"-CUTS", run)
	rt.connect()

	const total, window, cuts = 1200, 16, 6
	done := make(chan struct{})
	var resentTotal, reconnects int
	var reconnectErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-rt.lost:
				n, err := rt.reconnect()
				if err != nil {
					reconnectErr = err
					return
				}
				resentTotal += n
				reconnects++
			}
		}
	})
	// Cut every total/(cuts+1) messages taken, while messages are in flight.
	var seq int64
	nextCut := int64(total / (cuts + 1))
	began := time.Now()
	for seq < total {
		if time.Since(began) > 90*time.Second {
			t.Fatalf("only %d of %d messages taken in 90 s", seq, total)
		}
		if rt.store.inflight() >= window {
			time.Sleep(time.Millisecond)
			continue
		}
		if !rt.publish(seq + 1) {
			time.Sleep(5 * time.Millisecond) // disconnected: wait for the reconnect
			continue
		}
		seq++
		if seq == nextCut {
			px.Cut()
			nextCut += total / (cuts + 1)
		}
	}
	rt.waitAcked(60 * time.Second)
	close(done)
	wg.Wait()
	if reconnectErr != nil {
		t.Fatal(reconnectErr)
	}

	acked, resent := rt.store.snapshot()
	if len(acked) != total {
		t.Errorf("%d of %d messages acknowledged", len(acked), total)
	}
	c := checkStream(deviceSeqs(t, kc, rt.device, run), acked, resent)
	if !c.ok() {
		t.Errorf("%s: %s", rt.device, c)
	}
	t.Logf("%s: %d reconnects, %d messages re-sent with DUP (proxy saw %d DUP publishes); %s",
		rt.device, reconnects, resentTotal, px.dups.Load(), c)
	if reconnects < cuts-1 {
		t.Errorf("only %d reconnects for %d cuts", reconnects, cuts)
	}
}

// TestResendWithReusedPacketID speaks MQTT packet by packet to show the case
// a (client, packet id) de-duplication must get right. A client may reuse a
// packet id as soon as its PUBACK came; when a later message with that id is
// lost on the way and re-sent with DUP set, it is new to the gateway and must
// be stored, although the gateway stored an earlier message with the same
// client and packet id. And a true re-send (stored, PUBACK lost) may be stored
// twice, never out of order.
func TestResendWithReusedPacketID(t *testing.T) {
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	run := newRunID()
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("mqtt-v%d", version), func(t *testing.T) {
			device := fmt.Sprintf("RS-%s-RAW%d", run, version)
			pub := func(seq int64) []byte {
				return []byte(fmt.Sprintf(`{"type":"log","device_no":%q,"seq":%d,"run":%q}`, device, seq, run))
			}
			acked := map[int64]bool{}
			c := dialMQTT(t, g.MQTTAddr, device, version, false)
			c.publish(1, pub(1), false)
			c.expectPuback(t, 1)
			acked[1] = true
			c.publish(1, pub(2), false) // id 1 again: free since its PUBACK came
			c.expectPuback(t, 1)
			acked[2] = true
			// seq 3 goes out with id 1 and is lost with the connection.
			c.close()

			c = dialMQTT(t, g.MQTTAddr, device, version, false)
			c.publish(1, pub(3), true) // the re-send of seq 3: DUP, id 1
			c.expectPuback(t, 1)
			acked[3] = true
			// seq 4 is stored but its PUBACK is lost with the connection.
			c.publish(2, pub(4), false)
			waitFor(t, 15*time.Second, "seq 4 stored", func() error {
				for _, q := range deviceSeqs(t, kc, device, run) {
					if q == 4 {
						return nil
					}
				}
				return errNotYet
			})
			c.close()

			c = dialMQTT(t, g.MQTTAddr, device, version, false)
			c.publish(2, pub(4), true)
			c.expectPuback(t, 2)
			acked[4] = true
			c.publish(3, pub(5), false)
			c.expectPuback(t, 3)
			acked[5] = true
			c.close()

			seqs := deviceSeqs(t, kc, device, run)
			chk := checkStream(seqs, acked, map[int64]bool{3: true, 4: true})
			if !chk.ok() {
				t.Errorf("%s: records %v: %s", device, seqs, chk)
			}
			t.Logf("%s: records %v", device, seqs)
			if chk.dups > 0 {
				t.Logf("seq 4, stored and then re-sent with DUP, is stored twice: no de-duplication")
			}
		})
	}
}
