package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/IBM/sarama"
)

// Violation kinds. Any of them makes verify exit 1.
const (
	vLoss           = "loss"            // an acked seq is not in its topic
	vReorder        = "reorder"         // a seq first seen after a greater one of the device, in one partition
	vDuplicate      = "duplicate"       // a seq seen again although run never re-sent it
	vWrongKey       = "wrong-key"       // record key != device_no
	vWrongPartition = "wrong-partition" // partition != murmur2(device_no) % partitions
	vMisrouted      = "misrouted"       // a seq run sent as another type is in this topic
)

// violationKinds is the order violations are reported in.
var violationKinds = []string{vLoss, vReorder, vDuplicate, vWrongKey, vWrongPartition, vMisrouted}

// kafkaRecord is one consumed record as the checker sees it.
type kafkaRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// Violation is one integrity violation. Partition and Offset are -1 for a
// loss, which has no record; a loss covers seqs Seq to SeqTo.
type Violation struct {
	Kind      string `json:"kind"`
	Device    string `json:"device"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Seq       int64  `json:"seq"`
	SeqTo     int64  `json:"seq_to,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// ViolationGroup is the count of one kind of violation and its first few.
type ViolationGroup struct {
	Kind  string      `json:"kind"`
	Count int64       `json:"count"` // for loss: missing seqs
	First []Violation `json:"first"`
}

// TopicReport totals one topic.
type TopicReport struct {
	Topic          string `json:"topic"`
	Records        int64  `json:"records"`         // consumed
	Checked        int64  `json:"checked"`         // of a device and type in the acked file
	Expected       int64  `json:"expected"`        // acked seqs to find
	Found          int64  `json:"found"`           // of them, found
	Missing        int64  `json:"missing"`         // of them, not found (loss)
	DupAllowed     int64  `json:"dup_allowed"`     // duplicates of re-sent seqs
	Duplicates     int64  `json:"duplicates"`      // duplicates of seqs sent once (violations)
	Reorders       int64  `json:"reorders"`        // violations
	WrongKey       int64  `json:"wrong_key"`       // violations
	WrongPartition int64  `json:"wrong_partition"` // violations
	Misrouted      int64  `json:"misrouted"`       // violations
	UnackedExtras  int64  `json:"unacked_extras"`  // sent, not acked, stored anyway: allowed
	UnknownExtras  int64  `json:"unknown_extras"`  // devices or seqs the acked file does not list: allowed
	OtherRun       int64  `json:"other_run"`       // "run" differs from the acked file's: ignored
	Unparseable    int64  `json:"unparseable"`     // not a JSON object with device_no: ignored
	NoSeq          int64  `json:"no_seq"`          // no seq and not a CSA record: ignored
}

// seqSet is a set of sequence numbers: a bitset for the dense range run
// produces, a map for anything far outside it.
type seqSet struct {
	bits  []uint64
	other map[int64]struct{}
}

// seqSetDense is how far past its current size the bitset grows at once.
const seqSetDense = 1 << 16

func (s *seqSet) has(q int64) bool {
	if q >= 0 && q/64 < int64(len(s.bits)) {
		return s.bits[q/64]&(1<<(q%64)) != 0
	}
	_, ok := s.other[q]
	return ok
}

func (s *seqSet) add(q int64) {
	if q >= 0 && q/64 < int64(len(s.bits))+seqSetDense/64 {
		if w := int(q / 64); w >= len(s.bits) {
			s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
		}
		s.bits[q/64] |= 1 << (q % 64)
		return
	}
	if s.other == nil {
		s.other = map[int64]struct{}{}
	}
	s.other[q] = struct{}{}
}

// expectation is one acked file line and what was found of it.
type expectation struct {
	ackedLine
	seen seqSet
}

type streamKey struct {
	topic     string
	partition int32
	device    string
}

// checker verifies a stream of records against an acked file. Feed it with
// observe, in each partition's offset order (partitions may interleave), then
// call report. Not safe for concurrent use.
type checker struct {
	hdr        ackedHeader
	expect     map[[2]string]*expectation // device, topic
	byDevice   map[string][]*expectation  // every topic of a device
	partitions map[string]int32           // topic → partition count, for the partition check; nil: no check
	consumed   map[string]bool            // topics being consumed
	streams    map[streamKey]int64        // greatest seq so far
	topics     map[string]*TopicReport
	viol       map[string]*ViolationGroup
	maxList    int
	remaining  int64 // acked seqs of consumed topics not seen yet
	expected   int64
}

// newChecker prepares the check of an acked file over the consumed topics.
// partitions, when not nil, enables the partition check with each topic's
// partition count.
func newChecker(f *ackedFile, consumed []string, partitions map[string]int32, maxList int) *checker {
	c := &checker{
		hdr:        f.Header,
		expect:     map[[2]string]*expectation{},
		byDevice:   map[string][]*expectation{},
		partitions: partitions,
		consumed:   map[string]bool{},
		streams:    map[streamKey]int64{},
		topics:     map[string]*TopicReport{},
		viol:       map[string]*ViolationGroup{},
		maxList:    maxList,
	}
	for _, t := range consumed {
		c.consumed[t] = true
		c.topic(t)
	}
	for _, line := range f.Lines {
		e := &expectation{ackedLine: line}
		c.expect[[2]string{line.Device, line.Topic}] = e
		c.byDevice[line.Device] = append(c.byDevice[line.Device], e)
		if c.consumed[line.Topic] {
			n := line.Seq.count()
			c.topic(line.Topic).Expected += n
			c.remaining += n
			c.expected += n
		}
	}
	return c
}

func (c *checker) topic(t string) *TopicReport {
	tr := c.topics[t]
	if tr == nil {
		tr = &TopicReport{Topic: t}
		c.topics[t] = tr
	}
	return tr
}

func (c *checker) violate(v Violation, n int64) {
	g := c.viol[v.Kind]
	if g == nil {
		g = &ViolationGroup{Kind: v.Kind}
		c.viol[v.Kind] = g
	}
	g.Count += n
	if len(g.First) < c.maxList {
		g.First = append(g.First, v)
	}
}

// reportValue is what the checker reads of a record's JSON value. seq and
// ts are read leniently (numbers, or strings holding numbers) so that a rule
// that rewrites them does not make a record unreadable.
type reportValue struct {
	DeviceNo string          `json:"device_no"`
	Seq      json.RawMessage `json:"seq"`
	TS       json.RawMessage `json:"ts"`
	Source   string          `json:"source"`
	Run      string          `json:"run"`
}

// jsonInt reads an integer from a JSON number or a string holding one.
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			s = u
		}
	}
	if q, err := strconv.ParseInt(s, 10, 64); err == nil {
		return q, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
		return int64(f), true
	}
	return 0, false
}

