package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/tlsconf"
)

// wsListener serves MQTT over WebSocket (ws, or wss when tls is set). It
// replaces mochi's own WebSocket listener, which runs a net/http server
// without any deadline on the upgrade and whose upgrader clears the
// connection's deadlines, so a socket that never sends CONNECT was held
// forever. Here one deadline, set when the connection is accepted, covers
// the TLS handshake, the HTTP upgrade request and the CONNECT packet
// (mqtt.connect_timeout); once mochi has read CONNECT it replaces the
// deadline with the client's keep-alive, as on TCP.
//
// The upgrade request is read by hand (request line and headers, at most
// maxUpgradeBytes) rather than by a net/http server, which would reset
// the read deadline for each request and has no notion of the CONNECT
// that must follow.
type wsListener struct {
	id        string
	ln        net.Listener
	tls       *tls.Config // nil: plain ws
	timeout   time.Duration
	origins   map[string]bool // empty: any origin
	onRefused refuseConn

	upgrader websocket.Upgrader
	log      *slog.Logger
	once     sync.Once

	mu        sync.Mutex
	closed    bool
	upgrading map[net.Conn]struct{} // connections not yet handed to mochi
	wg        sync.WaitGroup        // their goroutines, until handed over
}

// maxUpgradeBytes bounds the WebSocket upgrade request (request line and
// headers); a browser's is under 2 KiB.
const maxUpgradeBytes = 16 << 10

// wsReadBuffer is the buffered reader of a WebSocket connection: the
// upgrade request is read through it (a longer header line takes more than
// one read) and, after the upgrade, every frame, for the connection's
// life. A device's message fits in one read of it; an idle connection
// holds it. gorilla's default is 4 KiB.
const wsReadBuffer = 1 << 10

// listenWS binds addr for a WebSocket listener with id "ws" or "wss".
// origins, when not empty, lists the Origin header values accepted (see
// Config.WSAllowedOrigins). onRefused is told why an upgrade was refused.
func listenWS(id, addr string, timeout time.Duration, tc *tls.Config, origins []string, onRefused refuseConn) (*wsListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &wsListener{id: id, ln: ln, tls: tc, timeout: timeout, origins: map[string]bool{}, onRefused: onRefused,
		upgrading: map[net.Conn]struct{}{}}
	for _, o := range origins {
		l.origins[normalizeOrigin(o)] = true
	}
	l.upgrader = websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		CheckOrigin:  l.checkOrigin,
		// A write takes a buffer from the pool and gives it back once the
		// frame is written: an idle connection holds none (4 KiB each).
		WriteBufferPool: &sync.Pool{},
		// The writer keeps the status; serveConn answers without net/http.
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) { w.WriteHeader(status) },
	}
	return l, nil
}

// checkOrigin accepts requests without an Origin header (terminals and
// other non-browser clients send none) and, with an allow-list, browser
// requests from a listed origin only. Origin is what a browser adds to a
// cross-site request; the list stops a web page on another site from
// opening MQTT connections with its visitors' network position.
func (l *wsListener) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(l.origins) == 0 || origin == "" {
		return true
	}
	return l.origins[normalizeOrigin(origin)]
}

func normalizeOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// ID implements listeners.Listener.
func (l *wsListener) ID() string { return l.id }

// Address implements listeners.Listener: the bound address.
func (l *wsListener) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *wsListener) Protocol() string {
	if l.tls != nil {
		return "wss"
	}
	return "ws"
}

// Init implements listeners.Listener.
func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// Serve implements listeners.Listener: it accepts until Close, waiting
// out failures to accept (see waitToAccept).
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !waitToAccept(err, &delay) {
				return // closed
			}
			continue
		}
		delay = 0
		if !l.track(c) {
			c.Close()
			return
		}
		go l.serveConn(c, establish)
	}
}

// track registers a connection being upgraded; false once closed.
func (l *wsListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.upgrading[c] = struct{}{}
	l.wg.Add(1)
	return true
}

// untrack ends the upgrade phase of c.
func (l *wsListener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.upgrading, c)
	l.mu.Unlock()
	l.wg.Done()
}

// Close implements listeners.Listener: it stops accepting, closes the
// connections still upgrading and waits for their goroutines; established
// ones are closed by closeClients.
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		l.ln.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.upgrading {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	closeClients(l.id)
}

// serveConn upgrades one connection and hands it to mochi.
func (l *wsListener) serveConn(raw net.Conn, establish listeners.EstablishFn) {
	ws := l.upgrade(raw)
	l.untrack(raw)
	if ws == nil {
		return
	}
	if err := establish(l.id, &wsStream{Conn: ws.UnderlyingConn(), ws: ws}); err != nil {
		if r := preConnectReason(nil, err); r != "" {
			l.onRefused(r, raw.RemoteAddr(), err)
		}
		l.log.Debug("websocket client ended", "error", err, "listener", l.id)
	}
	ws.Close()
}

