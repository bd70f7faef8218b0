// Package lookup holds in-memory snapshot tables that rules read with
// lookup('name', key): enrichment data such as the vehicle each terminal is
// fitted to. A table is loaded from a file (JSONL or CSV, reloaded when it
// changes) or from a compacted Kafka topic (read from the beginning, then
// followed). Reading a table is a map lookup under a read lock: the message
// path never waits for a file or the network.
//
// Rows are kept as compact JSON bytes and decoded on each hit (Get):
// docs/benchmarks.md shows this takes less than a quarter of the memory of
// decoded objects for the same rows.
package lookup

import (
	"sync"
	"time"

	"github.com/fleetgate/fleetgate/router/iotsql"
)

// Observer is told what tables do, for metrics. Implementations must be
// safe for concurrent use and cheap: Hit and Miss run on the message path.
type Observer interface {
	// LookupRows reports the row count of table after a load or a change.
	LookupRows(table string, rows int)
	// LookupHit and LookupMiss count a Get that found or missed its key.
	LookupHit(table string)
	LookupMiss(table string)
	// LookupRefreshed reports the time table last took a new snapshot or
	// change.
	LookupRefreshed(table string, at time.Time)
	// LookupRefreshFailed counts a reload or record that was refused (the
	// table keeps its last good content).
	LookupRefreshFailed(table string)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) LookupRows(string, int)            {}
func (NopObserver) LookupHit(string)                  {}
func (NopObserver) LookupMiss(string)                 {}
func (NopObserver) LookupRefreshed(string, time.Time) {}
func (NopObserver) LookupRefreshFailed(string)        {}

// Table is one named lookup table. Its methods are safe for concurrent use.
type Table struct {
	name string
	obs  Observer

	mu   sync.RWMutex
	rows map[string][]byte // key -> the row as compact JSON (an object)
}

// NewTable returns an empty table. A nil obs observes nothing.
func NewTable(name string, obs Observer) *Table {
	if obs == nil {
		obs = NopObserver{}
	}
	return &Table{name: name, obs: obs, rows: map[string][]byte{}}
}

// Name returns the table's name.
func (t *Table) Name() string { return t.name }

// Row returns the row stored under key as a compact JSON object, and
// whether there is one. The bytes are shared: do not modify them.
func (t *Table) Row(key string) ([]byte, bool) {
	t.mu.RLock()
	row, ok := t.rows[key]
	t.mu.RUnlock()
	if ok {
		t.obs.LookupHit(t.name)
	} else {
		t.obs.LookupMiss(t.name)
	}
	return row, ok
}

// Get implements iotsql.LookupTable: the row under key decoded into the
// rule language's values (a map[string]any), decoded anew on every call so
// that the table keeps only the compact JSON.
func (t *Table) Get(key string) (any, bool) {
	row, ok := t.Row(key)
	if !ok {
		return nil, false
	}
	v, err := iotsql.DecodeJSON(row)
	if err != nil { // rows are checked when loaded; this is a bug
		return nil, false
	}
	return v, true
}

// Len returns the number of rows.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.rows)
}

// replace swaps in a whole new snapshot.
func (t *Table) replace(rows map[string][]byte, at time.Time) {
	t.mu.Lock()
	t.rows = rows
	t.mu.Unlock()
	t.obs.LookupRows(t.name, len(rows))
	t.obs.LookupRefreshed(t.name, at)
}

// apply sets (row != nil) or deletes (row == nil) keys, as one change.
func (t *Table) apply(changes []change, at time.Time) {
	t.mu.Lock()
	for _, c := range changes {
		if c.row == nil {
			delete(t.rows, c.key)
		} else {
			t.rows[c.key] = c.row
		}
	}
	n := len(t.rows)
	t.mu.Unlock()
	t.obs.LookupRows(t.name, n)
	t.obs.LookupRefreshed(t.name, at)
}

type change struct {
	key string
	row []byte // nil: delete
}
