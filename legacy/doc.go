// Package legacy converts the request bodies of old STS and CSA terminals
// (SPEC section 2.2) into canonical messages: JSON objects with type,
// device_no, ts (epoch ms), source ("sts" or "csa") and the report's fields.
//
// The package is pure: it does no I/O, keeps no state beyond read-only tables
// and the Asia/Seoul location loaded once, imports nothing of fleetgate, and
// all its functions are safe for concurrent use. A decoder returns either all
// the messages of a body or an error and no messages: nothing of an invalid
// request is produced. Every error is a *FieldError naming the field
// (errors.As) or wraps ErrMalformed (errors.Is).
//
// # Conversions
//
// STS /log: one message per record, in record order. kind becomes type,
// except status, which becomes "log". gps: speed → speed_kmh, heading →
// heading_deg, sats → satellites; kinematic: samples [[x,y,z],...] →
// [{"ax":x,"ay":y,"az":z},...]. seq (when sent) is copied to every message; a
// record without ts takes sent_at; fw is checked but not copied. A record of
// an unknown kind is passed on with type = kind and its fields as sent.
// STS /boot: one boot message with ts = sent_at, reason, firmware (= fw),
// uptime_s, and seq when sent.
//
// CSA /log: a gps message (lat, lng in degrees, speed_kmh, heading_deg,
// satellites) when lat and lon are present, then a log message (ignition,
// battery_v, odometer_km, fuel_pct, door_locked) when any of ign, bat, odo,
// fuel, lock is present. dt is Asia/Seoul local time. Micro-degrees,
// decivolts and 0.1 km are converted by exact decimal arithmetic, never
// through float64: lat=37566500 gives 37.5665, bat=120 gives 12.
// CSA /boot: one boot message with ts = dt, reason from rsn (1 power_on,
// 2 watchdog, 3 ota, 4 manual, any other integer "unknown") and firmware.
//
// Numbers: STS numbers are copied with their literal text (42.50 stays 42.50,
// 9007199254740993 is not rounded). Members of a message come in a stable
// order: type, device_no, ts, source, seq, then the fields in body order (STS)
// or in the order of the SPEC table (CSA). Nested values are compacted.
//
// # Validation choices (where SPEC 2.2 is silent)
//
//   - Repeated keys are refused in both formats, at any depth (inside
//     pass-through values too): parsers disagree on which value wins, so
//     accepting them would store a guess.
//   - Unknown keys are refused in the STS envelope and in CSA bodies: both
//     are closed formats, and a key we do not know is either a firmware we do
//     not know or a corrupt body; dropping it silently would lose data
//     unnoticed. STS /boot additionally accepts seq (copied), since SPEC says
//     seq goes on every message. fw is accepted on STS /log and not copied.
//   - Fields inside STS records are open, as canonical messages are: fields
//     the decoder does not know are passed through as sent. A record may not
//     carry type, device_no, source or seq (the gateway sets them), nor both
//     a field and the canonical name it is renamed to (speed and speed_kmh).
//   - Required: STS device_no and sent_at; records on /log (an empty array is
//     valid and yields no messages); kind in every record; lat and lng in gps
//     records; samples in kinematic records; fw, reason, uptime_s on /boot.
//     CSA tid and dt; lat and lon together; spd, dir, sat only with lat/lon;
//     rsn and fw on /boot.
//   - Types: ts, sent_at, seq, sats, uptime_s are non-negative integers
//     within int64 (never 1.7e12, never rounded); lat in [-90, 90], lng in
//     [-180, 180]; speed, heading, hz, battery_v, odometer_km, fuel_pct are
//     numbers; ignition and door_locked booleans; each sample exactly three
//     numbers. Fields of unknown kinds and unlisted fields are not checked.
//   - CSA values are decimal integers (optional '-' only for lat, lon, rsn;
//     no '+', no decimal point); ign and lock are "0" or "1"; dt is exactly
//     14 digits of an existing local time (no month 13, 30 February, hour 24
//     or second 60) not before 1970. Empty values are refused.
//   - Device numbers, kinds, firmware and reasons are 1 to 128 bytes of
//     UTF-8 without control characters or leading/trailing spaces: they
//     become Kafka keys, client ids and topic names downstream.
//   - Bodies must be UTF-8. An STS body is exactly one JSON object. A CSA
//     body may have white space around it and empty pairs (a&&b); its keys
//     and values are percent-decoded ('+' is a space).
//   - Error messages name the field and the problem but never echo the
//     value, so they are safe to log and to return to the terminal.
//
// # Time zone
//
// Asia/Seoul is loaded with time.LoadLocation on first use and falls back to
// a fixed +09:00 zone when no time zone database is available; time/tzdata is
// not imported. Korea has had no daylight saving time since 1988, so the two
// agree for every date a terminal in service sends.
package legacy
