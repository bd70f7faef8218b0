package broker

import (
	"container/list"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"time"
)

// backoff remembers recent authentication failures by key (a remote
// address, a username) and says how long to hold each refusal
// (mqtt.auth.backoff). It keeps at most MaxTracked keys, forgetting the one
// whose last failure is oldest. It is safe for concurrent use.
//
// Use: admit before checking the credentials; on failure, fail (and hold
// the refusal for the delay it returns); in every case release once the
// answer is sent. A nil *backoff (mqtt.auth.backoff.keys empty) admits
// everything and holds nothing.
type backoff struct {
	cfg BackoffConfig
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // -> *failures
	lru  *list.List               // front: most recent failure
	// checking counts the attempts of each username being checked or held
	// now, failures or not: one device never needs more than one at a
	// time, so even a first burst of parallel guesses at one username is
	// bounded. An entry is deleted at zero: its size is bounded by the
	// connections in their CONNECT.
	checking map[string]int
}

type failures struct {
	key     string
	count   int
	last    time.Time
	waiting int // attempts of this key being checked or held now
}

func newBackoff(cfg BackoffConfig) *backoff {
	return &backoff{cfg: cfg, now: time.Now, keys: map[string]*list.Element{}, lru: list.New(), checking: map[string]int{}}
}

// keysOf returns the back-off keys of an attempt.
func (b *backoff) keysOf(remote, username string) []string {
	if b == nil {
		return nil
	}
	var keys []string
	if b.cfg.has("remote_addr") && remote != "" {
		if host, _, err := net.SplitHostPort(remote); err == nil {
			remote = host
		}
		keys = append(keys, "addr:"+remote)
	}
	if b.cfg.has("username") && username != "" {
		keys = append(keys, userKey(username))
	}
	return keys
}

// maxKeyBytes bounds a back-off key: usernames and addresses come from the
// client (a username may be as long as mqtt.max_packet_bytes), and
// max_tracked keys of that size would be gigabytes.
const maxKeyBytes = 64

// userKey is the back-off key of a username: "user:" and the name, or for
// a longer name than fits in maxKeyBytes, "user#" and its SHA-256.
func userKey(username string) string {
	if len(userKeyPrefix)+len(username) <= maxKeyBytes {
		return userKeyPrefix + username
	}
	sum := sha256.Sum256([]byte(username))
	return "user#" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// attempt is one authentication attempt's hold on its keys' counts of
// waiting attempts; release gives it back.
type attempt struct {
	b    *backoff
	keys []string
	held []*failures
	user string // its username key in checking; "" when none or released
}

// admit lets an attempt on keys be checked, or refuses it (false) when its
// username, or one of its keys with recent failures, already has
// MaxWaiting attempts being checked or held: that bounds the guesses per
// key, even in bursts of parallel connections. Addresses without failures
// are not limited, so a fleet reconnecting at once through one address is
// not held back.
func (b *backoff) admit(keys []string) (*attempt, bool) {
	if b == nil {
		return nil, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	a := &attempt{b: b, keys: keys}
	for _, k := range keys {
		if f := b.get(k, now); f != nil {
			if f.waiting >= b.cfg.MaxWaiting {
				return nil, false
			}
			a.held = append(a.held, f)
		}
		if strings.HasPrefix(k, userKeyPrefix) || strings.HasPrefix(k, "user#") {
			if b.checking[k] >= b.cfg.MaxWaiting {
				return nil, false
			}
			a.user = k
		}
	}
	for _, f := range a.held {
		f.waiting++
	}
	if a.user != "" {
		b.checking[a.user]++
	}
	return a, true
}

// fail records the attempt's failure on all its keys and returns how long
// to hold the refusal: the longest of the keys' delays. The attempt keeps
// its keys' slots until release.
func (a *attempt) fail() time.Duration {
	if a == nil {
		return 0
	}
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var delay time.Duration
	for _, k := range a.keys {
		e, ok := b.keys[k]
		if !ok {
			f := &failures{key: k, waiting: 1}
			e = b.lru.PushFront(f)
			b.keys[k] = e
			a.held = append(a.held, f)
			for b.lru.Len() > b.cfg.MaxTracked {
				old := b.lru.Back()
				b.lru.Remove(old)
				delete(b.keys, old.Value.(*failures).key)
			}
		} else {
			b.lru.MoveToFront(e)
		}
		f := e.Value.(*failures)
		f.count++
		f.last = now
		delay = max(delay, b.delay(f.count))
	}
	return delay
}

// release gives back the attempt's slots (after its answer was sent). It
// may be called more than once.
func (a *attempt) release() {
	if a == nil {
		return
	}
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	for _, f := range a.held {
		f.waiting-- // harmless on an entry already forgotten
	}
	a.held = nil
	if a.user != "" {
		if a.b.checking[a.user]--; a.b.checking[a.user] <= 0 {
			delete(a.b.checking, a.user)
		}
		a.user = ""
	}
}

// succeed forgets the failures of key (a username that authenticated).
func (b *backoff) succeed(key string) {
	if b == nil {
		return
	}
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

// userKeyPrefix starts the key of a username.
const userKeyPrefix = "user:"

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
