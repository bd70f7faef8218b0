package lookup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// Options are what a Set needs besides its Config.
type Options struct {
	// Log gets reloads, refused records and errors; nil logs nothing.
	Log *zap.Logger
	// Observer gets the tables' metrics; nil observes nothing.
	Observer Observer
	// Watch watches files; required when a table has a file.
	Watch WatchFunc
	// Kafka is the client that reads kafka_topic tables; nil: call
	// FollowKafka later. Its Consumer.Return.Errors should be true so that
	// consumer errors are counted. The Set does not close it.
	Kafka sarama.Client
	// PartitionRefresh is how often a Kafka table looks for partitions
	// added to its topic; 0 means DefaultPartitionRefresh.
	PartitionRefresh time.Duration
}

// DefaultPartitionRefresh is how often a Kafka table looks for new
// partitions of its topic by default.
const DefaultPartitionRefresh = time.Minute

type source interface {
	tableName() string
	ready() bool
	close() error
}

// Set is the open tables of a Config. Its methods are safe for concurrent
// use.
type Set struct {
	tables    map[string]*Table
	log       *zap.Logger
	topics    []*kafkaSource // Kafka tables not yet following their topic
	sources   []source
	closeOnce sync.Once
}

// Open loads every file table (an error if one cannot be loaded: there is
// no last good content yet) and starts watching it. Kafka tables are
// created empty; with opts.Kafka they start following their topics at
// once, otherwise when FollowKafka is called. Kafka tables fill in the
// background: Ready tells when they have caught up. cfg must be valid.
func Open(cfg Config, opts Options) (*Set, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	s := &Set{tables: make(map[string]*Table, len(cfg)), log: opts.Log}
	for _, name := range sortedNames(cfg) {
		tc := cfg[name]
		t := NewTable(name, opts.Observer)
		s.tables[name] = t
		log := opts.Log.With(zap.String("table", name))
		if tc.KafkaTopic != "" {
			s.topics = append(s.topics, newKafkaSource(t, tc, log, opts.PartitionRefresh))
			continue
		}
		f, err := newFileSource(t, tc, log)
		if err == nil && opts.Watch == nil {
			err = fmt.Errorf("lookups.%s.file: no file watcher", name)
		}
		if err == nil {
			err = f.start(opts.Watch)
		}
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.sources = append(s.sources, f)
	}
	if opts.Kafka != nil {
		if err := s.FollowKafka(opts.Kafka); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// KafkaTopics returns the topics of the Kafka tables.
func (s *Set) KafkaTopics() []string {
	if s == nil {
		return nil
	}
	var topics []string
	for _, k := range s.topics {
		topics = append(topics, k.topic)
	}
	return topics
}

// FollowKafka starts reading every Kafka table's topic with client (its
// Consumer.Return.Errors should be true, so that consumer errors are
// counted; the Set does not close it). Call it once.
func (s *Set) FollowKafka(client sarama.Client) error {
	for _, k := range s.topics {
		if err := k.start(client); err != nil {
			return err
		}
		s.sources = append(s.sources, k)
		k.log.Info("lookup table following its topic", zap.String("topic", k.topic))
	}
	s.topics = nil
	return nil
}

func sortedNames(cfg Config) []string {
	names := make([]string, 0, len(cfg))
	for n := range cfg {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NewSet returns a Set of tables already loaded (LoadFile), with no
// sources: for rules test and tests.
func NewSet(tables ...*Table) *Set {
	s := &Set{tables: make(map[string]*Table, len(tables))}
	for _, t := range tables {
		s.tables[t.name] = t
	}
	return s
}

// Lookup returns the table called name.
func (s *Set) Lookup(name string) (*Table, bool) {
	if s == nil {
		return nil, false
	}
	t, ok := s.tables[name]
	return t, ok
}

// Table implements iotsql.Lookups: lookup('name', key) in a rule finds
// the table when the rule is compiled.
func (s *Set) Table(name string) (iotsql.LookupTable, bool) {
	if t, ok := s.Lookup(name); ok {
		return t, true
	}
	return nil, false
}

// Names returns the table names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.tables))
}

// Ready returns nil once every table holds its whole source: files are
// loaded at Open, a Kafka table is ready when it has read every partition
// up to the end offset it had at Open.
func (s *Set) Ready() error {
	if s == nil {
		return nil
	}
	var behind []string
	for _, k := range s.topics {
		behind = append(behind, k.table.name)
	}
	for _, src := range s.sources {
		if !src.ready() {
			behind = append(behind, src.tableName())
		}
	}
	if len(behind) > 0 {
		return fmt.Errorf("lookup tables still loading from Kafka: %s", strings.Join(behind, ", "))
	}
	return nil
}

// WaitReady polls Ready until it returns nil or ctx ends.
func (s *Set) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close stops watching files and following topics, and waits for that.
// The tables keep their content. It is safe to call more than once.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	s.closeOnce.Do(func() {
		for _, src := range s.sources {
			errs = append(errs, src.close())
		}
	})
	return errors.Join(errs...)
}
