// Package kafkatest starts real Apache Kafka clusters (KRaft, no ZooKeeper) on
// loopback for end-to-end tests: one node for plain produce/consume, three for
// replication, min.insync.replicas and leader failover.
//
// The broker runs from a Kafka installation fetched from Maven Central by
// test/kafka/fetch (./test/run does this and exports FLEETGATE_KAFKA_HOME);
// this package never downloads anything. Every node is a JVM in its own
// process group that is killed when the process that started it dies, so a
// test that panics or times out leaves no broker behind.
//
// Nodes are numbered 1..N, the same numbers as their Kafka node.id, so that a
// partition's leader reported by any Kafka client names the node to Kill.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// DefaultStartTimeout bounds Start and Restart when their context has no
// deadline. A 3-node cluster takes well under a minute on 2 cores.
const DefaultStartTimeout = 3 * time.Minute

// StopGrace is how long Stop and Close wait after SIGTERM before SIGKILL.
const StopGrace = 10 * time.Second

// Options configure Start. The zero value is a valid one-node cluster.
type Options struct {
	// Nodes is the number of nodes, each a combined broker and controller and
	// all of them KRaft voters: 1 (default) or 3. With 3, topics default to
	// replication factor 3 and min.insync.replicas is 2.
	Nodes int
	// Dir holds one directory per node (config, data, server.log, stdout.log,
	// pid). Default: a new directory under os.TempDir(). Close removes the
	// node directories (and Dir itself if Start made it) unless Keep is set or
	// $FLEETGATE_KAFKA_KEEP is non-empty.
	Dir string
	// KafkaHome is the installation made by test/kafka/fetch. Default:
	// DefaultKafkaHome().
	KafkaHome string
	// Heap is the JVM's maximum heap per node, as for -Xmx. Default "512m".
	Heap string
	// Ports fixes the client (PLAINTEXT) port of each node, in node order.
	// Default: free ports picked at start, with a retry if one is taken in the
	// meantime. Controller ports are always picked free.
	Ports []int
	// ExtraBrokerConfig is laid over the generated server.properties of every
	// node (for example "log.retention.ms" or "broker.session.timeout.ms").
	ExtraBrokerConfig map[string]string
	// Keep keeps the directories after Close.
	Keep bool
}

// Cluster is a real Apache Kafka KRaft cluster of N nodes on loopback, for
// tests. Its methods are safe for concurrent use, but Stop, Kill and Restart
// of the same node should not race each other.
type Cluster struct {
	home      *kafkaHome
	heap      string
	dir       string
	ownDir    bool
	keep      bool
	clusterID string
	version   sarama.KafkaVersion
	extra     map[string]string
	nodes     []*node

	mu   sync.Mutex
	want map[int]bool // nodes that should be running (started and not stopped)

	closeOnce sync.Once
	closeErr  error
}

// Start formats and starts a cluster and waits until it is ready (see
// WaitReady). If the Kafka installation is missing, the error wraps ErrNoKafka
// and says to run test/kafka/fetch. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	n := opts.Nodes
	if n == 0 {
		n = 1
	}
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("kafkatest: Options.Nodes must be 1 or 3, got %d", opts.Nodes)
	}
	if len(opts.Ports) != 0 && len(opts.Ports) != n {
		return nil, fmt.Errorf("kafkatest: Options.Ports has %d ports for %d nodes", len(opts.Ports), n)
	}
	kh := opts.KafkaHome
	if kh == "" {
		kh = DefaultKafkaHome()
	}
	home, err := openKafkaHome(kh)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	c := &Cluster{
		home:    home,
		heap:    opts.Heap,
		keep:    opts.Keep || os.Getenv(EnvKeep) != "",
		version: saramaVersion(home.version),
		extra:   opts.ExtraBrokerConfig,
		want:    map[int]bool{},
	}
	if c.heap == "" {
		c.heap = "512m"
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("kafkatest: %w", err)
		}
		c.dir = opts.Dir
	} else {
		d, err := os.MkdirTemp("", "fleetgate-kafka-")
		if err != nil {
			return nil, fmt.Errorf("kafkatest: %w", err)
		}
		c.dir, c.ownDir = d, true
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}

	// Ports picked free can be taken by another process before Kafka binds
	// them (other test packages start clusters at the same time): retry then.
	attempts := 3
	if len(opts.Ports) != 0 {
		attempts = 1
	}
	for try := 1; ; try++ {
		err = c.startOnce(ctx, n, opts.Ports)
		if err == nil {
			return c, nil
		}
		bindErr := c.bindFailed()
		c.stopAll(0)
		if try >= attempts || !bindErr || ctx.Err() != nil {
			if !c.keep {
				c.removeDirs()
			}
			return nil, err
		}
		c.removeDirs()
		if c.ownDir {
			if err := os.MkdirAll(c.dir, 0o755); err != nil {
				return nil, fmt.Errorf("kafkatest: %w", err)
			}
		}
	}
}

