package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Report types the generator knows the fields of. Any other type named in
// --mix is generated as a generic report (common fields and padding), which is
// what a firmware with a report type the gateway has never seen would send.
const (
	typeLog       = "log"
	typeGPS       = "gps"
	typeKinematic = "kinematic"
	typeADAS      = "adas"
	typeBoot      = "boot"
)

// topicOf is the Kafka topic the default rule (topic: message-${type}) routes
// a report of type typ to. The acked file names topics explicitly, so verify
// does not depend on this mapping.
func topicOf(typ string) string { return "message-" + typ }

// mix is the weighted choice of report types parsed from --mix. Types with
// weight 0 are dropped. A mix is immutable and safe for concurrent use; pick
// takes the caller's random source.
type mix struct {
	types []string // in the order of the flag
	cum   []int    // cumulative weights, same index as types
}

// parseMix parses "log=1,gps=4,kinematic=2,adas=1,boot=0".
func parseMix(s string) (mix, error) {
	var m mix
	seen := map[string]bool{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return mix{}, fmt.Errorf("mix entry %q: want type=weight", part)
		}
		name = strings.TrimSpace(name)
		if !validTypeName(name) {
			return mix{}, fmt.Errorf("mix entry %q: type must be 1 to 64 of [a-z0-9_-]", part)
		}
		if seen[name] {
			return mix{}, fmt.Errorf("mix entry %q: type %s given twice", part, name)
		}
		seen[name] = true
		weight, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || weight < 0 || weight > 1_000_000 {
			return mix{}, fmt.Errorf("mix entry %q: weight must be an integer from 0 to 1000000", part)
		}
		if weight == 0 {
			continue
		}
		total += weight
		m.types = append(m.types, name)
		m.cum = append(m.cum, total)
	}
	if total == 0 {
		return mix{}, fmt.Errorf("mix %q: no type has a positive weight", s)
	}
	return m, nil
}

func validTypeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// pick returns the index in m.types of a type drawn by weight.
func (m mix) pick(r *rand.Rand) int {
	x := r.IntN(m.cum[len(m.cum)-1])
	for i, c := range m.cum {
		if x < c {
			return i
		}
	}
	return len(m.cum) - 1
}

// index returns the index of typ in m.types, or -1.
func (m mix) index(typ string) int {
	for i, t := range m.types {
		if t == typ {
			return i
		}
	}
	return -1
}

// vehicle is the simulated state of one terminal's vehicle: it moves between
// reports so that consecutive GPS fixes, odometer and fuel readings of a
// device are plausible. Owned by the goroutine that generates the device's
// reports.
type vehicle struct {
	lat, lng   float64 // degrees
	heading    float64 // degrees
	speed      float64 // km/h
	odometer   float64 // km
	battery    float64 // V
	fuel       float64 // percent
	ignition   bool
	locked     bool
	uptime     int64 // s
	satellites int
}

// newVehicle places a vehicle somewhere in greater Seoul.
func newVehicle(r *rand.Rand) *vehicle {
	return &vehicle{
		lat:        37.45 + r.Float64()*0.25,
		lng:        126.80 + r.Float64()*0.35,
		heading:    float64(r.IntN(360)),
		speed:      r.Float64() * 90,
		odometer:   1000 + r.Float64()*150000,
		battery:    12.2 + r.Float64()*2,
		fuel:       10 + r.Float64()*90,
		ignition:   true,
		satellites: 6 + r.IntN(8),
	}
}

