package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Histogram layout: values (microseconds) below histSub are counted exactly;
// above, each power of two is split into histSub/2 buckets, so a bucket is at
// most 1/64 (1.6%) of its values wide, as an HdrHistogram with two significant
// digits. Values are clamped to histMax (about 12.7 days).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128
	histHalf    = histSub / 2      // 64
	histMaxBits = 40
	histMax     = 1<<histMaxBits - 1
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
)

// histogram records latencies. The zero value is empty and ready. It is not
// safe for concurrent use; stats shards it behind mutexes.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sumUS  float64
	maxNS  int64 // exact
}

func histIndex(us int64) int {
	if us < 0 {
		us = 0
	}
	if us > histMax {
		us = histMax
	}
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(uint64(us)) - histSubBits
	top := us >> shift // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(top-histHalf)
}

// histUpper is the highest value (µs) that falls in bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	top := int64((i-histSub)%histHalf + histHalf)
	return (top+1)<<shift - 1
}

// record adds one duration.
func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)]++
	h.n++
	h.sumUS += float64(us)
	if int64(d) > h.maxNS {
		h.maxNS = int64(d)
	}
}

// merge adds o's values to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sumUS += o.sumUS
	h.maxNS = max(h.maxNS, o.maxNS)
}

// quantile returns the value below or at which a fraction q of the recorded
// values lie, as the highest value of its bucket (never above the maximum).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return time.Duration(h.maxNS)
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			if i == histBuckets-1 { // values clamped into the last bucket
				return time.Duration(h.maxNS)
			}
			d := time.Duration(histUpper(i)) * time.Microsecond
			return min(d, time.Duration(h.maxNS))
		}
	}
	return time.Duration(h.maxNS)
}

// histShards spreads latency recording over several mutexes, so that a
// thousand recording goroutines do not queue on one.
const histShards = 64

type histShard struct {
	mu sync.Mutex
	h  histogram
}

// sourceStats counts one load source (MQTT or HTTPS). All methods are safe
// for concurrent use. For MQTT a unit is one message; for HTTPS one request,
// which carries one or more records.
type sourceStats struct {
	name  string
	clock time.Time // start of the measurement

	sent      atomic.Int64 // publishes or requests, resends included
	acked     atomic.Int64 // acknowledged units
	records   atomic.Int64 // records the acknowledged units produce
	failed    atomic.Int64 // failed attempts (a unit may fail, then be acked)
	resent    atomic.Int64 // attempts after the first
	unacked   atomic.Int64 // units never acknowledged, counted at the end
	inflight  atomic.Int64
	connFails atomic.Int64 // failed connection attempts (MQTT CONNECT or TLS)
	connLost  atomic.Int64 // established connections lost
	connected atomic.Int64 // connections currently up (MQTT)
	lastAckNS atomic.Int64 // since clock

	shards [histShards]histShard

	errMu  sync.Mutex
	errors map[string]int64 // distinct error texts, a few
}

func newSourceStats(name string) *sourceStats {
	return &sourceStats{name: name, errors: map[string]int64{}}
}

// ack records an acknowledged unit that took d from send to ack and produced
// records records. shard is any stable number of the caller's.
func (s *sourceStats) ack(shard int, d time.Duration, records int) {
	sh := &s.shards[shard%histShards]
	sh.mu.Lock()
	sh.h.record(d)
	sh.mu.Unlock()
	s.acked.Add(1)
	s.records.Add(int64(records))
	now := int64(time.Since(s.clock))
	for {
		last := s.lastAckNS.Load()
		if now <= last || s.lastAckNS.CompareAndSwap(last, now) {
			break
		}
	}
}

// maxErrorKinds caps how many distinct error texts are kept.
const maxErrorKinds = 8

// noteError counts an error by its text.
func (s *sourceStats) noteError(err string) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if _, ok := s.errors[err]; ok || len(s.errors) < maxErrorKinds {
		s.errors[err]++
	}
}

// errText is err's text without the addresses of network errors, so that
// the same failure on a thousand connections counts as one kind.
func errText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// histogram merges the shards.
func (s *sourceStats) histogram() *histogram {
	h := &histogram{}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		h.merge(&sh.h)
		sh.mu.Unlock()
	}
	return h
}

// LatencyMS is a latency distribution in milliseconds.
type LatencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func latencyOf(h *histogram) LatencyMS {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	l := LatencyMS{P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(time.Duration(h.maxNS))}
	if h.n > 0 {
		l.Mean = math.Round(h.sumUS/float64(h.n)) / 1e3
	}
	return l
}

