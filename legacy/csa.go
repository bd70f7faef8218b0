package legacy

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Keys a CSA body may carry, per path. Anything else is refused.
var (
	csaLogKeys  = []string{"tid", "dt", "lat", "lon", "spd", "dir", "sat", "ign", "bat", "odo", "fuel", "lock"}
	csaBootKeys = []string{"tid", "dt", "rsn", "fw"}
)

// csaLogFields are the keys that make a CSA /log produce a log message.
var csaLogFields = []string{"ign", "bat", "odo", "fuel", "lock"}

// csaReasons maps CSA boot reason codes to canonical reasons; other codes are
// "unknown".
var csaReasons = map[int64]string{1: "power_on", 2: "watchdog", 3: "ota", 4: "manual"}

// DecodeCSALog converts the body of a CSA POST /log
// (application/x-www-form-urlencoded, one record) into a gps message when lat
// and lon are present and a log message when any of ign, bat, odo, fuel, lock
// is present, in that order. A body with neither is an error.
func DecodeCSALog(body []byte) ([]Message, error) {
	f, err := parseForm(body, csaLogKeys)
	if err != nil {
		return nil, err
	}
	deviceNo, ts, err := csaHeader(f)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, 2)

	latS, hasLat := f["lat"]
	lonS, hasLon := f["lon"]
	switch {
	case hasLat && !hasLon:
		return nil, fieldErr("lon", "missing (lat and lon go together)")
	case hasLon && !hasLat:
		return nil, fieldErr("lat", "missing (lat and lon go together)")
	case hasLat:
		lat, err := formInt("lat", latS, true)
		if err != nil {
			return nil, err
		}
		if lat < -90_000_000 || lat > 90_000_000 {
			return nil, fieldErr("lat", "out of range [-90, 90] degrees (in micro-degrees)")
		}
		lon, err := formInt("lon", lonS, true)
		if err != nil {
			return nil, err
		}
		if lon < -180_000_000 || lon > 180_000_000 {
			return nil, fieldErr("lon", "out of range [-180, 180] degrees (in micro-degrees)")
		}
		p := newPayload(192+len(deviceNo), "gps", deviceNo, ts, SourceCSA)
		p.name("lat")
		p.buf = appendScaled(p.buf, lat, 6)
		p.name("lng")
		p.buf = appendScaled(p.buf, lon, 6)
		for _, k := range [...]struct{ key, out string }{{"spd", "speed_kmh"}, {"dir", "heading_deg"}, {"sat", "satellites"}} {
			if s, ok := f[k.key]; ok {
				n, err := formInt(k.key, s, false)
				if err != nil {
					return nil, err
				}
				p.int(k.out, n)
			}
		}
		msgs = append(msgs, Message{DeviceNo: deviceNo, Type: "gps", Payload: p.finish()})
	default:
		for _, k := range [...]string{"spd", "dir", "sat"} {
			if _, ok := f[k]; ok {
				return nil, fieldErr(k, "needs lat and lon")
			}
		}
	}

	hasLog := false
	for _, k := range csaLogFields {
		if _, ok := f[k]; ok {
			hasLog = true
		}
	}
	if !hasLog {
		if len(msgs) == 0 {
			return nil, fieldErr("lat/lon", "required when none of ign, bat, odo, fuel, lock is present")
		}
		return msgs, nil
	}
	p := newPayload(192+len(deviceNo), "log", deviceNo, ts, SourceCSA)
	if s, ok := f["ign"]; ok {
		b, err := formBool("ign", s)
		if err != nil {
			return nil, err
		}
		p.bool("ignition", b)
	}
	if s, ok := f["bat"]; ok {
		n, err := formInt("bat", s, false)
		if err != nil {
			return nil, err
		}
		p.name("battery_v")
		p.buf = appendScaled(p.buf, n, 1)
	}
	if s, ok := f["odo"]; ok {
		n, err := formInt("odo", s, false)
		if err != nil {
			return nil, err
		}
		p.name("odometer_km")
		p.buf = appendScaled(p.buf, n, 1)
	}
	if s, ok := f["fuel"]; ok {
		n, err := formInt("fuel", s, false)
		if err != nil {
			return nil, err
		}
		p.int("fuel_pct", n)
	}
	if s, ok := f["lock"]; ok {
		b, err := formBool("lock", s)
		if err != nil {
			return nil, err
		}
		p.bool("door_locked", b)
	}
	return append(msgs, Message{DeviceNo: deviceNo, Type: "log", Payload: p.finish()}), nil
}