// startOnce lays out, formats and starts n nodes and waits until ready.
func (c *Cluster) startOnce(ctx context.Context, n int, fixed []int) error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("kafkatest: cluster id: %w", err)
	}
	c.clusterID = base64.RawURLEncoding.EncodeToString(id)

	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	c.nodes = make([]*node, n)
	voters := make([]string, n)
	for i := range c.nodes {
		nd := &node{id: i + 1, dir: filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1)), port: ports[2*i], ctrlPort: ports[2*i+1]}
		if len(fixed) != 0 {
			nd.port = fixed[i]
		}
		c.nodes[i] = nd
		voters[i] = fmt.Sprintf("%d@127.0.0.1:%d", nd.id, nd.ctrlPort)
	}
	for _, nd := range c.nodes {
		if err := os.MkdirAll(nd.dataDir(), 0o755); err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
		cfg := brokerConfig(nd.id, n, nd.port, nd.ctrlPort, strings.Join(voters, ","), nd.dataDir())
		for k, v := range c.extra {
			cfg[k] = v
		}
		if err := writeProperties(nd.propsPath(), cfg); err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "cluster.id"), []byte(c.clusterID+"\n"), 0o644); err != nil {
		return fmt.Errorf("kafkatest: %w", err)
	}

	// Each format is a JVM start: run them side by side.
	t0 := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.format(ctx, c.home, c.clusterID)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	c.debugf("formatted %d nodes in %s", n, time.Since(t0))
	t0 = time.Now()

	// A KRaft quorum needs a majority of voters: start all nodes together.
	for _, nd := range c.nodes {
		if err := nd.start(c.home, c.heap); err != nil {
			return err
		}
		c.setWant(nd.id, true)
	}
	err = c.WaitReady(ctx)
	c.debugf("started %d nodes in %s", n, time.Since(t0))
	return err
}

// freePorts returns k distinct loopback ports that were free a moment ago.
func freePorts(k int) ([]int, error) {
	ls := make([]net.Listener, 0, k)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, k)
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kafkatest: pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// bindFailed reports whether a node's logs show it could not bind its port.
func (c *Cluster) bindFailed() bool {
	for _, nd := range c.nodes {
		for _, p := range []string{nd.stdoutPath(), nd.serverLogPath()} {
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "Address already in use") || strings.Contains(string(b), "BindException") {
				return true
			}
		}
	}
	return false
}

// Version is the Kafka release the cluster runs, e.g. "4.1.2".
func (c *Cluster) Version() string { return c.home.version }

// SaramaVersion is the protocol version to put in sarama.Config.Version.
func (c *Cluster) SaramaVersion() sarama.KafkaVersion { return c.version }

// SaramaConfig returns sarama.NewConfig() with Version set to the broker's and
// ClientID "kafkatest"; callers add their producer or consumer settings.
func (c *Cluster) SaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = c.version
	cfg.ClientID = "kafkatest"
	return cfg
}

// Dir is the cluster's directory (node-N/ per node, each with server.log).
func (c *Cluster) Dir() string { return c.dir }

