package kafka

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig configures the embedded development broker.
type EmbeddedConfig struct {
	// Listen is the host:port to listen on, e.g. "127.0.0.1:9092" (the
	// kafka.embedded_listen default, used when empty) or "127.0.0.1:0" for
	// a free port. Clients are told to connect to the bound address; a
	// wildcard host (":9092", "0.0.0.0:9092") is advertised as 127.0.0.1.
	Listen string
	// Topics are created at start, each with Partitions partitions.
	Topics []string
	// Partitions is the partition count of every topic; at least 1.
	Partitions int32
}

// defaultEmbeddedListen is kafka.embedded_listen's default.
const defaultEmbeddedListen = "127.0.0.1:9092"

// Embedded is an in-memory, single-node, Kafka-protocol broker (franz-go's
// kfake) for development and demos: any Kafka client (the gateway's own
// producer, kcat, the Java console consumer) can produce to and consume from
// it. Everything it holds is lost when it stops, and it does not enforce
// durability settings such as min.insync.replicas: never use it in
// production. Its methods are safe for concurrent use.
type Embedded struct {
	cluster   *kfake.Cluster
	addr      string
	log       *zap.Logger
	closeOnce sync.Once
}

// StartEmbedded starts the embedded development broker on cfg.Listen with
// cfg.Topics created, and logs a warning that it is for development only.
// Topics other clients create through the Kafka protocol are accepted too;
// producing to an unknown topic does not create it. Close stops it.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("embedded kafka broker: partitions must be at least 1, got %d", cfg.Partitions)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = defaultEmbeddedListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker: listen on %s: %w", listen, err)
	}
	adv, err := advertised(ln.Addr())
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded kafka broker on %s: %w", listen, err)
	}
	// kfake advertises its listener's Addr() in metadata responses (and
	// always asks for 127.0.0.1). Handing it our own, already bound
	// listener makes ":0" work and lets us choose the advertised address.
	ln = &advertisedListener{Listener: ln, addr: adv}
	var handed bool
	listenFn := func(string, string) (net.Listener, error) {
		if handed {
			return nil, errors.New("embedded kafka broker: a second listener was asked for")
		}
		handed = true
		return ln, nil
	}

	log = log.Named("kafka.embedded")
	opts := []kfake.Opt{
		// One node: it is the controller and every partition's leader, so
		// every client request goes to the one advertised address.
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.ClusterID("fleetgate-embedded"),
		kfake.WithLogger(kfakeLogger{log}),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(cfg.Partitions, cfg.Topics...))
	}
	// kfake's default partition count for topics created by clients that
	// ask for the broker default.
	opts = append(opts, kfake.DefaultNumPartitions(int(cfg.Partitions)))
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		// kfake closes the listeners it received when it fails; closing
		// again covers a failure before it asked for one.
		_ = ln.Close()
		return nil, fmt.Errorf("embedded kafka broker: %w", err)
	}
	e := &Embedded{cluster: cluster, addr: adv.String(), log: log}
	log.Warn("embedded Kafka broker started: in-memory development broker, all data is lost at exit, not for production; set kafka.brokers to use a real cluster",
		zap.String("addr", e.addr),
		zap.Strings("topics", cfg.Topics),
		zap.Int32("partitions", cfg.Partitions))
	return e, nil
}

// Addr returns the host:port clients connect to; it is the bound address,
// usable from other processes on this host.
func (e *Embedded) Addr() string { return e.addr }

// Cluster returns the underlying kfake cluster, for tests that inject faults
// (ControlKey) or move partitions.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker and discards its data. It is safe to call more than
// once.
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		e.cluster.Close()
		e.log.Info("embedded Kafka broker stopped", zap.String("addr", e.addr))
	})
}

// advertised returns the address to give clients for a listener bound to a:
// a itself, or 127.0.0.1 with a's port when a is a wildcard.
func advertised(a net.Addr) (*net.TCPAddr, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("listener address %v is not TCP", a)
	}
	adv := *ta
	if adv.IP == nil || adv.IP.IsUnspecified() {
		adv.IP = net.IPv4(127, 0, 0, 1)
	}
	return &adv, nil
}

// advertisedListener reports addr as its address: kfake puts its listener's
// address in metadata responses, and a wildcard there is no use to a client.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }

// kfakeLogger sends kfake's logs to zap. kfake logs every failed request at
// info, so its info and debug become our debug.
type kfakeLogger struct{ log *zap.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl zapcore.Level
	switch level {
	case kfake.LogLevelError:
		lvl = zapcore.ErrorLevel
	case kfake.LogLevelWarn:
		lvl = zapcore.WarnLevel
	case kfake.LogLevelInfo, kfake.LogLevelDebug:
		lvl = zapcore.DebugLevel
	default:
		return
	}
	if l.log.Core().Enabled(lvl) {
		l.log.Log(lvl, fmt.Sprintf(format, args...))
	}
}
