package broker

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// backoff remembers recent authentication failures by key (a remote
// address, a username) and says how long to hold each refusal
// (mqtt.auth.backoff). It keeps at most MaxTracked keys, forgetting the one
// whose last failure is oldest. It is safe for concurrent use.
type backoff struct {
	cfg BackoffConfig
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // -> *failures
	lru  *list.List               // front: most recent failure
}

type failures struct {
	key     string
	count   int
	last    time.Time
	waiting int // refusals of this key being held now
}

func newBackoff(cfg BackoffConfig) *backoff {
	return &backoff{cfg: cfg, now: time.Now, keys: map[string]*list.Element{}, lru: list.New()}
}

// keysOf returns the back-off keys of an attempt.
func (b *backoff) keysOf(remote, username string) []string {
	var keys []string
	if b.cfg.has("remote_addr") && remote != "" {
		if host, _, err := net.SplitHostPort(remote); err == nil {
			remote = host
		}
		keys = append(keys, "addr:"+remote)
	}
	if b.cfg.has("username") && username != "" {
		keys = append(keys, "user:"+username)
	}
	return keys
}

// saturated tells whether one of keys already has MaxWaiting refusals
// held: the attempt is then refused at once, without checking it.
func (b *backoff) saturated(keys []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, k := range keys {
		if f := b.get(k, now); f != nil && f.waiting >= b.cfg.MaxWaiting {
			return true
		}
	}
	return false
}

// fail records a failure of keys and returns how long to hold the refusal
// (the longest of the keys' delays) and the function to call when the
// refusal has been sent.
func (b *backoff) fail(keys []string) (time.Duration, func()) {
	if len(keys) == 0 {
		return 0, func() {}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var delay time.Duration
	held := make([]*failures, 0, len(keys))
	for _, k := range keys {
		f := b.get(k, now)
		if f == nil {
			f = &failures{key: k}
			b.keys[k] = b.lru.PushFront(f)
			for b.lru.Len() > b.cfg.MaxTracked {
				old := b.lru.Back()
				b.lru.Remove(old)
				delete(b.keys, old.Value.(*failures).key)
			}
		} else {
			b.lru.MoveToFront(b.keys[k])
		}
		f.count++
		f.last = now
		f.waiting++
		held = append(held, f)
		delay = max(delay, b.delay(f.count))
	}
	return delay, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, f := range held {
			f.waiting-- // harmless on an entry already forgotten
		}
	}
}

// succeed forgets the failures of key (a username that authenticated).
func (b *backoff) succeed(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.keys[key]; ok && e.Value.(*failures).waiting == 0 {
		b.lru.Remove(e)
		delete(b.keys, key)
	}
}

// get returns key's failures, forgetting them when ForgetAfter has passed.
func (b *backoff) get(key string, now time.Time) *failures {
	e, ok := b.keys[key]
	if !ok {
		return nil
	}
	f := e.Value.(*failures)
	if now.Sub(f.last) > b.cfg.ForgetAfter && f.waiting == 0 {
		b.lru.Remove(e)
		delete(b.keys, key)
		return nil
	}
	return f
}

// delay is InitialDelay doubled for each failure after the first, capped.
func (b *backoff) delay(count int) time.Duration {
	d := b.cfg.InitialDelay
	for i := 1; i < count && d < b.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, b.cfg.MaxDelay)
}

// tracked returns the number of keys remembered.
func (b *backoff) tracked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}