// upgrade runs the TLS handshake and the WebSocket upgrade of raw within
// the connect timeout, and leaves the rest of it for CONNECT. It returns
// nil, with raw closed, when the upgrade failed.
func (l *wsListener) upgrade(raw net.Conn) *websocket.Conn {
	deadline := time.Now().Add(l.timeout)
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil
	}
	conn := raw
	if l.tls != nil {
		tc := tls.Server(raw, l.tls)
		if err := tc.Handshake(); err != nil {
			if r := preConnectReason(tc, err); r != "" {
				l.onRefused(r, raw.RemoteAddr(), err)
			}
			raw.Close()
			return nil
		}
		conn = tc
	}
	limit := &upgradeLimit{r: conn, n: maxUpgradeBytes}
	br := bufio.NewReaderSize(limit, wsReadBuffer)
	req, err := http.ReadRequest(br)
	if err != nil {
		switch {
		// bufio drops the timeout of a line cut short by the deadline
		// and http reports the part read as malformed: look at the clock.
		case isTimeout(err) || !time.Now().Before(deadline):
			l.onRefused(reasonConnectTimeout, raw.RemoteAddr(), err)
		case !isEOF(err) || errors.Is(err, errUpgradeTooLarge):
			l.onRefused(reasonWSUpgrade, raw.RemoteAddr(), err)
		}
		conn.Close()
		return nil
	}
	limit.n = math.MaxInt64 // the upgrade is read; frames follow
	w := &upgradeWriter{conn: conn, brw: bufio.NewReadWriter(br, bufio.NewWriter(conn)), header: http.Header{}}
	ws, err := l.upgrader.Upgrade(w, req, nil)
	if err != nil {
		if !w.hijacked {
			w.refuse()
			reason := reasonWSUpgrade
			if w.status == http.StatusForbidden {
				reason = reasonWSOrigin
			}
			l.onRefused(reason, raw.RemoteAddr(), err)
		}
		conn.Close()
		return nil
	}
	// The upgrader clears the deadlines: put the CONNECT deadline back.
	if err := ws.UnderlyingConn().SetDeadline(deadline); err != nil {
		ws.Close()
		return nil
	}
	return ws
}

// upgradeLimit reads at most n bytes from r, then fails.
type upgradeLimit struct {
	r io.Reader
	n int64
}

var errUpgradeTooLarge = errors.New("websocket upgrade request too large")

func (u *upgradeLimit) Read(p []byte) (int, error) {
	if u.n <= 0 {
		return 0, errUpgradeTooLarge
	}
	if int64(len(p)) > u.n {
		p = p[:u.n]
	}
	n, err := u.r.Read(p)
	u.n -= int64(n)
	return n, err
}

// upgradeWriter is the http.ResponseWriter and http.Hijacker the upgrader
// needs: it hands over the connection, or keeps the refusal's status for
// refuse.
type upgradeWriter struct {
	conn     net.Conn
	brw      *bufio.ReadWriter
	header   http.Header
	status   int
	hijacked bool
}

func (w *upgradeWriter) Header() http.Header         { return w.header }
func (w *upgradeWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *upgradeWriter) WriteHeader(status int)      { w.status = status }

func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return w.conn, w.brw, nil
}

// refuse answers a refused upgrade and says the connection closes.
func (w *upgradeWriter) refuse() {
	status := w.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	fmt.Fprintf(w.conn, "HTTP/1.1 %d %s\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, http.StatusText(status))
}

// wsStream carries the MQTT byte stream in binary WebSocket messages. Its
// deadlines are the underlying connection's.
type wsStream struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader // the current message, or nil
}

var errNotBinary = errors.New("websocket message is not binary")

// Read implements net.Conn.
func (c *wsStream) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write implements net.Conn: one binary message per write.
func (c *wsStream) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// startWebSocket binds mqtt.ws_listen and mqtt.wss_listen (with tc) and
// adds them through add (Start's listener registration).
func (b *Broker) startWebSocket(add func(key, id string, l listeners.Listener) error, tc *tls.Config) error {
	for _, ws := range []struct {
		key, id, addr string
		tls           *tls.Config
	}{
		{"mqtt.ws_listen", "ws", b.cfg.WSListen, nil},
		{"mqtt.wss_listen", "wss", b.cfg.WSSListen, tc},
	} {
		if ws.addr == "" {
			continue
		}
		l, err := listenWS(ws.id, ws.addr, b.cfg.ConnectTimeout, ws.tls, b.cfg.WSAllowedOrigins, b.connRefuser(ws.id))
		if err != nil {
			return fmt.Errorf("%s: %w", ws.key, err)
		}
		if err := add(ws.key, ws.id, l); err != nil {
			l.ln.Close()
			return err
		}
	}
	return nil
}

// serverTLS returns the configuration of the TLS and secure WebSocket
// listeners: mqtt.tls's files, reloaded when they change (tlsconf), and
// their reloader.
func serverTLS(c TLSConfig, log *zap.Logger) (*tls.Config, *tlsconf.Reloader, error) {
	r, err := tlsconf.New(c.files(), log)
	if err != nil {
		return nil, nil, err
	}
	return r.ServerConfig(), r, nil
}
