package e2e

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy between MQTT clients and the gateway that a test can
// make lose acknowledgements (drop the bytes the gateway sends) and cut (close
// every connection at once, as a mobile network does). It counts the PUBLISH
// packets clients send, and those with the DUP flag.
type proxy struct {
	t        *testing.T
	ln       net.Listener
	target   string
	dropDown atomic.Bool // discard gateway → client bytes
	dropUp   atomic.Bool // discard client → gateway bytes
	publish  atomic.Int64
	dups     atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is where clients connect.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// DropAcks makes the proxy discard what the gateway sends (PUBACKs among
// it) while still forwarding what clients send.
func (p *proxy) DropAcks(on bool) { p.dropDown.Store(on) }

// DropPublishes makes the proxy discard what clients send: their messages
// never reach the gateway.
func (p *proxy) DropPublishes(on bool) { p.dropUp.Store(on) }

// Cut closes every proxied connection, both sides.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.pipe(server, client, &p.dropUp, true)
		}()
		go func() {
			defer p.wg.Done()
			p.pipe(client, server, &p.dropDown, false)
		}()
	}
}

// pipe copies src to dst until either side fails, then closes both.
func (p *proxy) pipe(dst, src net.Conn, drop *atomic.Bool, upstream bool) {
	defer func() {
		src.Close()
		dst.Close()
		p.track(src, false)
		p.track(dst, false)
	}()
	var scan mqttScanner
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if upstream {
				scan.feed(buf[:n], func(header byte) {
					if header>>4 == 3 { // PUBLISH
						p.publish.Add(1)
						if header&0x08 != 0 {
							p.dups.Add(1)
						}
					}
				})
			}
			if !drop.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				_ = err // a reset from a cut: nothing to report
			}
			return
		}
	}
}

// mqttScanner finds packet boundaries in an MQTT byte stream (fixed header
// byte, remaining length, body) and reports each packet's first byte.
type mqttScanner struct {
	state     int // 0: header byte, 1: remaining length, 2: body
	header    byte
	remaining int
	mult      int
}

func (s *mqttScanner) feed(b []byte, packet func(header byte)) {
	for len(b) > 0 {
		switch s.state {
		case 0:
			s.header, s.remaining, s.mult = b[0], 0, 1
			s.state = 1
			b = b[1:]
		case 1:
			c := b[0]
			b = b[1:]
			s.remaining += int(c&0x7f) * s.mult
			s.mult *= 128
			if c&0x80 == 0 {
				packet(s.header)
				s.state = 2
				if s.remaining == 0 {
					s.state = 0
				}
			}
		case 2:
			n := min(len(b), s.remaining)
			b = b[n:]
			s.remaining -= n
			if s.remaining == 0 {
				s.state = 0
			}
		}
	}
}