// step advances the vehicle by about one second of driving.
func (v *vehicle) step(r *rand.Rand) {
	v.speed = clamp(v.speed+r.NormFloat64()*3, 0, 130)
	v.heading = math.Mod(v.heading+r.NormFloat64()*5+360, 360)
	km := v.speed / 3600
	rad := v.heading * math.Pi / 180
	v.lat = clamp(v.lat+km*math.Cos(rad)/111.0, -89.9, 89.9)
	v.lng += km * math.Sin(rad) / (111.0 * math.Cos(v.lat*math.Pi/180))
	if v.lng > 180 {
		v.lng -= 360
	} else if v.lng < -180 {
		v.lng += 360
	}
	v.odometer += km
	v.fuel = clamp(v.fuel-km*0.08, 5, 100)
	v.battery = clamp(v.battery+r.NormFloat64()*0.02, 11.8, 14.6)
	v.ignition = v.speed > 0.5 || r.IntN(10) > 0
	v.locked = !v.ignition
	v.uptime++
	v.satellites = int(clamp(float64(v.satellites+r.IntN(3)-1), 4, 16))
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// adasEvents are the events ADAS reports carry.
var adasEvents = [...]string{"FCW", "LDW", "PCW", "HMW", "SLI"}

// bootReasons are the reasons boot reports carry.
var bootReasons = [...]string{"power_on", "watchdog", "ota", "manual"}

// reportHeader is what every MQTT report starts with.
type reportHeader struct {
	typ    string
	device string
	ts     int64 // epoch ms
	seq    int64
	run    string // run id, lets verify tell this run's records from older ones
}

// appendReport appends one canonical report (SPEC 2.1, like
// shared/samples/mqtt/*.json) as a JSON object to buf. Reports are padded to
// size bytes when their natural size is smaller: kinematic reports with more
// samples, others with a "pad" string; a report is never cut below its natural
// size (about 150 to 230 bytes).
func appendReport(buf []byte, h reportHeader, v *vehicle, r *rand.Rand, size int) []byte {
	start := len(buf)
	buf = append(buf, `{"type":`...)
	buf = strconv.AppendQuote(buf, h.typ)
	buf = append(buf, `,"device_no":`...)
	buf = strconv.AppendQuote(buf, h.device)
	buf = append(buf, `,"ts":`...)
	buf = strconv.AppendInt(buf, h.ts, 10)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendInt(buf, h.seq, 10)
	if h.run != "" {
		buf = append(buf, `,"run":`...)
		buf = strconv.AppendQuote(buf, h.run)
	}
	switch h.typ {
	case typeLog:
		buf = append(buf, `,"ignition":`...)
		buf = strconv.AppendBool(buf, v.ignition)
		buf = append(buf, `,"battery_v":`...)
		buf = strconv.AppendFloat(buf, v.battery, 'f', 1, 64)
		buf = append(buf, `,"odometer_km":`...)
		buf = strconv.AppendFloat(buf, v.odometer, 'f', 1, 64)
		buf = append(buf, `,"fuel_pct":`...)
		buf = strconv.AppendInt(buf, int64(v.fuel), 10)
		buf = append(buf, `,"door_locked":`...)
		buf = strconv.AppendBool(buf, v.locked)
		buf = append(buf, `,"speed_kmh":`...)
		buf = strconv.AppendFloat(buf, v.speed, 'f', 1, 64)
	case typeGPS:
		buf = append(buf, `,"lat":`...)
		buf = strconv.AppendFloat(buf, v.lat, 'f', 6, 64)
		buf = append(buf, `,"lng":`...)
		buf = strconv.AppendFloat(buf, v.lng, 'f', 6, 64)
		buf = append(buf, `,"speed_kmh":`...)
		buf = strconv.AppendFloat(buf, v.speed, 'f', 1, 64)
		buf = append(buf, `,"heading_deg":`...)
		buf = strconv.AppendInt(buf, int64(v.heading), 10)
		buf = append(buf, `,"satellites":`...)
		buf = strconv.AppendInt(buf, int64(v.satellites), 10)
	case typeKinematic:
		buf = append(buf, `,"hz":10,"samples":[`...)
		// Keep adding samples while the closing "]}" still fits in size.
		for n := 0; ; n++ {
			mark := len(buf)
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = appendSample(buf, r)
			if n >= 2 && len(buf)-start+2 > size {
				buf = buf[:mark]
				break
			}
		}
		buf = append(buf, ']')
	case typeADAS:
		buf = append(buf, `,"event":`...)
		buf = strconv.AppendQuote(buf, adasEvents[r.IntN(len(adasEvents))])
		buf = append(buf, `,"level":`...)
		buf = strconv.AppendInt(buf, int64(1+r.IntN(3)), 10)
		buf = append(buf, `,"speed_kmh":`...)
		buf = strconv.AppendFloat(buf, v.speed, 'f', 1, 64)
	case typeBoot:
		buf = append(buf, `,"reason":`...)
		buf = strconv.AppendQuote(buf, bootReasons[r.IntN(len(bootReasons))])
		buf = append(buf, `,"firmware":"sim-2.5.0","uptime_s":0`...)
	}
	return padObject(buf, start, size)
}

// appendSample appends one accelerometer sample in g.
func appendSample(buf []byte, r *rand.Rand) []byte {
	buf = append(buf, `{"ax":`...)
	buf = strconv.AppendFloat(buf, r.NormFloat64()*0.05, 'f', 2, 64)
	buf = append(buf, `,"ay":`...)
	buf = strconv.AppendFloat(buf, r.NormFloat64()*0.05, 'f', 2, 64)
	buf = append(buf, `,"az":`...)
	buf = strconv.AppendFloat(buf, 1+r.NormFloat64()*0.02, 'f', 2, 64)
	return append(buf, '}')
}

// padObject closes the JSON object that starts at buf[start], first adding a
// "pad" member when that brings the object to exactly size bytes.
func padObject(buf []byte, start, size int) []byte {
	const padOverhead = len(`,"pad":""`) + 1 // + the closing brace
	if n := size - (len(buf) - start) - padOverhead; n >= 0 {
		buf = append(buf, `,"pad":"`...)
		for i := 0; i < n; i++ {
			buf = append(buf, byte('a'+i%26))
		}
		buf = append(buf, '"')
	}
	return append(buf, '}')
}
