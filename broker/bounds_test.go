package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/limits"
	"github.com/fleetgate/fleetgate/router"
)

// autoPipeline stores every message at once.
type autoPipeline struct{}

func (autoPipeline) Process(_ context.Context, _ *router.Message, done func(error)) { go done(nil) }

// subscribeQoS subscribes to filter at qos and waits for the SUBACK.
func (c *rawClient) subscribeQoS(filter string, qos byte) {
	c.t.Helper()
	c.subscribeAt(1, qos, filter)
}

// dialConnect opens a connection and sends pk as its CONNECT, returning the
// client and the CONNACK.
func dialConnect(t *testing.T, addr string, pk packets.Packet) (*rawClient, packets.Packet) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn), version: pk.ProtocolVersion}
	pk.FixedHeader.Type = packets.Connect
	pk.Connect.ProtocolName = []byte("MQTT")
	c.write(pk)
	ack := c.read(3 * time.Second)
	if ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: type %d reason %#x", pk.Connect.ClientIdentifier, ack.FixedHeader.Type, ack.ReasonCode)
	}
	return c, ack
}

func TestMaxKeepAlive(t *testing.T) {
	b := startBroker(t, newFakePipeline(), func(c *Config) { c.MaxKeepAlive = 60 * time.Second })
	for _, tc := range []struct {
		asked uint16
		want  uint16 // 0: no Server Keep Alive
	}{{0, 60}, {61, 60}, {65535, 60}, {60, 0}, {30, 0}} {
		t.Run(fmt.Sprintf("mqtt5-keepalive-%d", tc.asked), func(t *testing.T) {
			_, ack := dialConnect(t, b.Addr("tcp"), packets.Packet{ProtocolVersion: 5,
				Connect: packets.ConnectParams{ClientIdentifier: "KA" + strconv.Itoa(int(tc.asked)), Keepalive: tc.asked, Clean: true}})
			got := uint16(0)
			if ack.Properties.ServerKeepAliveFlag {
				got = ack.Properties.ServerKeepAlive
			}
			if got != tc.want {
				t.Fatalf("keep-alive %d: Server Keep Alive %d, want %d", tc.asked, got, tc.want)
			}
		})
	}
}

// TestKeepAliveZeroIsHeldToTheMaximum: a 3.1.1 client asking for no
// keep-alive is closed after 1.5 times mqtt.max_keep_alive of silence.
func TestKeepAliveZeroIsHeldToTheMaximum(t *testing.T) {
	b := startBroker(t, newFakePipeline(), func(c *Config) { c.MaxKeepAlive = 2 * time.Second })
	c, _ := dialConnect(t, b.Addr("tcp"), packets.Packet{ProtocolVersion: 4,
		Connect: packets.ConnectParams{ClientIdentifier: "KA0", Keepalive: 0, Clean: true}})
	began := time.Now()
	if !closedWithin(c.conn, 8*time.Second) {
		t.Fatal("a 3.1.1 client with keep-alive 0 is still connected after 8s of silence (mqtt.max_keep_alive 2s)")
	}
	if d := time.Since(began); d < 2*time.Second {
		t.Fatalf("closed after %s, before 1.5 keep-alive periods", d)
	}
}

// waitSessionGone polls until the broker no longer holds clientID's session.
func waitSessionGone(t *testing.T, b *Broker, clientID string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, ok := b.server.Clients.Get(clientID); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still held %s after it disconnected", clientID, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSessionExpiryIsCapped(t *testing.T) {
	b := startBroker(t, newFakePipeline(), func(c *Config) { c.MaxSessionExpiry = time.Second })
	addr := b.Addr("tcp")

	t.Run("mqtt5-connect", func(t *testing.T) {
		t.Parallel() // each waits for mochi's once-a-second expiry sweep
		c, ack := dialConnect(t, addr, packets.Packet{ProtocolVersion: 5,
			Properties: packets.Properties{SessionExpiryInterval: math.MaxUint32, SessionExpiryIntervalFlag: true},
			Connect:    packets.ConnectParams{ClientIdentifier: "SE5", Keepalive: 30}})
		if !ack.Properties.SessionExpiryIntervalFlag || ack.Properties.SessionExpiryInterval != 1 {
			t.Fatalf("CONNACK session expiry %d (flag %v), want the cap 1", ack.Properties.SessionExpiryInterval, ack.Properties.SessionExpiryIntervalFlag)
		}
		c.conn.Close()
		waitSessionGone(t, b, "SE5", 5*time.Second)
	})
	t.Run("mqtt5-disconnect-raises-expiry", func(t *testing.T) {
		t.Parallel() // each waits for mochi's once-a-second expiry sweep
		c, _ := dialConnect(t, addr, packets.Packet{ProtocolVersion: 5,
			Properties: packets.Properties{SessionExpiryInterval: 1, SessionExpiryIntervalFlag: true},
			Connect:    packets.ConnectParams{ClientIdentifier: "SE5D", Keepalive: 30}})
		c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
			Properties: packets.Properties{SessionExpiryInterval: math.MaxUint32, SessionExpiryIntervalFlag: true}})
		waitSessionGone(t, b, "SE5D", 5*time.Second)
	})
	t.Run("mqtt311-persistent", func(t *testing.T) {
		t.Parallel() // each waits for mochi's once-a-second expiry sweep
		c := dialRawSession(t, addr, "SE4", 4, false)
		c.conn.Close()
		waitSessionGone(t, b, "SE4", 5*time.Second)
	})
}

