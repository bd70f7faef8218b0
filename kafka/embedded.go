package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

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
	// RetentionBytes is how many bytes of record batches the broker keeps
	// per partition, like Kafka's retention.bytes: beyond it the oldest
	// batches are dropped (the log start offset moves up), and a consumer
	// that falls further behind than that loses records. 0 means
	// DefaultEmbeddedRetentionBytes; negative keeps every record for as
	// long as the broker runs. While it is positive, a topic created with
	// its own retention.bytes keeps that instead.
	RetentionBytes int64
}

// defaultEmbeddedListen is kafka.embedded_listen's default.
const defaultEmbeddedListen = "127.0.0.1:9092"

// DefaultEmbeddedRetentionBytes is kafka.embedded_retention_bytes' default,
// 8 MiB per partition.
const DefaultEmbeddedRetentionBytes = 8 << 20

const (
	// embeddedRetentionEvery is how often the embedded broker drops what
	// is beyond RetentionBytes. kfake would do it itself only every
	// log.cleaner.backoff.ms (1 h) and only while some topic has a
	// retention config of its own, which seeded topics do not. What is
	// produced between two passes is held too, so the period is short.
	embeddedRetentionEvery = time.Second
	// embeddedSegmentsPerRetention: kfake stores a partition in segments
	// (byte slices in its in-memory file system; it keeps no other copy
	// of a batch) and frees a segment only once every batch in it is
	// below the log start offset, so a partition holds up to
	// RetentionBytes plus about two segments (the oldest, part dropped,
	// and the active one with its slice's spare capacity). Eight segments
	// to the bound keep that near a quarter of it. With kfake's default
	// 100 MiB segments the log start offset moves but no memory comes
	// back: TestEmbeddedRetention's heap then grows by 62 MiB for 32 MiB
	// produced (its in-memory files double their slices as they grow).
	//
	// One more cost is kfake's: a segment that a consumer read after it
	// was sealed keeps a read handle, and trimming closes that handle
	// (a no-op in memory) but leaves it in the unused front of kfake's
	// segment slice, so the segment's bytes stay reachable until that
	// slice is reallocated. Measured with a consumer reading 100 records
	// behind the producer (1 MiB bound, 3.5 MiB/s into one partition,
	// 64 MiB in all): the heap in use stayed 7-11 MiB above its start
	// instead of growing with what was produced (docs/operations.md).
	embeddedSegmentsPerRetention = 8
	// embeddedMaxSegmentBytes is kfake's default segment size, 100 MiB.
	embeddedMaxSegmentBytes = 100 << 20
)

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
	// stop ends the retention loop; done is closed when it has returned.
	// Both are nil when every record is kept.
	stop, done chan struct{}
}

// StartEmbedded starts the embedded development broker on cfg.Listen with
// cfg.Topics created, and logs a warning that it is for development only.
// Topics other clients create through the Kafka protocol are accepted too;
// producing to an unknown topic does not create it. Each partition keeps
// about cfg.RetentionBytes, the oldest batches dropped first, checked every
// second. Close stops it.
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
	retention := cfg.RetentionBytes
	if retention == 0 {
		retention = DefaultEmbeddedRetentionBytes
	}
	if retention > 0 {
		opts = append(opts, kfake.BrokerConfigs(retentionConfigs(retention)))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		// kfake closes the listeners it received when it fails; closing
		// again covers a failure before it asked for one.
		_ = ln.Close()
		return nil, fmt.Errorf("embedded kafka broker: %w", err)
	}
	e := &Embedded{cluster: cluster, addr: adv.String(), log: log}
	if retention > 0 {
		e.stop, e.done = make(chan struct{}), make(chan struct{})
		go e.applyRetention(embeddedRetentionEvery)
	}
	log.Warn("embedded Kafka broker started: in-memory development broker, all data is lost at exit, not for production; set kafka.brokers to use a real cluster",
		zap.String("addr", e.addr),
		zap.Strings("topics", cfg.Topics),
		zap.Int32("partitions", cfg.Partitions),
		zap.Int64("retention_bytes_per_partition", retention))
	return e, nil
}

// retentionConfigs are the broker configs that bound each partition to
// retention bytes. Only size bounds it: with retention.ms (7 days by
// default) the pass would also drop any record whose timestamp, which a
// producer may set, is older than that.
func retentionConfigs(retention int64) map[string]string {
	segment := min(max(retention/embeddedSegmentsPerRetention, 1), embeddedMaxSegmentBytes)
	return map[string]string{
		"log.retention.bytes": strconv.FormatInt(retention, 10),
		"log.retention.ms":    "-1",
		"log.segment.bytes":   strconv.FormatInt(segment, 10),
	}
}

// applyRetention drops, every period until Close, each partition's oldest
// batches beyond its retention bytes. Dropped segments are deleted from
// kfake's in-memory file system, which frees their bytes at the next GC.
func (e *Embedded) applyRetention(period time.Duration) {
	defer close(e.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.cluster.ApplyRetention()
		}
	}
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
		// ApplyRetention waits for the cluster's loop: stop calling it
		// before the cluster stops.
		if e.stop != nil {
			close(e.stop)
			<-e.done
		}
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