// Nodes is the number of nodes, running or not.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// Bootstrap returns every node's client address, comma-separated:
// "127.0.0.1:p1,127.0.0.1:p2,...".
func (c *Cluster) Bootstrap() string { return strings.Join(c.Brokers(), ",") }

// Brokers returns every node's client address, in node order, whether the
// node runs or not.
func (c *Cluster) Brokers() []string {
	addrs := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		addrs[i] = nd.addr()
	}
	return addrs
}

// Addr returns the client address of node id.
func (c *Cluster) Addr(id int) (string, error) {
	nd, err := c.node(id)
	if err != nil {
		return "", err
	}
	return nd.addr(), nil
}

func (c *Cluster) node(id int) (*node, error) {
	if id < 1 || id > len(c.nodes) {
		return nil, fmt.Errorf("kafkatest: no node %d (nodes are 1..%d)", id, len(c.nodes))
	}
	return c.nodes[id-1], nil
}

func (c *Cluster) setWant(id int, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want[id] = up
}

// live returns the nodes that should be running, in node order.
func (c *Cluster) live() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node
	for _, nd := range c.nodes {
		if c.want[nd.id] {
			out = append(out, nd)
		}
	}
	return out
}

// Stop stops node id gracefully: SIGTERM (a controlled shutdown that moves its
// partition leaderships away first), then SIGKILL after StopGrace. It returns
// once the process has exited. Stopping a stopped node does nothing.
func (c *Cluster) Stop(id int) error {
	nd, err := c.node(id)
	if err != nil {
		return err
	}
	c.setWant(id, false)
	return nd.stop(StopGrace)
}

// Kill kills node id with SIGKILL, as a crash would: its leaderships stay until
// the controller fences it after broker.session.timeout.ms (3 s here).
func (c *Cluster) Kill(id int) error {
	nd, err := c.node(id)
	if err != nil {
		return err
	}
	c.setWant(id, false)
	return nd.stop(0)
}

// Restart starts node id again with the same directories and ports (stopping
// it first if it runs) and waits until the cluster is ready. Its replicas may
// still be catching up: use WaitInSync to wait for them.
func (c *Cluster) Restart(id int) error {
	nd, err := c.node(id)
	if err != nil {
		return err
	}
	if err := c.Stop(id); err != nil {
		return err
	}
	if err := nd.start(c.home, c.heap); err != nil {
		return err
	}
	c.setWant(id, true)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// Close stops every node and removes the directories unless they are kept.
// Nodes whose directories go anyway are killed at once: a graceful stop of a
// whole 3-node cluster takes about 6 s (the last nodes' controlled shutdown
// waits for a quorum that is going away) and would preserve nothing. Kept
// clusters are stopped gracefully (SIGTERM, SIGKILL after StopGrace) so their
// logs end cleanly. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.keep {
			c.stopAll(StopGrace)
			return
		}
		c.stopAll(0)
		c.closeErr = c.removeDirs()
	})
	return c.closeErr
}

// stopAll stops every node at once; grace 0 kills.
func (c *Cluster) stopAll(grace time.Duration) {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		c.setWant(nd.id, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nd.stop(grace)
		}()
	}
	wg.Wait()
}

func (c *Cluster) removeDirs() error {
	if c.ownDir {
		return os.RemoveAll(c.dir)
	}
	var errs []error
	for _, nd := range c.nodes {
		errs = append(errs, os.RemoveAll(nd.dir))
	}
	if err := os.Remove(filepath.Join(c.dir, "cluster.id")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// liveAddrs returns the client addresses of the nodes that should be running.
func (c *Cluster) liveAddrs() []string {
	live := c.live()
	addrs := make([]string, len(live))
	for i, nd := range live {
		addrs[i] = nd.addr()
	}
	return addrs
}

// debugf traces start-up to stderr when $FLEETGATE_KAFKA_DEBUG is non-empty.
func (c *Cluster) debugf(format string, args ...any) {
	if os.Getenv(EnvDebug) != "" {
		fmt.Fprintf(os.Stderr, "kafkatest: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}