// subscriberSees connects a new clean client subscribed to "#" and returns
// the retained messages it is sent, by topic.
func subscriberSees(t *testing.T, addr string) map[string]int {
	t.Helper()
	c := dialRaw(t, addr, "watcher-"+strconv.FormatInt(time.Now().UnixNano(), 36), 4)
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "#", Qos: 0}},
	})
	got := map[string]int{}
	for {
		pk := c.read(500 * time.Millisecond)
		switch pk.FixedHeader.Type {
		case packets.Suback:
		case packets.Publish:
			if pk.FixedHeader.Retain {
				got[pk.TopicName] = len(pk.Payload)
			}
		default:
			c.conn.Close()
			return got
		}
	}
}

func TestRetainedOffByDefault(t *testing.T) {
	obs := newLimitObserver()
	p := newFakePipeline()
	b := startBroker(t, p, nil, WithObserver(obs))
	c := dialRaw(t, b.Addr("tcp"), "R1", 4)
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}, TopicName: "r/qos0", Payload: []byte("x")})
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, TopicName: "r/qos1", PacketID: 7, Payload: []byte("y")})
	p.waitFor(t, 2)
	p.complete(1, nil)
	expectAck(t, c, 7) // the message itself is stored and acknowledged
	deadline := time.Now().Add(3 * time.Second)
	for obs.drops(ReasonRetainDisabled) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := obs.drops(ReasonRetainDisabled); n != 2 {
		t.Fatalf("%d retain_disabled refusals counted, want 2", n)
	}
	// A retained will is delivered, not kept, either.
	live := dialRaw(t, b.Addr("tcp"), "R1-live", 4)
	live.subscribeQoS("will/#", 0)
	_, _ = dialConnect(t, b.Addr("tcp"), packets.Packet{ProtocolVersion: 4, Connect: packets.ConnectParams{
		ClientIdentifier: "R1-will", Keepalive: 30, Clean: true,
		WillFlag: true, WillRetain: true, WillTopic: "will/R1", WillPayload: []byte("gone")}})
	if cl, ok := b.server.Clients.Get("R1-will"); ok {
		cl.Stop(errors.New("test: connection lost")) // not a DISCONNECT: the will is sent
	}
	if pk := live.read(3 * time.Second); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "will/R1" {
		t.Fatalf("the will was not delivered live: type %d topic %q", pk.FixedHeader.Type, pk.TopicName)
	}
	if n := obs.drops(ReasonRetainDisabled); n != 3 {
		t.Fatalf("%d retain_disabled refusals counted, want 3 (with the will)", n)
	}
	if got := subscriberSees(t, b.Addr("tcp")); len(got) != 0 {
		t.Fatalf("retained messages kept with mqtt.retained.enabled false: %v", got)
	}
	if m, n := b.Retained(); m != 0 || n != 0 {
		t.Fatalf("Retained() = %d, %d", m, n)
	}
}

func TestRetainedCaps(t *testing.T) {
	obs := newLimitObserver()
	b := startBroker(t, autoPipeline{}, func(c *Config) {
		c.Retained = RetainedConfig{Enabled: true, MaxMessages: 3, MaxMessageBytes: 100, MaxTotalBytes: 200}
	}, WithObserver(obs))
	c := dialRaw(t, b.Addr("tcp"), "R2", 4)
	id := uint16(0)
	retain := func(topic string, size int) {
		t.Helper()
		id++
		c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true},
			TopicName: topic, PacketID: id, Payload: bytes.Repeat([]byte("p"), size)})
		expectAck(t, c, id)
	}
	// Sizes count topic (4 bytes here) + payload.
	retain("t/aa", 97) // 101 > 100: too large
	retain("t/01", 56) // 60
	retain("t/02", 56) // 120
	retain("t/03", 86) // 210 > 200: bytes limit
	retain("t/03", 36) // 160
	retain("t/04", 6)  // a fourth topic: count limit
	retain("t/01", 76) // replaces 60 by 80: 180
	retain("t/02", 0)  // deletes: 60, two topics
	retain("t/05", 96) // 100 more: 220 > 200, bytes limit
	retain("t/05", 76) // 200, three topics
	want := map[string]int{"t/01": 76, "t/03": 36, "t/05": 76}
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := subscriberSees(t, b.Addr("tcp"))
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retained messages %v, want %v", got, want)
		}
	}
	if m, n := b.Retained(); m != 3 || n != 200 {
		t.Fatalf("Retained() = %d messages, %d bytes; want 3, 200", m, n)
	}
	for reason, n := range map[string]int{ReasonRetainedTooLarge: 1, ReasonRetainedBytes: 2, ReasonRetainedCount: 1} {
		if got := obs.drops(reason); got != n {
			t.Errorf("%s counted %d times, want %d", reason, got, n)
		}
	}
}

