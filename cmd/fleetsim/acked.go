package main

// The acked file: what `fleetsim run` had acknowledged, for `fleetsim verify`.
//
// It is JSON lines. The first line is a header:
//
//	{"fleetsim":"acked/v1","run":"5f3a9c1e","started":"2026-...Z","qos":1,"csa_base_ms":1763780000000}
//
// Every other line describes the messages one device sent that are routed to
// one topic (one report type), with sequence numbers as sorted, disjoint,
// inclusive ranges [first,last]:
//
//	{"device":"SIM-000001","source":"mqtt","type":"gps","topic":"message-gps",
//	 "seq":[[2,5],[9,9]],"unacked":[[31,32]],"resent":[[4,5]]}
//
//   - seq: acknowledged (PUBACK/PUBCOMP, HTTP 200): each must be in topic.
//   - unacked: sent at least once but never acknowledged (failed, given up,
//     still in flight at the end, or QoS 0): each may be in topic, or not.
//   - resent: sent more than once (a subset of seq ∪ unacked): these, and
//     only these, may appear in topic more than once.
//
// A device's seq numbers count all its messages whatever their type (1, 2, 3…
// over the device's whole stream), so a type's line has gaps where the device
// sent other types; a seq is in exactly one line of its device, except for
// legacy requests, whose one seq is copied to each message of the request
// (one line per type of the request). Records without a seq field come from
// CSA terminals (their closed form has no room for one): their seq is
// (ts - csa_base_ms) / 1000, since run sends CSA request n with dt =
// csa_base_ms + n seconds.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// ackedFormat is the header's "fleetsim" value.
const ackedFormat = "acked/v1"

// span is an inclusive range of sequence numbers, [first, last]. It is
// encoded as a two-element JSON array.
type span [2]int64

// spans is a set of sequence numbers as sorted, disjoint, non-adjacent spans
// once normalized.
type spans []span

// add adds seq, extending the last span when seq follows it. Adding in
// increasing order (the usual case) keeps the set normalized; any other order
// needs normalize before use.
func (s *spans) add(seq int64) {
	if n := len(*s); n > 0 {
		last := &(*s)[n-1]
		if seq == last[1]+1 {
			last[1] = seq
			return
		}
		if seq >= last[0] && seq <= last[1] {
			return
		}
	}
	*s = append(*s, span{seq, seq})
}

