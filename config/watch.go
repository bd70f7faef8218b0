package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// FileWatcher calls a function when the content of a file changes.
//
// It watches the file's directory, not the file: editors save by writing a
// new file and renaming it over the old one (the old file's watch would be
// lost), and Kubernetes mounts a ConfigMap's files as symbolic links
// through a "..data" link that it swaps atomically. Every event on the
// file's name or on a name starting with ".." starts or extends a quiet
// period; when it ends (Debounce after the last event, at most MaxWait
// after the first), the file is read and, if its content differs from the
// last content seen, the function is called. Changes of a symbolic link's
// target outside the directory are not seen (send SIGHUP).
//
// The function runs on the watcher's goroutine, one call at a time. Close
// stops the watcher and waits for a running call to return.
type FileWatcher struct {
	path     string
	watcher  *fsnotify.Watcher
	onChange func()
	log      *zap.Logger
	debounce time.Duration
	maxWait  time.Duration

	last      [sha256.Size]byte // hash of the content last seen (or of the read error)
	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// Default quiet periods of a FileWatcher.
const (
	DefaultDebounce = 200 * time.Millisecond
	DefaultMaxWait  = time.Second
)

// WatchFile starts watching path. debounce <= 0 means DefaultDebounce.
// The content at the time of the call is the baseline: only later changes
// call onChange.
func WatchFile(path string, debounce time.Duration, onChange func(), log *zap.Logger) (*FileWatcher, error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w := &FileWatcher{
		path:     filepath.Clean(path),
		onChange: onChange,
		log:      log,
		debounce: debounce,
		maxWait:  max(DefaultMaxWait, debounce),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	w.watcher = fw
	w.last = w.hash()
	go w.run()
	return w, nil
}

// Close stops watching. It is safe to call more than once.
func (w *FileWatcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		<-w.stopped
		err = w.watcher.Close()
	})
	return err
}

func (w *FileWatcher) run() {
	defer close(w.stopped)
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	var first time.Time // start of the current quiet period; zero: none
	for {
		select {
		case <-w.done:
			timer.Stop()
			return
		case ev, ok := <-w.watcher.Events:
			if !ok {
				return
			}
			if !w.relevant(ev.Name) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			timer.Reset(min(w.debounce, w.maxWait-now.Sub(first)))
		case err, ok := <-w.watcher.Errors:
			if !ok {
				return
			}
			w.log.Warn("watching the rules file", zap.String("file", w.path), zap.Error(err))
		case <-timer.C:
			first = time.Time{}
			if h := w.hash(); h != w.last {
				w.last = h
				w.onChange()
			}
		}
	}
}

// relevant tells whether an event on name may have changed the file.
func (w *FileWatcher) relevant(name string) bool {
	base := filepath.Base(name)
	return filepath.Clean(name) == w.path || strings.HasPrefix(base, "..")
}

// hash returns the hash of the file's content, or of the error reading it,
// so that a file that goes missing and comes back changed is seen.
func (w *FileWatcher) hash() [sha256.Size]byte {
	b, err := os.ReadFile(w.path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return sha256.Sum256(append([]byte("error: "), err.Error()...))
	}
	return sha256.Sum256(b)
}