// seqOf returns a record's seq: its seq field, or for a CSA record (whose
// form had no room for one) (ts - csa_base_ms) / 1000.
func (c *checker) seqOf(v *reportValue) (int64, bool) {
	if len(v.Seq) > 0 && string(v.Seq) != "null" {
		return jsonInt(v.Seq)
	}
	if v.Source == "csa" && c.hdr.CSABaseMS > 0 {
		ts, ok := jsonInt(v.TS)
		if ok && ts > c.hdr.CSABaseMS && (ts-c.hdr.CSABaseMS)%1000 == 0 {
			return (ts - c.hdr.CSABaseMS) / 1000, true
		}
	}
	return 0, false
}

// expectedPartition is the partition the Java client's default partitioner
// (and the gateway's murmur2 one) picks for key among n partitions.
func expectedPartition(key string, n int32) int32 {
	p, err := sarama.NewMurmur2Partitioner("").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		return -1
	}
	return p
}

// observe checks one record.
func (c *checker) observe(r kafkaRecord) {
	tr := c.topic(r.Topic)
	tr.Records++
	var v reportValue
	if err := json.Unmarshal(r.Value, &v); err != nil || v.DeviceNo == "" {
		tr.Unparseable++
		return
	}
	if v.Run != "" && c.hdr.Run != "" && v.Run != c.hdr.Run {
		tr.OtherRun++
		return
	}
	dev := v.DeviceNo
	at := Violation{Device: dev, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	seq, seqOK := c.seqOf(&v)
	if seqOK {
		at.Seq = seq
	}
	if string(r.Key) != dev {
		tr.WrongKey++
		w := at
		w.Kind, w.Detail = vWrongKey, fmt.Sprintf("key %q", r.Key)
		c.violate(w, 1)
	}
	if n := c.partitions[r.Topic]; n > 0 {
		if want := expectedPartition(dev, n); want != r.Partition {
			tr.WrongPartition++
			w := at
			w.Kind, w.Detail = vWrongPartition, fmt.Sprintf("want partition %d of %d", want, n)
			c.violate(w, 1)
		}
	}
	if !seqOK {
		tr.NoSeq++
		return
	}
	e := c.expect[[2]string{dev, r.Topic}]
	inAcked := e != nil && e.Seq.contains(seq)
	inUnacked := e != nil && e.Unacked.contains(seq)
	if !inAcked && !inUnacked {
		if other := c.sentElsewhere(dev, r.Topic, seq); other != "" {
			tr.Misrouted++
			w := at
			w.Kind, w.Detail = vMisrouted, "sent as "+other
			c.violate(w, 1)
			return
		}
		if e == nil {
			tr.UnknownExtras++
			return
		}
	}
	tr.Checked++
	sk := streamKey{r.Topic, r.Partition, dev}
	greatest, started := c.streams[sk]
	switch {
	case e.seen.has(seq):
		if e.Resent.contains(seq) {
			tr.DupAllowed++
		} else {
			tr.Duplicates++
			w := at
			w.Kind, w.Detail = vDuplicate, "never re-sent"
			c.violate(w, 1)
		}
	default:
		if started && seq < greatest {
			tr.Reorders++
			w := at
			w.Kind, w.Detail = vReorder, fmt.Sprintf("after seq %d", greatest)
			c.violate(w, 1)
		}
		e.seen.add(seq)
		switch {
		case inAcked:
			tr.Found++
			if c.consumed[r.Topic] {
				c.remaining--
			}
		case inUnacked:
			tr.UnackedExtras++
		default:
			tr.UnknownExtras++
		}
	}
	if !started || seq > greatest {
		c.streams[sk] = seq
	}
}

// sentElsewhere returns the type under which the device sent seq, when that
// is not topic's.
func (c *checker) sentElsewhere(dev, topic string, seq int64) string {
	for _, e := range c.byDevice[dev] {
		if e.Topic != topic && (e.Seq.contains(seq) || e.Unacked.contains(seq)) {
			if e.Type != "" {
				return e.Type + " (" + e.Topic + ")"
			}
			return e.Topic
		}
	}
	return ""
}

// Report is the outcome of a verification.
type Report struct {
	Run        string           `json:"run,omitempty"`
	Expected   int64            `json:"expected"` // acked records to find in the consumed topics
	Topics     []TopicReport    `json:"topics"`
	Total      TopicReport      `json:"total"`
	Violations []ViolationGroup `json:"violations"`
	Skipped    []string         `json:"skipped_topics,omitempty"` // in the acked file, not consumed
	Incomplete []string         `json:"incomplete,omitempty"`     // partitions not read to the end
	OK         bool             `json:"ok"`
}

// report finishes the check: every acked seq not seen is a loss.
func (c *checker) report() *Report {
	lines := make([]*expectation, 0, len(c.expect))
	for _, e := range c.expect {
		lines = append(lines, e)
	}
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].Device != lines[j].Device {
			return lines[i].Device < lines[j].Device
		}
		return lines[i].Topic < lines[j].Topic
	})
	skipped := map[string]bool{}
	for _, e := range lines {
		if !c.consumed[e.Topic] {
			if len(e.Seq) > 0 {
				skipped[e.Topic] = true
			}
			continue
		}
		tr := c.topic(e.Topic)
		for _, sp := range e.Seq {
			for q := sp[0]; q <= sp[1]; q++ {
				if e.seen.has(q) {
					continue
				}
				to := q
				for to < sp[1] && !e.seen.has(to+1) {
					to++
				}
				n := to - q + 1
				tr.Missing += n
				v := Violation{Kind: vLoss, Device: e.Device, Topic: e.Topic, Partition: -1, Offset: -1, Seq: q}
				if to > q {
					v.SeqTo = to
				}
				c.violate(v, n)
				q = to
			}
		}
	}
	rep := &Report{Run: c.hdr.Run, Expected: c.expected, OK: true}
	names := make([]string, 0, len(c.topics))
	for t := range c.topics {
		names = append(names, t)
	}
	sort.Strings(names)
	rep.Total.Topic = "total"
	for _, t := range names {
		tr := *c.topics[t]
		rep.Topics = append(rep.Topics, tr)
		rep.Total.add(&tr)
	}
	for _, k := range violationKinds {
		if g := c.viol[k]; g != nil {
			rep.Violations = append(rep.Violations, *g)
			rep.OK = false
		}
	}
	for t := range skipped {
		rep.Skipped = append(rep.Skipped, t)
	}
	sort.Strings(rep.Skipped)
	return rep
}

func (t *TopicReport) add(o *TopicReport) {
	t.Records += o.Records
	t.Checked += o.Checked
	t.Expected += o.Expected
	t.Found += o.Found
	t.Missing += o.Missing
	t.DupAllowed += o.DupAllowed
	t.Duplicates += o.Duplicates
	t.Reorders += o.Reorders
	t.WrongKey += o.WrongKey
	t.WrongPartition += o.WrongPartition
	t.Misrouted += o.Misrouted
	t.UnackedExtras += o.UnackedExtras
	t.UnknownExtras += o.UnknownExtras
	t.OtherRun += o.OtherRun
	t.Unparseable += o.Unparseable
	t.NoSeq += o.NoSeq
}
