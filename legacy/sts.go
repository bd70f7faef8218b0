package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// fieldRule says how a known field of a known STS record kind is checked and
// named in the canonical message.
type fieldRule struct {
	out   string                                         // canonical name
	check func(field string, raw []byte) error           // nil: write is used
	write func(p *payload, out string, raw []byte) error // converts instead of copying
}

// kindSpec is what the decoder knows of one STS record kind. Fields it does not
// list are passed through as sent.
type kindSpec struct {
	typ      string // canonical type
	fields   map[string]fieldRule
	required []string
}

func count(field string, raw []byte) error {
	_, err := jsonUint(field, raw)
	return err
}

func latitude(field string, raw []byte) error {
	return jsonRange(field, raw, -90, 90, "[-90, 90]")
}

func longitude(field string, raw []byte) error {
	return jsonRange(field, raw, -180, 180, "[-180, 180]")
}

// stsKinds are the record kinds of SPEC 2.2. Built once; read-only after.
var stsKinds = map[string]*kindSpec{
	"gps": {
		typ: "gps",
		fields: map[string]fieldRule{
			"lat":     {out: "lat", check: latitude},
			"lng":     {out: "lng", check: longitude},
			"speed":   {out: "speed_kmh", check: jsonNumber},
			"heading": {out: "heading_deg", check: jsonNumber},
			"sats":    {out: "satellites", check: count},
		},
		required: []string{"lat", "lng"},
	},
	"kinematic": {
		typ: "kinematic",
		fields: map[string]fieldRule{
			"hz":      {out: "hz", check: jsonNumber},
			"samples": {out: "samples", write: writeSamples},
		},
		required: []string{"samples"},
	},
	"status": {
		typ: "log",
		fields: map[string]fieldRule{
			"ignition":    {out: "ignition", check: jsonBool},
			"battery_v":   {out: "battery_v", check: jsonNumber},
			"odometer_km": {out: "odometer_km", check: jsonNumber},
			"fuel_pct":    {out: "fuel_pct", check: jsonNumber},
			"door_locked": {out: "door_locked", check: jsonBool},
		},
	},
}

// reservedRecordFields are set by the gateway on every message of a /log
// request; a record may not carry them itself.
var reservedRecordFields = map[string]bool{"type": true, "device_no": true, "source": true, "seq": true}

