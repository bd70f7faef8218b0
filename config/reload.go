package config

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/router"
)

// RulesTarget takes reloaded rules; the gateway's *router.Engine is one.
// Swap must install the table atomically: messages already being processed
// finish under the previous one.
type RulesTarget interface {
	Swap(*router.Rules)
}

// ReloaderOptions tune a Reloader.
type ReloaderOptions struct {
	// Debounce is the watcher's quiet period after a change; 0 means
	// DefaultDebounce.
	Debounce time.Duration
	// Check vets new rules before they are swapped in; an error rejects
	// them. The gateway makes sure Kafka has the rules' literal topics.
	// nil: no check.
	Check func(ctx context.Context, rules *router.Rules) error
	// CheckTimeout bounds Check for reloads the watcher starts; default 30s.
	CheckTimeout time.Duration
	// Compiler builds the compiler for each reload, with the lookup tables
	// and freshly loaded schemas (schemas are reloaded with the rules); an
	// error rejects the reload. nil: the default compiler.
	Compiler func(ctx context.Context) (*router.Compiler, error)
	// OnReload is called after every reload attempt with whether the new
	// rules were swapped in (the metrics count rule reloads by result).
	// nil: none.
	OnReload func(ok bool)
}

// ErrNoRulesFile is returned by Reload when the rules come from no file
// (the development default).
var ErrNoRulesFile = errors.New("nothing to reload: the rules are the built-in default, from no file")

// Reloader keeps a target's rules in step with the file they come from:
// rules_file, or the configuration file's rules: (only that key is
// reloaded; other keys need a restart). A reload reads and validates the
// whole file, compiles every rule, runs Check, and only then swaps the new
// table in; any problem keeps the previous rules, is logged with its
// file:line and reported to OnReload. It is safe for concurrent use.
type Reloader struct {
	path       string
	standalone bool
	target     RulesTarget
	opts       ReloaderOptions
	log        *zap.Logger

	mu      sync.Mutex // serialises reloads
	watcher *FileWatcher
}

// NewReloader returns a Reloader of cfg's rules into target. Nothing is
// watched until Start.
func NewReloader(cfg *Config, target RulesTarget, opts ReloaderOptions, log *zap.Logger) *Reloader {
	r := &Reloader{target: target, opts: opts, log: log}
	switch {
	case cfg.RulesFile != "":
		r.path, r.standalone = cfg.RulesFile, true
	case cfg.Source != "":
		r.path = cfg.Source
	}
	if r.opts.CheckTimeout <= 0 {
		r.opts.CheckTimeout = 30 * time.Second
	}
	return r
}

// Path returns the file the rules are reloaded from; "" when there is none.
func (r *Reloader) Path() string { return r.path }

// Start watches the rules file and reloads it when its content changes.
// Without a file it does nothing.
func (r *Reloader) Start() error {
	if r.path == "" {
		return nil
	}
	w, err := WatchFile(r.path, r.opts.Debounce, func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.CheckTimeout)
		defer cancel()
		_ = r.Reload(ctx) // logged and reported by Reload
	}, r.log)
	if err != nil {
		return err
	}
	r.watcher = w
	r.log.Info("watching the rules file for changes", zap.String("file", r.path))
	return nil
}

// Reload reloads the rules now (SIGHUP does this). It logs the outcome
// itself, since most reloads (the watcher's) have no caller to tell; the
// error, an *Error for problems in the file, is for callers that want to
// say more.
func (r *Reloader) Reload(ctx context.Context) error {
	if r.path == "" {
		return ErrNoRulesFile
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rc *router.Compiler
	var err error
	if r.opts.Compiler != nil {
		rc, err = r.opts.Compiler(ctx)
	}
	var rules *router.Rules
	if err == nil {
		rules, _, err = LoadRulesWith(r.path, r.standalone, rc)
	}
	if err == nil && r.opts.Check != nil {
		err = r.opts.Check(ctx, rules)
	}
	if err != nil {
		var problems []string
		var ce *Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				problems = append(problems, p.String())
			}
		} else {
			problems = []string{err.Error()}
		}
		r.log.Error("rules reload rejected; the previous rules stay in force",
			zap.String("file", r.path), zap.Strings("problems", problems))
		r.report(false)
		return err
	}
	r.target.Swap(rules)
	msg := "rules reloaded"
	if !r.standalone {
		msg = "rules reloaded from the configuration file (only rules: is reloaded; other keys need a restart)"
	}
	r.log.Info(msg, zap.String("file", r.path), zap.Strings("rules", rules.Names()))
	r.report(true)
	return nil
}

func (r *Reloader) report(ok bool) {
	if r.opts.OnReload != nil {
		r.opts.OnReload(ok)
	}
}

// Close stops watching; a reload in progress finishes first. It is safe to
// call more than once.
func (r *Reloader) Close() error {
	if r.watcher == nil {
		return nil
	}
	return r.watcher.Close()
}
