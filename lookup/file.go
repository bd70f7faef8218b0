package lookup

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// WatchFunc starts watching path and calls onChange, one call at a time,
// whenever the file's content changes; closing the result stops it.
// config.WatchFile does this (the gateway adapts it).
type WatchFunc func(path string, onChange func()) (io.Closer, error)

// fileSource keeps a table in step with a file.
type fileSource struct {
	table  *Table
	path   string
	key    string
	format fileFormat
	log    *zap.Logger
	watch  io.Closer

	// loading serializes loads: the watch may report a change while the
	// first load runs, and the later read must be the one that stays.
	loading sync.Mutex
}

// LoadFile reads a file table once, without watching it (for rules test
// and for the first load). name is the table's name.
func LoadFile(name string, cfg TableConfig, obs Observer) (*Table, error) {
	f, err := newFileSource(NewTable(name, obs), cfg, zap.NewNop())
	if err != nil {
		return nil, err
	}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f.table, nil
}

func newFileSource(t *Table, cfg TableConfig, log *zap.Logger) (*fileSource, error) {
	format, err := formatOf(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("lookups.%s.file: %w", t.name, err)
	}
	return &fileSource{table: t, path: cfg.File, key: cfg.Key, format: format, log: log}, nil
}

// load reads and parses the whole file and swaps it in; on error the
// table keeps what it had.
func (f *fileSource) load() error {
	f.loading.Lock()
	defer f.loading.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("lookups.%s.file: %w", f.table.name, err)
	}
	var rows map[string][]byte
	switch f.format {
	case formatCSV:
		rows, err = parseCSV(data, f.key)
	default:
		rows, err = parseJSONL(data, f.key)
	}
	if err != nil {
		return fmt.Errorf("lookups.%s.file: %s: %w", f.table.name, f.path, err)
	}
	f.table.replace(rows, time.Now())
	return nil
}

// start watches the file, then loads it, and reloads it on every change.
// The watch comes first: its baseline is the content it sees when it
// starts, so a change landing between the two is either in the load or a
// change the watch reports; loading first could miss it for good.
func (f *fileSource) start(watch WatchFunc) error {
	w, err := watch(f.path, f.reload)
	if err != nil {
		return fmt.Errorf("lookups.%s.file: %w", f.table.name, err)
	}
	f.watch = w
	if err := f.load(); err != nil {
		_ = f.close()
		return err
	}
	return nil
}

func (f *fileSource) reload() {
	if err := f.load(); err != nil {
		f.table.obs.LookupRefreshFailed(f.table.name)
		f.log.Error("lookup table reload failed; keeping the last good content",
			zap.String("table", f.table.name), zap.Int("rows", f.table.Len()), zap.Error(err))
		return
	}
	f.log.Info("lookup table reloaded", zap.String("table", f.table.name),
		zap.String("file", f.path), zap.Int("rows", f.table.Len()))
}

func (f *fileSource) tableName() string { return f.table.name }
func (f *fileSource) ready() bool       { return true }

func (f *fileSource) close() error {
	if f.watch == nil {
		return nil
	}
	return f.watch.Close()
}