// SourceSummary is the outcome of one load source.
type SourceSummary struct {
	Unit             string           `json:"unit"` // "message" (MQTT) or "request" (HTTPS)
	Devices          int              `json:"devices"`
	Connections      int              `json:"connections,omitempty"`
	Inflight         int              `json:"inflight,omitempty"`
	QoS              *int             `json:"qos,omitempty"` // MQTT only
	Sent             int64            `json:"sent"`
	Acked            int64            `json:"acked"`
	Failed           int64            `json:"failed"`
	Resent           int64            `json:"resent"`
	Unacked          int64            `json:"unacked"`
	Records          int64            `json:"records"`
	AckedPerS        float64          `json:"acked_per_s"`
	RecordsPerS      float64          `json:"records_per_s"`
	Latency          LatencyMS        `json:"latency_ms"`
	ConnectFailures  int64            `json:"connect_failures"`
	ConnectionLosses int64            `json:"connection_losses"`
	Connected        int64            `json:"connected,omitempty"` // --hold: connections up at the end of the hold
	Errors           map[string]int64 `json:"errors,omitempty"`
}

// Summary is the result of a run; --json prints it as one object.
type Summary struct {
	Run         string         `json:"run"`
	Started     time.Time      `json:"started"`
	ElapsedS    float64        `json:"elapsed_s"` // clock start to the last ack
	Size        int            `json:"size"`
	Rate        float64        `json:"rate"`
	DeviceRate  float64        `json:"device_rate,omitempty"` // open loop, per device
	Mix         string         `json:"mix"`
	Records     int64          `json:"records"` // records expected in Kafka from acked units
	RecordsPerS float64        `json:"records_per_s"`
	MQTT        *SourceSummary `json:"mqtt,omitempty"`
	HTTPS       *SourceSummary `json:"https,omitempty"`
	AckedFile   string         `json:"acked_file,omitempty"`
	// CPUS is the CPU time (user and system) the load tool itself used over
	// the whole run, connecting included: a benchmark sets it beside the
	// broker's, as the two share the machine.
	CPUS float64 `json:"cpu_s"`
	// GCCycles is how many collections the load tool ran while the clock
	// ran (--gc-headroom-mib), or -1 when it ran Go's default collector.
	GCCycles int64 `json:"gc_cycles"`
}

// summarize turns the counters into a summary. elapsed is the time from the
// clock start to the last ack of any source.
func (s *sourceStats) summarize(elapsed time.Duration) *SourceSummary {
	out := &SourceSummary{
		Sent: s.sent.Load(), Acked: s.acked.Load(), Failed: s.failed.Load(),
		Resent: s.resent.Load(), Unacked: s.unacked.Load(), Records: s.records.Load(),
		Latency:         latencyOf(s.histogram()),
		ConnectFailures: s.connFails.Load(), ConnectionLosses: s.connLost.Load(),
	}
	if sec := elapsed.Seconds(); sec > 0 {
		out.AckedPerS = math.Round(float64(out.Acked) / sec)
		out.RecordsPerS = math.Round(float64(out.Records) / sec)
	}
	s.errMu.Lock()
	if len(s.errors) > 0 {
		out.Errors = map[string]int64{}
		for k, v := range s.errors {
			out.Errors[k] = v
		}
	}
	s.errMu.Unlock()
	return out
}

// writeText prints the summary for people.
func (sum *Summary) writeText(w io.Writer) {
	gc := "Go's default collector"
	if sum.GCCycles >= 0 {
		gc = fmt.Sprintf("%d collections while the clock ran", sum.GCCycles)
	}
	fmt.Fprintf(w, "fleetsim run %s: %.1f s (clock start to last ack), %d records acked, %.0f records/s, load tool CPU %.1f s, %s\n",
		sum.Run, sum.ElapsedS, sum.Records, sum.RecordsPerS, sum.CPUS, gc)
	for _, src := range []struct {
		name string
		s    *SourceSummary
	}{{"mqtt", sum.MQTT}, {"https", sum.HTTPS}} {
		s := src.s
		if s == nil {
			continue
		}
		shape := fmt.Sprintf("%d devices", s.Devices)
		if s.Connections > 0 {
			shape += fmt.Sprintf(", %d connections x %d in flight", s.Connections, s.Inflight)
		}
		if s.QoS != nil {
			shape += fmt.Sprintf(", QoS %d", *s.QoS)
		}
		fmt.Fprintf(w, "  %-5s %s\n", src.name, shape)
		fmt.Fprintf(w, "        %ss sent %d, acked %d, failed %d, resent %d, unacked %d; %.0f acked/s\n",
			s.Unit, s.Sent, s.Acked, s.Failed, s.Resent, s.Unacked, s.AckedPerS)
		fmt.Fprintf(w, "        latency ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
			s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max, s.Latency.Mean)
		fmt.Fprintf(w, "        connect failures %d, connection losses %d\n", s.ConnectFailures, s.ConnectionLosses)
		if len(s.Errors) > 0 {
			keys := make([]string, 0, len(s.Errors))
			for k := range s.Errors {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "        error x%d: %s\n", s.Errors[k], strings.TrimSpace(k))
			}
		}
	}
	if sum.AckedFile != "" {
		fmt.Fprintf(w, "  acked file %s\n", sum.AckedFile)
	}
}
