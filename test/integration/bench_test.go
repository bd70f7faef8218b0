package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetgate/fleetgate/config"
	"github.com/fleetgate/fleetgate/kafka"
	"github.com/fleetgate/fleetgate/test/mqttwire"
)

// BenchmarkQoS1EndToEnd publishes ~300-byte JSON reports at QoS 1 through
// the whole gateway in process (mochi, the ingest hook, the default rule,
// sarama, the embedded Kafka broker) and counts a message done at its
// PUBACK, which the gateway sends once Kafka stored the record. The
// clients write pre-encoded packets and read PUBACKs into a fixed buffer,
// so allocs/op is the gateway's (and the embedded Kafka broker's) per
// message, as is most of cpu-µs/msg (the process's CPU time, user and
// system, per message; the clients' share is a write and a read syscall
// per message or fewer):
//
// Each shape runs with both producers (kafka.producer):
//
//	go test -run XXX -bench QoS1EndToEnd -benchmem ./test/integration/
func BenchmarkQoS1EndToEnd(b *testing.B) {
	for _, shape := range []struct{ conns, window int }{{20, 16}, {500, 1}} {
		for _, producer := range []string{kafka.ProducerFleetgate, kafka.ProducerSarama} {
			b.Run(fmt.Sprintf("%dx%d/%s", shape.conns, shape.window, producer), func(b *testing.B) {
				benchQoS1(b, shape.conns, shape.window, producer)
			})
		}
	}
}

// benchQoS1 runs one shape of BenchmarkQoS1EndToEnd with one producer.
func benchQoS1(b *testing.B, nconns, window int, producer string) {
	g := startGateway(b, func(c *config.Config) { c.Kafka.Producer = producer })
	conns := make([]*benchConn, nconns)
	for i := range conns {
		conns[i] = dialBench(b, g.MQTTAddr(), fmt.Sprintf("BENCH-%04d", i))
	}
	per := make([]int, nconns)
	for i := range b.N {
		per[i%nconns]++
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := c.run(per[i], window); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU per message varies far less than the rate on a shared
	// machine: compare this between runs.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchConn is one MQTT 3.1.1 connection of the benchmark.
type benchConn struct {
	conn net.Conn
	r    *bufio.Reader
	pkt  []byte // a PUBLISH; its packet id is patched per message
	idAt int
}

func dialBench(b *testing.B, addr, id string) *benchConn {
	b.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchConn{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
	connect, err := mqttwire.Encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: id, Keepalive: 60, Clean: true}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Write(connect); err != nil {
		b.Fatal(err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(c.r, ack[:]); err != nil || ack[0] != packets.Connack<<4 || ack[3] != 0 {
		b.Fatalf("connect %s: %v %v", id, ack, err)
	}
	payload := fmt.Sprintf(`{"type":"gps","device_no":%q,"timestamp":"2026-11-30T10:00:00Z","seq":1,`+
		`"lat":52.520008,"lon":13.404954,"speed_kmh":87.5,"heading":271,"altitude_m":34.2,"satellites":11,`+
		`"hdop":0.9,"odometer_km":123456.7,"ignition":true,"fuel_pct":63.5,"battery_v":12.6,"pad":"%s"}`, id, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	pk, err := mqttwire.Encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName: "report", PacketID: 1, Payload: []byte(payload)})
	if err != nil {
		b.Fatal(err)
	}
	c.pkt = pk
	c.idAt = len(pk) - len(payload) - 2
	return c
}

// run publishes n messages keeping window in flight and waits for their
// PUBACKs.
func (c *benchConn) run(n, window int) error {
	errc := make(chan error, 1)
	acked := make(chan struct{}, window)
	go func() {
		var ack [4]byte
		for range n {
			if _, err := io.ReadFull(c.r, ack[:]); err != nil {
				errc <- err
				return
			}
			if ack[0] != packets.Puback<<4 {
				errc <- fmt.Errorf("got packet %#x, want PUBACK", ack[0])
				return
			}
			<-acked
		}
		errc <- nil
	}()
	id := uint16(0)
	for range n {
		acked <- struct{}{}
		id = id%65535 + 1
		c.pkt[c.idAt], c.pkt[c.idAt+1] = byte(id>>8), byte(id)
		if _, err := c.conn.Write(c.pkt); err != nil {
			return err
		}
	}
	return <-errc
}
