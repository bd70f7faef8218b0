// Package timefmt formats and parses times as AWS IoT SQL does: parse_time
// formats an instant with a Joda-Time pattern, time_to_epoch parses a string
// with a java.time DateTimeFormatter pattern (parsetime.go). Patterns and time
// zones are compiled once into immutable values that are safe for concurrent
// use.
package timefmt

// Joda is a compiled Joda-Time DateTimeFormat pattern (parse_time).
type Joda = jodaPattern

// JDK is a compiled java.time DateTimeFormatter pattern (time_to_epoch).
type JDK = jdkPattern

// Zone is a time zone as Joda-Time identifies it.
type Zone = zone

// UTC is the UTC zone.
func UTC() *Zone { return utcZone }

// CompileJoda compiles a Joda-Time pattern; the error says what is invalid.
func CompileJoda(pattern string) (*Joda, error) { return compileJoda(pattern) }

// CachedJoda is CompileJoda for patterns computed at run time: results are
// kept in a bounded cache shared by all callers.
func CachedJoda(pattern string) (*Joda, error) { return cachedJoda(pattern) }

// CompileJDK compiles a java.time pattern; the error says what is invalid.
func CompileJDK(pattern string) (*JDK, error) { return compileJDK(pattern) }

// CachedJDK is CompileJDK for patterns computed at run time, with a bounded
// shared cache.
func CachedJDK(pattern string) (*JDK, error) { return cachedJDK(pattern) }

// LoadZone resolves a time zone name: an IANA name ("Asia/Seoul"), "UTC", or
// a fixed offset ("+09:00", "-0530", "+09"). Results are cached (bounded).
func LoadZone(name string) (*Zone, error) { return loadZone(name) }

// AppendFormat appends the instant ms (epoch milliseconds) formatted in zone z.
func (p *jodaPattern) AppendFormat(b []byte, ms int64, z *Zone) []byte {
	return p.appendFormat(b, ms, z)
}

// Parse parses s and returns epoch milliseconds. Fields the pattern lacks
// default to 1970-01-01T00:00:00, and the zone to UTC.
func (p *jdkPattern) Parse(s string) (int64, error) { return p.parse(s) }