// DecodeCSABoot converts the body of a CSA POST /boot (tid, dt, rsn, fw, all
// required) into one boot message whose ts is dt.
func DecodeCSABoot(body []byte) ([]Message, error) {
	f, err := parseForm(body, csaBootKeys)
	if err != nil {
		return nil, err
	}
	deviceNo, ts, err := csaHeader(f)
	if err != nil {
		return nil, err
	}
	rsnS, ok := f["rsn"]
	if !ok {
		return nil, fieldErr("rsn", "missing")
	}
	code, err := formInt("rsn", rsnS, true)
	if err != nil {
		return nil, err
	}
	reason, ok := csaReasons[code]
	if !ok {
		reason = "unknown"
	}
	fw, ok := f["fw"]
	if !ok {
		return nil, fieldErr("fw", "missing")
	}
	if err := checkText("fw", fw); err != nil {
		return nil, err
	}
	p := newPayload(128+len(deviceNo)+len(fw), "boot", deviceNo, ts, SourceCSA)
	p.str("reason", reason)
	p.str("firmware", fw)
	return []Message{{DeviceNo: deviceNo, Type: "boot", Payload: p.finish()}}, nil
}

// parseForm splits an application/x-www-form-urlencoded body into its keys,
// refusing keys not in known, repeated keys and keys without '='. White space
// around the whole body (a trailing newline) and empty pairs ("a=1&&b=2")
// are ignored.
func parseForm(body []byte, known []string) (map[string]string, error) {
	s := strings.Trim(string(body), " \t\r\n")
	if s == "" {
		return nil, malformed("empty body")
	}
	f := make(map[string]string, len(known))
	for pair := range strings.SplitSeq(s, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, hasValue := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, malformed("invalid percent-encoding in a key")
		}
		if key == "" {
			return nil, malformed("a pair has an empty key")
		}
		if !slices.Contains(known, key) {
			return nil, fieldErr(path("", key), "unknown key")
		}
		if _, dup := f[key]; dup {
			return nil, fieldErr(key, "repeated")
		}
		if !hasValue {
			return nil, fieldErr(key, "has no value")
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fieldErr(key, "invalid percent-encoding")
		}
		f[key] = value
	}
	return f, nil
}

// csaHeader returns the device number (tid) and the time (dt) every CSA body
// carries.
func csaHeader(f map[string]string) (string, int64, error) {
	tid, ok := f["tid"]
	if !ok {
		return "", 0, fieldErr("tid", "missing")
	}
	if err := checkText("tid", tid); err != nil {
		return "", 0, err
	}
	dt, ok := f["dt"]
	if !ok {
		return "", 0, fieldErr("dt", "missing")
	}
	ts, err := parseDT(dt)
	if err != nil {
		return "", 0, err
	}
	return tid, ts, nil
}

// parseDT converts a CSA dt, yyyyMMddHHmmss in Asia/Seoul local time, to
// epoch milliseconds, refusing impossible dates (month 13, 30 February, hour
// 24, second 60) rather than letting time.Date normalise them.
func parseDT(s string) (int64, error) {
	if len(s) != 14 {
		return 0, fieldErr("dt", "must be 14 digits yyyyMMddHHmmss")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fieldErr("dt", "must be 14 digits yyyyMMddHHmmss")
		}
	}
	num := func(from, to int) int {
		n, _ := strconv.Atoi(s[from:to])
		return n
	}
	year, month, day := num(0, 4), num(4, 6), num(6, 8)
	hour, minute, second := num(8, 10), num(10, 12), num(12, 14)
	switch {
	case month < 1 || month > 12:
		return 0, fieldErr("dt", "month out of range")
	case day < 1 || day > daysIn(year, month):
		return 0, fieldErr("dt", "day out of range")
	case hour > 23:
		return 0, fieldErr("dt", "hour out of range")
	case minute > 59:
		return 0, fieldErr("dt", "minute out of range")
	case second > 59:
		return 0, fieldErr("dt", "second out of range")
	}
	ms := time.Date(year, time.Month(month), day, hour, minute, second, 0, seoul()).UnixMilli()
	if ms < 0 {
		return 0, fieldErr("dt", "before 1970")
	}
	return ms, nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// formBool parses a CSA flag, "0" or "1".
func formBool(field, s string) (bool, error) {
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fieldErr(field, "must be 0 or 1")
}
