package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// pollEvery is how often readiness conditions are checked.
const pollEvery = 200 * time.Millisecond

// topicTimeout bounds CreateTopic's wait for every broker to see the topic.
const topicTimeout = time.Minute

// probeTopic is only ever validated, never created, by WaitReady.
const probeTopic = "__kafkatest_probe"

// adminConfig is for the package's own short requests.
func (c *Cluster) adminConfig() *sarama.Config {
	cfg := c.SaramaConfig()
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Admin.Timeout = 10 * time.Second
	return cfg
}

// metadata asks the broker at addr itself (not a client's cache) for the
// cluster metadata; topics nil means all topics.
func (c *Cluster) metadata(addr string, topics []string) (*sarama.MetadataResponse, error) {
	b := sarama.NewBroker(addr)
	if err := b.Open(c.adminConfig()); err != nil {
		return nil, err
	}
	defer b.Close()
	return b.GetMetadata(sarama.NewMetadataRequest(c.version, topics))
}

// WaitReady waits until the cluster has settled: every running node answers
// metadata requests listing exactly the running nodes as brokers (so a killed
// node has been fenced) and a controller, and a topic with one replica per
// running node would be accepted by the controller. It fails early if a node
// that should run has exited, with the tail of its logs.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var last error
	for {
		for _, nd := range c.live() {
			if !nd.running() {
				return fmt.Errorf("kafkatest: node %d exited while waiting for the cluster (dir %s)\n%s", nd.id, nd.dir, nd.logs())
			}
		}
		if last = c.checkReady(); last == nil {
			return nil
		}
		c.debugf("not ready: %v", last)
		select {
		case <-ctx.Done():
			msg := ""
			for _, nd := range c.live() {
				msg += nd.logs()
			}
			return fmt.Errorf("kafkatest: cluster not ready: %w; last check: %v (dir %s)\n%s", ctx.Err(), last, c.dir, msg)
		case <-time.After(pollEvery):
		}
	}
}

func (c *Cluster) checkReady() error {
	live := c.live()
	if len(live) == 0 {
		return errors.New("no node is running")
	}
	want := make([]int32, len(live))
	addrs := make([]string, len(live))
	for i, nd := range live {
		want[i] = int32(nd.id)
		addrs[i] = nd.addr()
	}
	for _, nd := range live {
		md, err := c.metadata(nd.addr(), []string{})
		if err != nil {
			return fmt.Errorf("node %d: %w", nd.id, err)
		}
		got := make([]int32, len(md.Brokers))
		for i, b := range md.Brokers {
			got[i] = b.ID()
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("node %d lists brokers %v, want %v", nd.id, got, want)
		}
		if md.ControllerID < 0 {
			return fmt.Errorf("node %d knows no controller", nd.id)
		}
	}
	admin, err := sarama.NewClusterAdmin(addrs, c.adminConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	err = admin.CreateTopic(probeTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: int16(len(live))}, true)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("validate a topic with %d replicas: %w", len(live), err)
	}
	return nil
}

// CreateTopic creates a topic and waits until every running node has a
// leader for each of its partitions. partitions <= 0 means 1; rf <= 0 means
// one replica per node (3 on a 3-node cluster). cfg holds topic configs such
// as "min.insync.replicas" or "retention.ms". An existing topic gives an error
// that errors.Is matches with sarama.ErrTopicAlreadyExists.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16, cfg map[string]string) error {
	if partitions <= 0 {
		partitions = 1
	}
	if rf <= 0 {
		rf = int16(len(c.nodes))
	}
	entries := make(map[string]*string, len(cfg))
	for k, v := range cfg {
		entries[k] = &v
	}
	live := c.live()
	addrs := make([]string, len(live))
	for i, nd := range live {
		addrs[i] = nd.addr()
	}
	admin, err := sarama.NewClusterAdmin(addrs, c.adminConfig())
	if err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", name, err)
	}
	err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: entries}, false)
	admin.Close()
	if err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", name, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	return c.waitTopic(ctx, name, func(nd *node, tm *sarama.TopicMetadata) error {
		if len(tm.Partitions) != int(partitions) {
			return fmt.Errorf("node %d sees %d partitions, want %d", nd.id, len(tm.Partitions), partitions)
		}
		for _, p := range tm.Partitions {
			if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 {
				return fmt.Errorf("node %d: partition %d has no leader (%v)", nd.id, p.ID, p.Err)
			}
		}
		return nil
	})
}

// WaitInSync waits until every running node reports every partition of topic
// with all its replicas in sync (after a Restart, say).
func (c *Cluster) WaitInSync(ctx context.Context, topic string) error {
	return c.waitTopic(ctx, topic, func(nd *node, tm *sarama.TopicMetadata) error {
		for _, p := range tm.Partitions {
			if len(p.Isr) != len(p.Replicas) {
				return fmt.Errorf("node %d: partition %d has ISR %v of replicas %v", nd.id, p.ID, p.Isr, p.Replicas)
			}
		}
		return nil
	})
}

// waitTopic polls every running node's view of topic until ok accepts all.
func (c *Cluster) waitTopic(ctx context.Context, topic string, ok func(*node, *sarama.TopicMetadata) error) error {
	var last error
	for {
		last = nil
		for _, nd := range c.live() {
			tm, err := c.topicMetadata(nd, topic)
			if err == nil {
				err = ok(nd, tm)
			}
			if err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: topic %q: %w; last check: %v", topic, ctx.Err(), last)
		case <-time.After(pollEvery):
		}
	}
}

func (c *Cluster) topicMetadata(nd *node, topic string) (*sarama.TopicMetadata, error) {
	md, err := c.metadata(nd.addr(), []string{topic})
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", nd.id, err)
	}
	for _, tm := range md.Topics {
		if tm.Name == topic {
			if !errors.Is(tm.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("node %d: topic %q: %w", nd.id, topic, tm.Err)
			}
			return tm, nil
		}
	}
	return nil, fmt.Errorf("node %d: topic %q missing from metadata", nd.id, topic)
}

// LeaderOf returns the node that leads a partition, as the first running node
// that answers sees it. Right after a failover nodes may briefly disagree; poll
// until the answer is the one expected.
func (c *Cluster) LeaderOf(topic string, partition int32) (int, error) {
	var last error
	for _, nd := range c.live() {
		tm, err := c.topicMetadata(nd, topic)
		if err != nil {
			last = err
			continue
		}
		for _, p := range tm.Partitions {
			if p.ID != partition {
				continue
			}
			if !errors.Is(p.Err, sarama.ErrNoError) {
				return 0, fmt.Errorf("kafkatest: %s/%d: %w", topic, partition, p.Err)
			}
			if p.Leader < 0 {
				return 0, fmt.Errorf("kafkatest: %s/%d has no leader", topic, partition)
			}
			return int(p.Leader), nil
		}
		return 0, fmt.Errorf("kafkatest: %s has no partition %d", topic, partition)
	}
	if last == nil {
		last = errors.New("no node is running")
	}
	return 0, fmt.Errorf("kafkatest: leader of %s/%d: %w", topic, partition, last)
}
