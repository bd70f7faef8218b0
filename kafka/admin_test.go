package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestEnsureTopicsMissing(t *testing.T) {
	e := startEmbedded(t, 2, "message-log")
	client := newTestClient(t, e, sarama.V3_9_0_0)
	ctx := t.Context()

	err := EnsureTopics(ctx, client, []string{"message-log", "message-gps", "message-dlq", "message-gps"}, false, TopicSpec{Partitions: 3, ReplicationFactor: 1})
	var missing *MissingTopicsError
	if !errors.As(err, &missing) {
		t.Fatalf("EnsureTopics = %v, want a *MissingTopicsError", err)
	}
	if want := []string{"message-gps", "message-dlq"}; !slices.Equal(missing.Topics, want) {
		t.Errorf("missing topics %v, want %v", missing.Topics, want)
	}
	for _, s := range []string{"message-gps, message-dlq", "kafka.topics.create: true"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// Checking must not create them, whatever the client's settings.
	if err := client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	if topics, _ := client.Topics(); slices.Contains(topics, "message-gps") {
		t.Errorf("checking created message-gps: %v", topics)
	}

	if err := EnsureTopics(ctx, client, []string{"message-log"}, false, TopicSpec{}); err != nil {
		t.Errorf("EnsureTopics with all topics present = %v", err)
	}
}

func TestEnsureTopicsCreate(t *testing.T) {
	e := startEmbedded(t, 2, "message-log")
	client := newTestClient(t, e, sarama.V3_9_0_0)
	ctx := t.Context()
	spec := TopicSpec{Partitions: 5, ReplicationFactor: 1, Config: map[string]string{"retention.ms": "3600000"}}

	names := []string{"message-log", "message-gps", "message-dlq"}
	if err := EnsureTopics(ctx, client, names, true, spec); err != nil {
		t.Fatalf("EnsureTopics create: %v", err)
	}
	for _, tt := range []struct {
		topic string
		want  int
	}{{"message-log", 2}, {"message-gps", 5}, {"message-dlq", 5}} {
		ps, err := client.Partitions(tt.topic)
		if err != nil {
			t.Fatalf("Partitions(%s): %v", tt.topic, err)
		}
		if len(ps) != tt.want {
			t.Errorf("%s has %d partitions, want %d", tt.topic, len(ps), tt.want)
		}
	}

	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "message-gps", ConfigNames: []string{"retention.ms"}})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	if i := slices.IndexFunc(entries, func(c sarama.ConfigEntry) bool { return c.Name == "retention.ms" }); i < 0 || entries[i].Value != "3600000" {
		t.Errorf("message-gps configs %+v, want retention.ms=3600000", entries)
	}

	// Everything exists now: a second run has nothing to do.
	if err := EnsureTopics(ctx, client, names, true, spec); err != nil {
		t.Errorf("second EnsureTopics: %v", err)
	}
}

// TestEnsureTopicsCreateRace has another client create the topic between
// EnsureTopics' check and its create: the TopicAlreadyExists answer is fine.
func TestEnsureTopicsCreateRace(t *testing.T) {
	e := startEmbedded(t, 1)
	client := newTestClient(t, e, sarama.V3_9_0_0)
	other := newTestClient(t, e, sarama.V3_9_0_0)
	otherAdmin, err := sarama.NewClusterAdminFromClient(other)
	if err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	e.Cluster().ControlKey(int16(kmsg.CreateTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		if calls.Add(1) == 1 {
			// Hold our create until the other client's (on its own
			// connection) has gone through, then let kfake answer ours.
			e.Cluster().SleepControl(func() {
				if err := otherAdmin.CreateTopic("message-gps", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
					t.Errorf("other client's CreateTopic: %v", err)
				}
			})
		}
		return nil, nil, false
	})

	if err := EnsureTopics(t.Context(), client, []string{"message-gps"}, true, TopicSpec{Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatalf("EnsureTopics after a concurrent create: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d CreateTopics requests, want 2 (the race did not happen)", n)
	}
	if ps, _ := client.Partitions("message-gps"); len(ps) != 2 {
		t.Errorf("message-gps has %d partitions, want the other client's 2", len(ps))
	}
}

func TestEnsureTopicsErrors(t *testing.T) {
	e := startEmbedded(t, 1)
	client := newTestClient(t, e, sarama.V3_9_0_0)
	tests := []struct {
		name string
		spec TopicSpec
		want string
	}{
		{"no partitions", TopicSpec{ReplicationFactor: 1}, "partitions must be at least 1"},
		{"no replicas", TopicSpec{Partitions: 1}, "replication factor must be at least 1"},
		// The embedded broker has one node.
		{"too many replicas", TopicSpec{Partitions: 1, ReplicationFactor: 3}, `create kafka topic "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := EnsureTopics(t.Context(), client, []string{"x"}, true, tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EnsureTopics = %v, want an error saying %q", err, tt.want)
			}
		})
	}

	t.Run("context done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := EnsureTopics(ctx, client, []string{"y"}, true, TopicSpec{Partitions: 1, ReplicationFactor: 1})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("EnsureTopics with a cancelled context = %v", err)
		}
	})
}

// countMetadata counts the metadata requests the embedded broker serves.
func countMetadata(e *Embedded) *atomic.Int32 {
	var n atomic.Int32
	e.Cluster().ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false // observe only; kfake answers
	})
	return &n
}