// normalize sorts and merges overlapping or adjacent spans.
func (s *spans) normalize() {
	v := *s
	if len(v) < 2 {
		return
	}
	sort.Slice(v, func(i, j int) bool { return v[i][0] < v[j][0] })
	out := v[:1]
	for _, sp := range v[1:] {
		last := &out[len(out)-1]
		if sp[0] <= last[1]+1 {
			last[1] = max(last[1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	*s = out
}

// contains reports whether seq is in the normalized set.
func (s spans) contains(seq int64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i][1] >= seq })
	return i < len(s) && s[i][0] <= seq
}

// count returns how many sequence numbers the normalized set holds.
func (s spans) count() int64 {
	var n int64
	for _, sp := range s {
		n += sp[1] - sp[0] + 1
	}
	return n
}

// ackedHeader is the first line of an acked file.
type ackedHeader struct {
	Format    string `json:"fleetsim"`
	Run       string `json:"run"`
	Started   string `json:"started"`
	QoS       int    `json:"qos"`
	CSABaseMS int64  `json:"csa_base_ms,omitempty"`
}

// ackedLine is one device and topic of an acked file.
type ackedLine struct {
	Device  string `json:"device"`
	Source  string `json:"source"`
	Type    string `json:"type"`
	Topic   string `json:"topic"`
	Seq     spans  `json:"seq,omitempty"`
	Unacked spans  `json:"unacked,omitempty"`
	Resent  spans  `json:"resent,omitempty"`
}

// typeLedger records the fate of one device's messages of one type.
type typeLedger struct {
	acked, unacked, resent spans
}

// ledger records the fate of every message of one device, per type (indexed
// like the run's mix). It has one owner at a time: the goroutine that learns
// the messages' outcomes.
type ledger struct {
	device string
	source string
	types  []typeLedger
}

func newLedger(device, source string, ntypes int) *ledger {
	return &ledger{device: device, source: source, types: make([]typeLedger, ntypes)}
}

// settle records the final outcome of message seq of type t, sent attempts
// times.
func (l *ledger) settle(t int, seq int64, acked bool, attempts int) {
	tl := &l.types[t]
	if acked {
		tl.acked.add(seq)
	} else {
		tl.unacked.add(seq)
	}
	if attempts > 1 {
		tl.resent.add(seq)
	}
}

// lines returns the acked file lines of the ledger, one per type it has
// messages of.
func (l *ledger) lines(types []string) []ackedLine {
	var out []ackedLine
	for i := range l.types {
		tl := &l.types[i]
		if len(tl.acked)+len(tl.unacked) == 0 {
			continue
		}
		tl.acked.normalize()
		tl.unacked.normalize()
		tl.resent.normalize()
		out = append(out, ackedLine{
			Device: l.device, Source: l.source, Type: types[i], Topic: topicOf(types[i]),
			Seq: tl.acked, Unacked: tl.unacked, Resent: tl.resent,
		})
	}
	return out
}

// writeAcked writes an acked file: the header, then the lines of every ledger
// in the order given.
func writeAcked(w io.Writer, h ackedHeader, types []string, ledgers []*ledger) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	h.Format = ackedFormat
	if err := enc.Encode(h); err != nil {
		return err
	}
	for _, l := range ledgers {
		for _, line := range l.lines(types) {
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// ackedFile is a parsed acked file.
type ackedFile struct {
	Header ackedHeader
	Lines  []ackedLine
}

// readAcked parses an acked file. The header is optional (a hand-written
// file may have none); lines for the same device and topic are merged.
func readAcked(r io.Reader) (*ackedFile, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	f := &ackedFile{}
	index := map[[2]string]int{}
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("acked file value %d: %w", n, err)
		}
		var probe struct {
			Format *string `json:"fleetsim"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("acked file value %d: %w", n, err)
		}
		if probe.Format != nil {
			if n != 1 {
				return nil, fmt.Errorf("acked file value %d: header after the first line", n)
			}
			if *probe.Format != ackedFormat {
				return nil, fmt.Errorf("acked file: format %q, want %q", *probe.Format, ackedFormat)
			}
			if err := json.Unmarshal(raw, &f.Header); err != nil {
				return nil, fmt.Errorf("acked file header: %w", err)
			}
			continue
		}
		var line ackedLine
		if err := json.Unmarshal(raw, &line); err != nil {
			return nil, fmt.Errorf("acked file value %d: %w", n, err)
		}
		if line.Device == "" || line.Topic == "" {
			return nil, fmt.Errorf("acked file value %d: device and topic are required", n)
		}
		for _, s := range [...]spans{line.Seq, line.Unacked, line.Resent} {
			for _, sp := range s {
				if sp[0] > sp[1] {
					return nil, fmt.Errorf("acked file value %d: range [%d,%d] is reversed", n, sp[0], sp[1])
				}
			}
		}
		key := [2]string{line.Device, line.Topic}
		if i, ok := index[key]; ok {
			prev := &f.Lines[i]
			prev.Seq = append(prev.Seq, line.Seq...)
			prev.Unacked = append(prev.Unacked, line.Unacked...)
			prev.Resent = append(prev.Resent, line.Resent...)
		} else {
			index[key] = len(f.Lines)
			f.Lines = append(f.Lines, line)
		}
	}
	for i := range f.Lines {
		l := &f.Lines[i]
		l.Seq.normalize()
		l.Unacked.normalize()
		l.Resent.normalize()
	}
	return f, nil
}
