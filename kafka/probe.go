package kafka

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// Prober tells whether the Kafka cluster answers, for readiness: every
// interval it sends a metadata request for the gateway's topics over a
// connection of its own (so it never queues behind, or disturbs, the
// producer's requests) and keeps the result. Err answers from that result
// at once. Start it once and Close it once; its methods are safe for
// concurrent use.
type Prober struct {
	conf     *sarama.Config
	seeds    []string
	cluster  func() []string // the brokers the producer's metadata knows
	topics   []string
	interval time.Duration
	log      *zap.Logger

	mu      sync.Mutex
	err     error
	checked time.Time
	started bool

	// conn and next belong to the probing goroutine.
	conn *sarama.Broker
	next int

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// ProbeInterval is how often a Prober asks. Readiness follows Kafka within
// about this long.
const ProbeInterval = 2 * time.Second

// NewProber returns a prober for cfg's cluster asking about topics; client,
// when not nil, supplies the brokers to ask (the bootstrap list otherwise).
// cfg must be valid.
func NewProber(cfg Config, client sarama.Client, topics []string, log *zap.Logger) (*Prober, error) {
	sc, err := saramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	// A probe must answer well within a load balancer's health-check
	// interval; a broker that takes longer counts as unreachable.
	sc.Net.DialTimeout = time.Second
	sc.Net.ReadTimeout = time.Second
	sc.Net.WriteTimeout = time.Second
	p := &Prober{
		conf:     sc,
		seeds:    append([]string(nil), cfg.Brokers...),
		topics:   append([]string(nil), topics...),
		interval: ProbeInterval,
		log:      log,
		err:      errors.New("kafka not probed yet"),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if client != nil {
		p.cluster = func() []string {
			var addrs []string
			for _, b := range client.Brokers() {
				addrs = append(addrs, b.Addr())
			}
			return addrs
		}
	}
	return p, nil
}

// Start probes once, so that Err is meaningful when it returns, then keeps
// probing in the background until Close.
func (p *Prober) Start() {
	p.probe()
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	go p.run()
}

func (p *Prober) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.probe()
		case <-p.stop:
			if p.conn != nil {
				_ = p.conn.Close()
			}
			return
		}
	}
}

// Err returns nil when a broker answered the last probe, or why Kafka counts
// as unreachable. A result older than three intervals (a probe stuck) counts
// as unreachable too.
func (p *Prober) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil && !p.checked.IsZero() && time.Since(p.checked) > 3*p.interval {
		return fmt.Errorf("kafka: no probe answer since %s", p.checked.Format(time.RFC3339))
	}
	return p.err
}

// Close stops probing. Safe to call more than once, and without Start.
func (p *Prober) Close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.mu.Lock()
		started := p.started
		p.mu.Unlock()
		if started {
			<-p.done
		}
	})
}

func (p *Prober) probe() {
	err := p.ask()
	p.mu.Lock()
	was := p.err
	p.err, p.checked = err, time.Now()
	p.mu.Unlock()
	switch {
	case err != nil && was == nil:
		p.log.Warn("kafka unreachable: readiness fails until a broker answers", zap.Error(err))
	case err == nil && was != nil:
		p.log.Info("kafka reachable")
	}
}

// ask sends one metadata request, over the open connection or a new one to
// the next broker in turn.
func (p *Prober) ask() error {
	if p.conn == nil {
		addrs := p.seeds
		if p.cluster != nil {
			if known := p.cluster(); len(known) > 0 {
				addrs = known
			}
		}
		if len(addrs) == 0 {
			return errors.New("kafka: no broker address to probe")
		}
		p.next = (p.next + 1) % len(addrs)
		b := sarama.NewBroker(addrs[p.next])
		if err := b.Open(p.conf); err != nil {
			return fmt.Errorf("kafka broker %s: %w", b.Addr(), err)
		}
		p.conn = b
	}
	// Only our topics: asking for none would list every topic of the
	// cluster. The request never creates a topic.
	if _, err := p.conn.GetMetadata(sarama.NewMetadataRequest(p.conf.Version, p.topics)); err != nil {
		addr := p.conn.Addr()
		_ = p.conn.Close()
		p.conn = nil // the next probe tries the next broker
		return fmt.Errorf("kafka broker %s: %w", addr, err)
	}
	return nil
}
