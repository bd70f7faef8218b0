package lookup

import (
	"context"
	"errors"
	"fmt"
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
	// Kafka is the client that reads kafka_topic tables; required when a
	// table has one. Its Consumer.Return.Errors should be true so that
	// consumer errors are counted. The Set does not close it.
	Kafka sarama.Client
}

type source interface {
	tableName() string
	ready() bool
	close() error
}

// Set is the open tables of a Config. Its methods are safe for concurrent
// use.
type Set struct {
	tables    map[string]*Table
	sources   []source
	closeOnce sync.Once
}

// Open loads every file table (an error if one cannot be loaded: there is
// no last good content yet) and starts watching it, and starts following
// every kafka_topic table. Kafka tables fill in the background: Ready tells
// when they have caught up. cfg must be valid.
func Open(cfg Config, opts Options) (*Set, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	s := &Set{tables: make(map[string]*Table, len(cfg))}
	for _, name := range sortedNames(cfg) {
		tc := cfg[name]
		t := NewTable(name, opts.Observer)
		log := opts.Log.With(zap.String("table", name))
		var err error
		switch {
		case tc.File != "":
			var f *fileSource
			if f, err = newFileSource(t, tc, log); err == nil {
				if opts.Watch == nil {
					err = fmt.Errorf("lookups.%s.file: no file watcher", name)
				} else if err = f.start(opts.Watch); err == nil {
					s.sources = append(s.sources, f)
				}
			}
		default:
			if opts.Kafka == nil {
				err = fmt.Errorf("lookups.%s.kafka_topic: no Kafka client", name)
				break
			}
			k := newKafkaSource(t, tc, log)
			if err = k.start(opts.Kafka); err == nil {
				s.sources = append(s.sources, k)
			}
		}
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.tables[name] = t
	}
	return s, nil
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
	names := make([]string, 0, len(s.tables))
	for n := range s.tables {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Ready returns nil once every table holds its whole source: files are
// loaded at Open, a Kafka table is ready when it has read every partition
// up to the end offset it had at Open.
func (s *Set) Ready() error {
	if s == nil {
		return nil
	}
	var behind []string
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
