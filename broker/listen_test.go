package broker

import (
	"net"
	"testing"
	"time"
)

func TestSilentConnectionIsClosedAfterConnectTimeout(t *testing.T) {
	b := startBroker(t, newFakePipeline(), func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond })
	silent, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A client that connected properly keeps its connection past the
	// connect timeout: its keep-alive rules from CONNECT on.
	c := dialRaw(t, b.Addr("tcp"), "K1", 4)

	silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	began := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from a connection that never sent CONNECT")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection that never sent CONNECT is still open after 3 s (mqtt.connect_timeout 300ms)")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("closed after %s, want about 300ms", d)
	}
	c.publish(1, 1, "report", []byte(`{}`))
	if pk := c.read(500 * time.Millisecond); pk.FixedHeader.Type == 255 {
		t.Fatal("a connected client was cut by the connect timeout")
	}
}
