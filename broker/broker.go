// Package broker is fleetgate's embedded MQTT broker: mochi-mqtt v2 with a
// hook that hands every PUBLISH to the rule engine and acknowledges QoS 1 and
// 2 messages only once the engine reports them stored.
package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/fleetgate/fleetgate/router"
	"github.com/fleetgate/fleetgate/tlsconf"
)

// Pipeline is what the broker needs from the rule engine (router.Engine).
type Pipeline interface {
	// Process runs msg through the rules; done is called exactly once, nil
	// when every record is stored.
	Process(ctx context.Context, msg *router.Message, done func(error))
}

// Broker is the embedded MQTT broker. Start it once; Shutdown stops it.
type Broker struct {
	cfg    Config
	server *mqtt.Server
	hook   *ingestHook
	auth   *authHook
	bounds *boundsHook
	writes *writeQueueHook
	fanout *fanOut
	log    *zap.Logger

	mu       sync.Mutex
	addrs    map[string]string // listener id -> bound address
	shutdown sync.Once
	stopped  chan struct{} // closed by Shutdown
}

// New builds a broker feeding pipeline. cfg must be valid.
func New(cfg Config, pipeline Pipeline, log *zap.Logger, opts ...Option) (*Broker, error) {
	op := options{obs: nopObserver{}}
	for _, o := range opts {
		o(&op)
	}
	users, err := loadUsers(cfg.Auth.UsersFile)
	if err != nil {
		return nil, err
	}
	pol, polFrom, err := cfg.Policy()
	if err != nil {
		return nil, err
	}
	warnInsecure(cfg, users, pol, log)
	caps := cfg.Capabilities()

	// mochi logs every client that hangs up as a warning; our hook logs
	// connection events itself, so only mochi's errors come through.
	mlog := slog.New(zapslog.NewHandler(log.Named("mochi").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)).Core()))
	mopts := cfg.ServerOptions()
	mopts.Capabilities, mopts.Logger = caps, mlog
	server := mqtt.New(mopts)
	b := &Broker{cfg: cfg, server: server, fanout: newFanOut(server, log), log: log, addrs: map[string]string{}, stopped: make(chan struct{})}
	b.auth = newAuthHook(cfg, users, pol, polFrom, op.obs, log)
	if err := server.AddHook(b.auth, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add auth hook: %w", err)
	}
	b.hook = newIngestHook(b, pipeline, log, op)
	b.auth.answer = b.hook.answerInOrder
	if err := server.AddHook(b.hook, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add ingest hook: %w", err)
	}
	b.bounds = newBoundsHook(cfg, server, op, log)
	if err := server.AddHook(b.bounds, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add bounds hook: %w", err)
	}
	b.writes = newWriteQueueHook(cfg.MaxPendingWriteBytes, caps.MaximumQos, server.Topics, limitObserverOf(op))
	b.auth.deliver = b.writes.admit
	if err := server.AddHook(b.writes, nil); err != nil { // last with OnPublish (writequeue.go)
		return nil, fmt.Errorf("mqtt: add write queue hook: %w", err)
	}
	return b, nil
}

// Start binds the listeners and starts serving. Errors name the key of the
// listener that failed.
func (b *Broker) Start() error {
	add := func(key, id string, l listeners.Listener) error {
		if err := b.server.AddListener(l); err != nil {
			return fmt.Errorf("%s: listen on %s: %w", key, l.Address(), err)
		}
		b.mu.Lock()
		b.addrs[id] = l.Address()
		b.mu.Unlock()
		b.log.Info("mqtt listening", zap.String("listener", id), zap.String("addr", l.Address()))
		return nil
	}
	var tlsCfg *tls.Config
	var reloader *tlsconf.Reloader
	if b.cfg.TLSListen != "" || b.cfg.WSSListen != "" {
		cfg, r, err := serverTLS(b.cfg.TLS, b.log)
		if err != nil {
			return err
		}
		tlsCfg, reloader = cfg, r
	}
	if b.cfg.Listen != "" {
		ln, err := listenTCP(b.cfg.Listen, b.cfg.ConnectTimeout, nil)
		if err != nil {
			return fmt.Errorf("mqtt.listen: %w", err)
		}
		if err := add("mqtt.listen", "tcp", b.counted(listeners.NewNet("tcp", ln))); err != nil {
			ln.Close()
			return err
		}
	}
	if b.cfg.TLSListen != "" {
		ln, err := listenTCP(b.cfg.TLSListen, b.cfg.ConnectTimeout, tlsCfg)
		if err != nil {
			return fmt.Errorf("mqtt.tls_listen: %w", err)
		}
		if err := add("mqtt.tls_listen", "tls", b.counted(listeners.NewNet("tls", ln))); err != nil {
			ln.Close()
			return err
		}
	}
	if err := b.startWebSocket(add, tlsCfg); err != nil {
		return err
	}
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("mqtt: serve: %w", err)
	}
	b.hook.wg.Add(1)
	go b.hook.sweepResends()
	// Only once serving: a Start that failed leaves nothing running.
	if b.cfg.TLS.CRLFile != "" && reloader != nil {
		go b.watchRevocations(reloader)
	}
	return nil
}

// Addr returns the bound address of a listener: "tcp", "tls" or "ws".
func (b *Broker) Addr(listener string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[listener]
}

// Publish publishes to the broker's subscribers (the republish action). It
// is safe for concurrent use.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	return b.server.Publish(topic, payload, false, qos)
}

// Connections returns the number of connected clients.
func (b *Broker) Connections() int64 { return b.server.Info.ClientsConnected }

// Shutdown stops accepting connections and new messages, waits until every
// message already taken is acknowledged or failed (or ctx ends), then closes
// every connection. Messages that arrive meanwhile are not acknowledged:
// their senders re-send them after reconnecting.
func (b *Broker) Shutdown(ctx context.Context) error {
	var err error
	b.shutdown.Do(func() {
		close(b.stopped)
		// Listeners first, with a no-op closer: their clients stay connected
		// while in-flight messages finish.
		for _, id := range []string{"tcp", "tls", "ws", "wss"} {
			b.server.Listeners.Close(id, func(string) {})
		}
		b.hook.drain()
		b.auth.stop() // refusals held by the back-off are sent now
		err = b.hook.waitIdle(ctx)
		if err != nil {
			b.log.Warn("mqtt drain deadline passed; the messages left are not acknowledged and will be re-sent by their terminals",
				zap.Int64("inflight", b.hook.inflight.Load()))
		}
		for _, cl := range b.server.Clients.GetAll() {
			if !cl.Net.Inline {
				b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
		// The listeners are closed already, so Close only waits for the
		// client goroutines to end.
		if cerr := b.server.Close(); cerr != nil && err == nil {
			err = cerr
		}
		b.hook.stop()
	})
	return err
}

// pollInterval is how often Shutdown checks that in-flight messages are done.
const pollInterval = 10 * time.Millisecond