// sessionUse sums what mochi holds for clientID's session: queued
// publishes and their payload bytes.
func sessionUse(t *testing.T, b *Broker, clientID string) (msgs int, bytes int64) {
	t.Helper()
	cl, ok := b.server.Clients.Get(clientID)
	if !ok {
		t.Fatalf("session %s gone", clientID)
	}
	for _, pk := range cl.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type == packets.Publish {
			msgs++
			bytes += int64(len(pk.Payload) + len(pk.TopicName))
		}
	}
	return msgs, bytes
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestOfflineSessionsAndRetainedStayBounded is the case: ten
// offline persistent sessions subscribed to "#" while 100 retained
// messages of 200 KiB are published (before: +334 MiB RSS). Each session
// keeps at most its cap, all sessions together at most limits.max_queued_*,
// retained messages at most mqtt.retained.*; the oldest queued messages are
// the ones dropped, and every drop is counted.
func TestOfflineSessionsAndRetainedStayBounded(t *testing.T) {
	t.Run("session-caps", func(t *testing.T) { testOfflineBounded(t, 1<<20, 64<<20, ReasonQueueSession) })
	t.Run("process-cap", func(t *testing.T) { testOfflineBounded(t, 1<<20, 4<<20, ReasonQueueTotal) })
}

func testOfflineBounded(t *testing.T, perSession, allQueued int64, reason string) {
	const (
		sessions = 10
		messages = 100
		size     = 200 << 10
		retained = 8 << 20
	)
	obs := newLimitObserver()
	queued := limits.New(limits.Config{MaxInflightMessages: 100000, MaxInflightBytes: allQueued})
	b := startBroker(t, autoPipeline{}, func(c *Config) {
		c.MaxQueuedMessages = 100
		c.MaxQueuedBytes = perSession
		c.Retained = RetainedConfig{Enabled: true, MaxMessages: 1000, MaxMessageBytes: 256 << 10, MaxTotalBytes: retained}
	}, WithObserver(obs), WithQueueLimiter(queued))
	addr := b.Addr("tcp")
	for i := 0; i < sessions; i++ {
		c := dialRawSession(t, addr, fmt.Sprintf("offline-%d", i), 4, false)
		c.subscribeQoS("#", 1)
		c.conn.Close()
	}
	heapBefore, rssBefore := heapInUse(), rssBytes()

	pub := dialRaw(t, addr, "publisher", 4)
	payload := bytes.Repeat([]byte("v"), size)
	for i := 1; i <= messages; i++ {
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true},
			TopicName: fmt.Sprintf("fleet/%03d", i), PacketID: uint16(i), Payload: payload})
		expectAck(t, pub, uint16(i))
	}
	// The fan-out follows each PUBACK: wait until the last message is queued.
	keep := min(perSession/(size+9), allQueued/sessions/(size+9)) // each session's share
	deadline := time.Now().Add(10 * time.Second)
	for int64(obs.drops(ReasonQueueSession)+obs.drops(ReasonQueueTotal)) < sessions*(messages-keep) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if obs.drops(reason) == 0 {
		t.Errorf("no %s drops counted", reason)
	}

	var total int64
	for i := 0; i < sessions; i++ {
		m, n := sessionUse(t, b, fmt.Sprintf("offline-%d", i))
		if n > perSession {
			t.Errorf("offline-%d holds %d messages, %d bytes; cap %d bytes", i, m, n, perSession)
		}
		total += n
	}
	if total > allQueued {
		t.Errorf("all sessions hold %d bytes; limits cap %d", total, allQueued)
	}
	qm, qb := b.Queued()
	if qb != total || qb > allQueued {
		t.Errorf("Queued() = %d messages, %d bytes; the sessions hold %d bytes (cap %d)", qm, qb, total, allQueued)
	}
	if _, inUse := queued.InUse(); inUse != qb {
		t.Errorf("limits budget holds %d bytes, the accounts %d", inUse, qb)
	}
	rm, rb := b.Retained()
	if rb > retained || rm > retained/size {
		t.Errorf("Retained() = %d messages, %d bytes; cap %d bytes", rm, rb, retained)
	}
	if obs.drops(ReasonRetainedBytes) != messages-int(rm) {
		t.Errorf("%d retained refusals counted, want %d", obs.drops(ReasonRetainedBytes), messages-int(rm))
	}
	heapAfter, rssAfter := heapInUse(), rssBytes()
	t.Logf("queued %d messages / %d bytes, retained %d / %d bytes; heap %+.1f MiB, RSS %+.1f MiB (drops: session %d, total %d)",
		qm, qb, rm, rb, float64(heapAfter-heapBefore)/(1<<20), float64(rssAfter-rssBefore)/(1<<20),
		obs.drops(ReasonQueueSession), obs.drops(ReasonQueueTotal))
	// Uncapped, the sessions alone would hold 10 x 100 x 200 KiB = 195 MiB.
	if grow := heapAfter - heapBefore; grow > min(allQueued, sessions*perSession)+retained+16<<20 {
		t.Errorf("heap grew by %.1f MiB; the caps allow %d MiB", float64(grow)/(1<<20), (allQueued+retained)>>20)
	}

	// A session coming back gets its newest messages: the oldest were dropped.
	c := dialRawSession(t, addr, "offline-9", 4, false)
	var topics []string
	for {
		pk := c.read(time.Second)
		if pk.FixedHeader.Type != packets.Publish {
			break
		}
		topics = append(topics, pk.TopicName)
	}
	if len(topics) == 0 || !containsString(topics, fmt.Sprintf("fleet/%03d", messages)) || containsString(topics, "fleet/001") {
		t.Fatalf("the returning session got %v; want the newest messages, not the oldest", topics)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestDelayedWillReservesNothing: an MQTT 5 will with a delay may never be
// sent (its client returns in time), so it must not hold room in the
// retained caps; one that is sent into a full store is not kept.
func TestDelayedWillReservesNothing(t *testing.T) {
	obs := newLimitObserver()
	b := startBroker(t, autoPipeline{}, func(c *Config) {
		c.Retained = RetainedConfig{Enabled: true, MaxMessages: 1, MaxMessageBytes: 1024, MaxTotalBytes: 4096}
	}, WithObserver(obs))
	addr := b.Addr("tcp")
	willConnect := func(id string, delay uint32) packets.Packet {
		return packets.Packet{ProtocolVersion: 5,
			Properties: packets.Properties{SessionExpiryInterval: 60, SessionExpiryIntervalFlag: true},
			Connect: packets.ConnectParams{ClientIdentifier: id, Keepalive: 30,
				WillFlag: true, WillRetain: true, WillTopic: "will/" + id, WillPayload: []byte("gone"),
				WillProperties: packets.Properties{WillDelayInterval: delay}}}
	}
	lose := func(id string) {
		t.Helper()
		cl, ok := b.server.Clients.Get(id)
		if !ok {
			t.Fatalf("no client %s", id)
		}
		cl.Stop(errors.New("test: connection lost"))
		deadline := time.Now().Add(3 * time.Second)
		for !cl.Closed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A's will is due in 60 s; A comes back at once, which cancels it.
	dialConnect(t, addr, willConnect("A", 60))
	lose("A")
	time.Sleep(100 * time.Millisecond)
	dialConnect(t, addr, willConnect("A", 60))

	// The one retained slot is still free.
	c := dialRaw(t, addr, "B", 4)
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, TopicName: "r/B", PacketID: 1, Payload: []byte("b")})
	expectAck(t, c, 1)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if got := subscriberSees(t, addr); fmt.Sprint(got) == "map[r/B:1]" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("retained messages %v; the cancelled delayed will took the only slot", got)
		}
	}

	// C's will, due in 1 s, fits when C goes; before it is sent, B takes
	// the slot again: the will is not kept.
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, TopicName: "r/B", PacketID: 2})
	expectAck(t, c, 2) // deleted: the slot is free
	dialConnect(t, addr, willConnect("C", 1))
	lose("C")
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, TopicName: "r/B", PacketID: 3, Payload: []byte("b")})
	expectAck(t, c, 3)
	waitCount(t, "retained_count_limit refusals", func() int { return obs.drops(ReasonRetainedCount) }, 1)
	if got := subscriberSees(t, addr); fmt.Sprint(got) != "map[r/B:1]" {
		t.Fatalf("retained messages %v after a delayed will into a full store", got)
	}
	if m, _ := b.Retained(); m != 1 {
		t.Fatalf("Retained() counts %d messages, want 1", m)
	}
}