// DecodeSTSLog converts the body of an STS POST /log (a JSON object with
// device_no, sent_at, optional seq and fw, and records) into one message per
// record, in record order. See the package documentation for the rules.
// A body with an empty records array yields no messages and no error.
func DecodeSTSLog(body []byte) ([]Message, error) {
	members, err := stsObject(body)
	if err != nil {
		return nil, err
	}
	var deviceRaw, sentRaw, seqRaw, fwRaw, recordsRaw []byte
	for _, m := range members {
		switch string(m.name) {
		case "device_no":
			deviceRaw = m.value
		case "sent_at":
			sentRaw = m.value
		case "seq":
			seqRaw = m.value
		case "fw":
			fwRaw = m.value
		case "records":
			recordsRaw = m.value
		default:
			return nil, fieldErr(path("", string(m.name)), "unknown field")
		}
	}
	h, err := parseSTSHeader(deviceRaw, sentRaw, seqRaw)
	if err != nil {
		return nil, err
	}
	if fwRaw != nil {
		// Checked so that a broken body is refused, but fw goes only on boot messages.
		if _, err := jsonText("fw", fwRaw); err != nil {
			return nil, err
		}
	}
	if recordsRaw == nil {
		return nil, fieldErr("records", "missing")
	}
	if kindOf(recordsRaw) != kindArray {
		return nil, fieldErr("records", "must be an array")
	}
	records := splitArray(recordsRaw)
	msgs := make([]Message, 0, len(records))
	for i, rec := range records {
		msg, err := h.record(i, rec)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// DecodeSTSBoot converts the body of an STS POST /boot (device_no, fw,
// sent_at, reason, uptime_s, optional seq) into one boot message whose ts is
// sent_at.
func DecodeSTSBoot(body []byte) ([]Message, error) {
	members, err := stsObject(body)
	if err != nil {
		return nil, err
	}
	var deviceRaw, sentRaw, seqRaw, fwRaw, reasonRaw, uptimeRaw []byte
	for _, m := range members {
		switch string(m.name) {
		case "device_no":
			deviceRaw = m.value
		case "sent_at":
			sentRaw = m.value
		case "seq":
			seqRaw = m.value
		case "fw":
			fwRaw = m.value
		case "reason":
			reasonRaw = m.value
		case "uptime_s":
			uptimeRaw = m.value
		default:
			return nil, fieldErr(path("", string(m.name)), "unknown field")
		}
	}
	h, err := parseSTSHeader(deviceRaw, sentRaw, seqRaw)
	if err != nil {
		return nil, err
	}
	if fwRaw == nil {
		return nil, fieldErr("fw", "missing")
	}
	fw, err := jsonText("fw", fwRaw)
	if err != nil {
		return nil, err
	}
	if reasonRaw == nil {
		return nil, fieldErr("reason", "missing")
	}
	reason, err := jsonText("reason", reasonRaw)
	if err != nil {
		return nil, err
	}
	if uptimeRaw == nil {
		return nil, fieldErr("uptime_s", "missing")
	}
	uptime, err := jsonUint("uptime_s", uptimeRaw)
	if err != nil {
		return nil, err
	}
	p := newPayload(160+len(h.deviceNo)+len(fw)+len(reason), "boot", h.deviceNo, h.sentAt, SourceSTS)
	if h.hasSeq {
		p.int("seq", h.seq)
	}
	p.str("reason", reason)
	p.str("firmware", fw)
	p.int("uptime_s", uptime)
	return []Message{{DeviceNo: h.deviceNo, Type: "boot", Payload: p.finish()}}, nil
}

// stsObject checks that body is one UTF-8 JSON object and returns its
// members, refusing repeated names.
func stsObject(body []byte) ([]member, error) {
	if len(body) == 0 {
		return nil, malformed("empty body")
	}
	if !utf8.Valid(body) {
		return nil, malformed("not valid UTF-8")
	}
	if !json.Valid(body) {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, malformed("%v", err)
		}
		return nil, malformed("not valid JSON")
	}
	v := body[skipSpace(body, 0):]
	if kindOf(v) != kindObject {
		return nil, malformed("body must be a JSON object")
	}
	members := splitObject(v)
	if err := checkDuplicates("", members); err != nil {
		return nil, err
	}
	return members, nil
}

// stsHeader is what every message of one STS request shares.
type stsHeader struct {
	deviceNo string
	sentAt   int64
	seq      int64
	hasSeq   bool
}

func parseSTSHeader(deviceRaw, sentRaw, seqRaw []byte) (stsHeader, error) {
	var h stsHeader
	if deviceRaw == nil {
		return h, fieldErr("device_no", "missing")
	}
	var err error
	if h.deviceNo, err = jsonText("device_no", deviceRaw); err != nil {
		return h, err
	}
	if sentRaw == nil {
		return h, fieldErr("sent_at", "missing")
	}
	if h.sentAt, err = jsonUint("sent_at", sentRaw); err != nil {
		return h, err
	}
	if seqRaw != nil {
		if h.seq, err = jsonUint("seq", seqRaw); err != nil {
			return h, err
		}
		h.hasSeq = true
	}
	return h, nil
}

// record converts records[i]. Paths of its members are built only for errors.
func (h *stsHeader) record(i int, rec []byte) (Message, error) {
	at := "records[" + strconv.Itoa(i) + "]"
	if kindOf(rec) != kindObject {
		return Message{}, fieldErr(at, "must be an object")
	}
	members := splitObject(rec)
	if err := checkDuplicates(at, members); err != nil {
		return Message{}, err
	}
	var kindRaw, tsRaw []byte
	for _, m := range members {
		switch string(m.name) {
		case "kind":
			kindRaw = m.value
		case "ts":
			tsRaw = m.value
		}
	}
	if kindRaw == nil {
		return Message{}, fieldErr(at+".kind", "missing")
	}
	kind, err := jsonText(at+".kind", kindRaw)
	if err != nil {
		return Message{}, err
	}
	ts := h.sentAt
	if tsRaw != nil {
		if ts, err = jsonUint(at+".ts", tsRaw); err != nil {
			return Message{}, err
		}
	}
	spec := stsKinds[kind]
	typ := kind
	if spec != nil {
		typ = spec.typ
		for _, name := range spec.required {
			if !hasMember(members, name) {
				return Message{}, fieldErr(at+"."+name, "missing")
			}
		}
	}

	p := newPayload(len(rec)+96+len(h.deviceNo), typ, h.deviceNo, ts, SourceSTS)
	if h.hasSeq {
		p.int("seq", h.seq)
	}
	for _, m := range members {
		name := m.name
		if string(name) == "kind" || string(name) == "ts" {
			continue
		}
		if reservedRecordFields[string(name)] {
			return Message{}, fieldErr(path(at, string(name)), "reserved: set by the gateway")
		}
		if spec != nil {
			if rule, ok := spec.fields[string(name)]; ok {
				if err := rule.apply(p, m.value); err != nil {
					return Message{}, inField(err, path(at, string(name)))
				}
				continue
			}
			if from, ok := spec.renamedTo(name); ok && hasMember(members, from) {
				return Message{}, fieldErr(path(at, string(name)), "conflicts with "+from+", which becomes "+string(name))
			}
		}
		if k := kindOf(m.value); k == kindObject || k == kindArray {
			if rel := repeatedName(m.value); rel != "" {
				return Message{}, fieldErr(path(at, string(name))+rel, "repeated")
			}
		}
		p.passThrough(m)
	}
	return Message{DeviceNo: h.deviceNo, Type: typ, Payload: p.finish()}, nil
}

// apply checks raw and appends it under its canonical name. A *FieldError it
// returns has a Field relative to the value ("" or "[1][2]"), for inField.
func (r fieldRule) apply(p *payload, raw []byte) error {
	if r.write != nil {
		return r.write(p, r.out, raw)
	}
	if err := r.check("", raw); err != nil {
		return err
	}
	p.literal(r.out, raw)
	return nil
}

// renamedTo reports which known field of the kind is renamed to name.
func (s *kindSpec) renamedTo(name []byte) (string, bool) {
	for from, rule := range s.fields {
		if rule.out == string(name) && from != string(name) {
			return from, true
		}
	}
	return "", false
}

// writeSamples converts kinematic samples [[x, y, z], ...] into
// [{"ax": x, "ay": y, "az": z}, ...], numbers as sent.
func writeSamples(p *payload, out string, raw []byte) error {
	if kindOf(raw) != kindArray {
		return fieldErr("", "must be an array of [x, y, z] samples")
	}
	p.name(out)
	p.raw("[")
	for j, s := range splitArray(raw) {
		at := "[" + strconv.Itoa(j) + "]"
		if kindOf(s) != kindArray {
			return fieldErr(at, "must be an array of 3 numbers [x, y, z]")
		}
		xyz := splitArray(s)
		if len(xyz) != 3 {
			return fieldErr(at, "must be an array of 3 numbers [x, y, z]")
		}
		for k, v := range xyz {
			if kindOf(v) != kindNumber {
				return fieldErr(at+"["+strconv.Itoa(k)+"]", "must be a number")
			}
		}
		if j > 0 {
			p.raw(",")
		}
		p.raw(`{"ax":`)
		p.buf = append(p.buf, xyz[0]...)
		p.raw(`,"ay":`)
		p.buf = append(p.buf, xyz[1]...)
		p.raw(`,"az":`)
		p.buf = append(p.buf, xyz[2]...)
		p.raw("}")
	}
	p.raw("]")
	return nil
}

func hasMember(ms []member, name string) bool {
	for _, m := range ms {
		if string(m.name) == name {
			return true
		}
	}
	return false
}

// checkDuplicates refuses an object that names a member twice: decoders
// disagree on which one wins, so accepting it would store a guess.
func checkDuplicates(at string, ms []member) error {
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(ms[i].name, ms[j].name) {
					return fieldErr(path(at, string(ms[i].name)), "repeated")
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, len(ms))
	for _, m := range ms {
		if _, dup := seen[string(m.name)]; dup {
			return fieldErr(path(at, string(m.name)), "repeated")
		}
		seen[string(m.name)] = struct{}{}
	}
	return nil
}

// path returns the path of member name under at, quoting names that are not
// plain identifiers (and shortening long ones) so error messages stay readable.
func path(at, name string) string {
	if at == "" && plainName(name) {
		return name
	}
	return at + childPath(name)
}

// childPath returns the path step to member name: ".name" or ["odd name"].
func childPath(name string) string {
	if plainName(name) {
		return "." + name
	}
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	return "[" + strconv.Quote(name) + "]"
}

func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// inField completes the Field of a *FieldError made for a value whose path
// was not known where it was checked.
func inField(err error, field string) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		fe.Field = field + fe.Field
	}
	return err
}
