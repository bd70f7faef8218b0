package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// TopicSpec is how EnsureTopics creates a missing topic.
type TopicSpec struct {
	// Partitions is the partition count; at least 1.
	Partitions int32
	// ReplicationFactor is the number of replicas; at least 1 and at most
	// the number of brokers.
	ReplicationFactor int16
	// Config holds topic configs such as retention.ms; nil for the broker's
	// defaults.
	Config map[string]string
}

// MissingTopicsError reports topics the gateway needs that the cluster does
// not have.
type MissingTopicsError struct {
	// Topics are the missing topics, in the order they were asked for.
	Topics []string
}

func (e *MissingTopicsError) Error() string {
	return fmt.Sprintf("kafka topics missing from the cluster: %s; create them or set kafka.topics.create: true",
		strings.Join(e.Topics, ", "))
}

// topicPollInterval is how often EnsureTopics looks for topics it created.
const topicPollInterval = 100 * time.Millisecond

// EnsureTopics checks that every topic in names exists in the cluster. With
// create, it creates the missing ones with spec (a topic another gateway
// created meanwhile is fine) and waits until the cluster's metadata shows
// them with their partitions; otherwise it returns a *MissingTopicsError
// listing them. ctx bounds the whole call, checked between requests: a
// single request is bounded by client's own timeouts.
//
// It never asks the cluster to create a topic by a metadata request: it reads
// the full topic list, whatever client's Metadata.AllowAutoTopicCreation
// says. That full refresh also replaces client's cached metadata.
func EnsureTopics(ctx context.Context, client sarama.Client, names []string, create bool, spec TopicSpec) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check kafka topics: %w", err)
	}
	known, err := listTopics(client)
	if err != nil {
		return fmt.Errorf("check kafka topics: %w", err)
	}
	var missing []string
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		if _, ok := known[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !create {
		return &MissingTopicsError{Topics: missing}
	}
	if err := createTopics(ctx, client, missing, spec); err != nil {
		return err
	}
	return waitForTopics(ctx, client, missing)
}

// createTopics creates topics with spec through the controller.
func createTopics(ctx context.Context, client sarama.Client, topics []string, spec TopicSpec) error {
	if spec.Partitions < 1 {
		return fmt.Errorf("create kafka topics %s: partitions must be at least 1, got %d", strings.Join(topics, ", "), spec.Partitions)
	}
	if spec.ReplicationFactor < 1 {
		return fmt.Errorf("create kafka topics %s: replication factor must be at least 1, got %d", strings.Join(topics, ", "), spec.ReplicationFactor)
	}
	// The admin only borrows client: its Close would close client, so it
	// is not called (the admin holds nothing else).
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("create kafka topics: find the controller: %w", err)
	}
	var entries map[string]*string
	if len(spec.Config) > 0 {
		entries = make(map[string]*string, len(spec.Config))
		for k, v := range spec.Config {
			entries[k] = &v
		}
	}
	var errs []error
	for _, t := range topics {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("create kafka topic %q: %w", t, err)
		}
		detail := &sarama.TopicDetail{
			NumPartitions:     spec.Partitions,
			ReplicationFactor: spec.ReplicationFactor,
			ConfigEntries:     entries,
		}
		err := admin.CreateTopic(t, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create kafka topic %q: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// waitForTopics polls the cluster's metadata until every topic shows with its
// partitions: creation is asynchronous in Kafka, and the producer must not
// start on a topic its metadata does not know yet.
func waitForTopics(ctx context.Context, client sarama.Client, topics []string) error {
	t := time.NewTicker(topicPollInterval)
	defer t.Stop()
	for {
		pending, err := topicsNotReady(client, topics)
		if err == nil && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for created kafka topics: %w (last error: %w)", ctx.Err(), err)
			}
			return fmt.Errorf("wait for created kafka topics %s: %w", strings.Join(pending, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// topicsNotReady returns the topics the metadata does not show yet, or shows
// without partitions.
func topicsNotReady(client sarama.Client, topics []string) ([]string, error) {
	known, err := listTopics(client)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, t := range topics {
		if _, ok := known[t]; !ok {
			pending = append(pending, t)
			continue
		}
		if ps, err := client.Partitions(t); err != nil || len(ps) == 0 {
			pending = append(pending, t)
		}
	}
	return pending, nil
}

// listTopics refreshes client's metadata for all topics and returns their
// names. Asking for all topics never auto-creates one.
func listTopics(client sarama.Client) (map[string]struct{}, error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("refresh metadata: %w", err)
	}
	names, err := client.Topics()
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return set, nil
}
