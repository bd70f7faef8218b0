package timefmt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Time handling for parse_time (Joda-Time patterns, formatting) and time_to_epoch
// (java.time DateTimeFormatter patterns, parsing). Patterns are compiled once; the
// compiled forms are immutable and shared between goroutines.
//
// Time zones come from the system's IANA database (or time/tzdata when the binary
// embeds it). Zone names printed by "z" are Go's abbreviations (KST, UTC, PST...),
// which match Joda's for common zones; where the database only has a numeric
// abbreviation, or Joda would have no name, the offset is printed ("+04:00"), as
// Joda does for zones it cannot name.

// zone is a time zone as Joda-Time identifies it.
type zone struct {
	id    string // "UTC", "Asia/Seoul", or "+09:00" for a fixed offset
	loc   *time.Location
	fixed bool
}

var utcZone = &zone{id: "UTC", loc: time.UTC}

// caches for values computed from strings seen at run time (patterns and zones that
// are not literals). They are bounded: past the bound, results are still computed
// but no longer stored.
const maxCached = 512

type boundedCache struct {
	m sync.Map
	n atomic.Int32
}

func (c *boundedCache) get(key string) (any, bool) { return c.m.Load(key) }

func (c *boundedCache) put(key string, v any) {
	if c.n.Load() < maxCached {
		if _, loaded := c.m.LoadOrStore(key, v); !loaded {
			c.n.Add(1)
		}
	}
}

var zoneCache, jodaCache, jdkCache boundedCache

// loadZone resolves a time zone name: an IANA name ("Asia/Seoul"), "UTC", or a
// fixed offset ("+09:00", "-0530", "+09").
func loadZone(name string) (*zone, error) {
	if z, ok := zoneCache.get(name); ok {
		return z.(*zone), nil
	}
	z, err := resolveZone(name)
	if err != nil {
		return nil, err
	}
	zoneCache.put(name, z)
	return z, nil
}

func resolveZone(name string) (*zone, error) {
	switch name {
	case "UTC", "Etc/UTC", "Z":
		return utcZone, nil
	case "", "Local":
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	if name[0] == '+' || name[0] == '-' {
		off, n, ok := parseOffset(name, false)
		if !ok || n != len(name) {
			return nil, fmt.Errorf("invalid time zone offset %q", name)
		}
		return fixedZone(off), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return &zone{id: name, loc: loc}, nil
}

func fixedZone(off int) *zone {
	if off == 0 {
		return utcZone
	}
	id := string(appendOffset(nil, off, true))
	return &zone{id: id, loc: time.FixedZone(id, off), fixed: true}
}

// parseOffset reads [+-]HH[[:]MM[[:]SS]] (or [+-]H when oneDigit is set) and returns
// the offset in seconds and the number of bytes read.
func parseOffset(s string, oneDigit bool) (off, n int, ok bool) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, 0, false
	}
	two := func(i int) (int, bool) {
		if i+2 > len(s) || !isDigit(s[i]) || !isDigit(s[i+1]) {
			return 0, false
		}
		return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
	}
	h, ok := two(1)
	n = 3
	if !ok {
		// single-digit hour, as in "GMT+9"
		if !oneDigit || !isDigit(s[1]) || len(s) > 2 && isDigit(s[2]) {
			return 0, 0, false
		}
		h, n = int(s[1]-'0'), 2
	}
	m, sec := 0, 0
	if n == 3 { // after a two-digit hour, minutes and seconds may follow
		for part := 0; part < 2; part++ {
			i := n
			if i < len(s) && s[i] == ':' {
				i++
			}
			v, ok := two(i)
			if !ok {
				break
			}
			if part == 0 {
				m = v
			} else {
				sec = v
			}
			n = i + 2
		}
	}
	if h > 18 || m > 59 || sec > 59 {
		return 0, 0, false
	}
	off = h*3600 + m*60 + sec
	if s[0] == '-' {
		off = -off
	}
	return off, n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendOffset prints an offset as +HH:MM (or +HHMM without colon).
func appendOffset(b []byte, off int, colon bool) []byte {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = appendPadded(b, off/3600, 2)
	if colon {
		b = append(b, ':')
	}
	return appendPadded(b, off/60%60, 2)
}

// appendPadded appends v in decimal, zero-padded to at least width digits, with a
// leading '-' for negative values.
func appendPadded(b []byte, v, width int) []byte {
	if v >= 0 && v < 100 && width <= 2 { // months, days, hours, minutes, seconds
		if v >= 10 || width == 2 {
			b = append(b, byte('0'+v/10))
		}
		return append(b, byte('0'+v%10))
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], int64(v), 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

var (
	monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
	dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	// longZoneNames are the full names Joda prints for "zzzz", by abbreviation.
	longZoneNames = map[string]string{
		"UTC": "Coordinated Universal Time", "GMT": "Greenwich Mean Time",
		"KST": "Korea Standard Time", "JST": "Japan Standard Time", "HKT": "Hong Kong Time",
		"IST": "India Standard Time", "BST": "British Summer Time",
		"PST": "Pacific Standard Time", "PDT": "Pacific Daylight Time",
		"MST": "Mountain Standard Time", "MDT": "Mountain Daylight Time",
		"EST": "Eastern Standard Time", "EDT": "Eastern Daylight Time",
		"CET": "Central European Time", "CEST": "Central European Summer Time",
		"EET": "Eastern European Time", "EEST": "Eastern European Summer Time",
		"WET": "Western European Time", "WEST": "Western European Summer Time",
	}
)

// ---- Joda-Time patterns (parse_time) ----

// jodaElem is one element of a compiled Joda pattern: a field letter repeated n
// times, or literal text (letter 0).
type jodaElem struct {
	letter byte
	n      int
	lit    string
}

// jodaPattern is a compiled Joda-Time DateTimeFormat pattern.
type jodaPattern struct {
	elems []jodaElem
}

const jodaLetters = "GCYxweEyDMdahHkKmsSzZ"

// compileJoda compiles a pattern with Joda-Time's rules: runs of one ASCII letter
// are fields, text in single quotes is literal (two single quotes make one, inside
// or outside quotes), other characters are literal.
func compileJoda(pattern string) (*jodaPattern, error) {
	p := &jodaPattern{}
	for i := 0; i < len(pattern); {
		c := pattern[i]
		if isASCIILetter(c) {
			j := i + 1
			for j < len(pattern) && pattern[j] == c {
				j++
			}
			if strings.IndexByte(jodaLetters, c) < 0 {
				return nil, fmt.Errorf("illegal pattern component %q at offset %d", pattern[i:j], i)
			}
			p.elems = append(p.elems, jodaElem{letter: c, n: j - i})
			i = j
			continue
		}
		var lit []byte
		inQuote := false
		for ; i < len(pattern); i++ {
			c := pattern[i]
			if c == '\'' {
				if i+1 < len(pattern) && pattern[i+1] == '\'' {
					lit = append(lit, '\'')
					i++
				} else {
					inQuote = !inQuote
				}
				continue
			}
			if !inQuote && isASCIILetter(c) {
				break
			}
			lit = append(lit, c)
		}
		if inQuote {
			return nil, errors.New("unterminated quote in pattern")
		}
		if len(lit) > 0 {
			p.elems = append(p.elems, jodaElem{lit: string(lit)})
		}
	}
	return p, nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func cachedJoda(pattern string) (*jodaPattern, error) {
	if p, ok := jodaCache.get(pattern); ok {
		return p.(*jodaPattern), nil
	}
	p, err := compileJoda(pattern)
	if err != nil {
		return nil, err
	}
	jodaCache.put(pattern, p)
	return p, nil
}

// appendFormat formats the instant ms (epoch milliseconds) in zone z.
func (p *jodaPattern) appendFormat(b []byte, ms int64, z *zone) []byte {
	t := time.UnixMilli(ms).In(z.loc)
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	yearOfEra := year
	if year <= 0 {
		yearOfEra = 1 - year
	}
	for _, e := range p.elems {
		switch e.letter {
		case 0:
			b = append(b, e.lit...)
		case 'G':
			if year <= 0 {
				b = append(b, "BC"...)
			} else {
				b = append(b, "AD"...)
			}
		case 'C':
			b = appendPadded(b, yearOfEra/100, e.n)
		case 'Y':
			b = appendYear(b, yearOfEra, e.n)
		case 'y':
			b = appendYear(b, year, e.n)
		case 'x':
			wy, _ := t.ISOWeek()
			b = appendYear(b, wy, e.n)
		case 'w':
			_, w := t.ISOWeek()
			b = appendPadded(b, w, e.n)
		case 'e':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b = appendPadded(b, wd, e.n)
		case 'E':
			name := dayNames[t.Weekday()]
			if e.n < 4 {
				name = name[:3]
			}
			b = append(b, name...)
		case 'D':
			b = appendPadded(b, t.YearDay(), e.n)
		case 'M':
			switch {
			case e.n >= 4:
				b = append(b, monthNames[month-1]...)
			case e.n == 3:
				b = append(b, monthNames[month-1][:3]...)
			default:
				b = appendPadded(b, int(month), e.n)
			}
		case 'd':
			b = appendPadded(b, day, e.n)
		case 'a':
			if hour < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'h':
			h := hour % 12
			if h == 0 {
				h = 12
			}
			b = appendPadded(b, h, e.n)
		case 'H':
			b = appendPadded(b, hour, e.n)
		case 'k':
			h := hour
			if h == 0 {
				h = 24
			}
			b = appendPadded(b, h, e.n)
		case 'K':
			b = appendPadded(b, hour%12, e.n)
		case 'm':
			b = appendPadded(b, minute, e.n)
		case 's':
			b = appendPadded(b, sec, e.n)
		case 'S':
			// Joda has millisecond precision: print n digits of the fraction,
			// truncated, zero-filled past the third.
			milli := t.Nanosecond() / 1e6
			switch {
			case e.n == 1:
				b = appendPadded(b, milli/100, 1)
			case e.n == 2:
				b = appendPadded(b, milli/10, 2)
			default:
				b = appendPadded(b, milli, 3)
				for i := 3; i < e.n; i++ {
					b = append(b, '0')
				}
			}
		case 'z':
			b = appendZoneName(b, t, z, e.n >= 4)
		case 'Z':
			_, off := t.Zone()
			switch e.n {
			case 1:
				b = appendOffset(b, off, false)
			case 2:
				b = appendOffset(b, off, true)
			default:
				b = append(b, z.id...)
			}
		}
	}
	return b
}

// appendYear prints a year Joda's way: "yy" is the last two digits, otherwise the
// year zero-padded to n digits.
func appendYear(b []byte, year, n int) []byte {
	if n == 2 {
		if year < 0 {
			year = -year
		}
		return appendPadded(b, year%100, 2)
	}
	return appendPadded(b, year, n)
}

func appendZoneName(b []byte, t time.Time, z *zone, long bool) []byte {
	if z.fixed {
		return append(b, z.id...)
	}
	abbr, off := t.Zone()
	if abbr == "" || abbr[0] == '+' || abbr[0] == '-' || isDigit(abbr[0]) {
		return appendOffset(b, off, true)
	}
	if long {
		if name, ok := longZoneNames[abbr]; ok {
			return append(b, name...)
		}
		return appendOffset(b, off, true)
	}
	return append(b, abbr...)
}

// ---- java.time patterns (time_to_epoch) ----

// jdkElem is one element of a compiled DateTimeFormatter pattern.
type jdkElem struct {
	letter     byte // 0: literal
	n          int
	lit        string
	numeric    bool
	minW, maxW int // digits accepted by a numeric field
	reserved   int // digits that fixed-width numeric fields right after this one need
}

// jdkPattern is a compiled java.time DateTimeFormatter pattern, used for parsing.
type jdkPattern struct {
	elems []jdkElem
}

// compileJDK compiles the subset of DateTimeFormatter patterns that describes
// timestamps: G u y D M L d E a h K k H m s S n V z O X x Z and literals (quoted
// text, a doubled single quote, punctuation). Optional sections and week-based fields are not supported.
func compileJDK(pattern string) (*jdkPattern, error) {
	p := &jdkPattern{}
	for i := 0; i < len(pattern); {
		c := pattern[i]
		if c == '\'' {
			var lit []byte
			j := i + 1
			for ; ; j++ {
				if j >= len(pattern) {
					return nil, errors.New("unterminated quote in pattern")
				}
				if pattern[j] == '\'' {
					if j+1 < len(pattern) && pattern[j+1] == '\'' {
						lit = append(lit, '\'')
						j++
						continue
					}
					break
				}
				lit = append(lit, pattern[j])
			}
			if j == i+1 {
				lit = []byte{'\''} // '' outside quotes
			}
			p.elems = append(p.elems, jdkElem{lit: string(lit)})
			i = j + 1
			continue
		}
		if !isASCIILetter(c) {
			if c == '[' || c == ']' || c == '#' || c == '{' || c == '}' {
				return nil, fmt.Errorf("unsupported pattern character %q at offset %d", c, i)
			}
			p.elems = append(p.elems, jdkElem{lit: string(c)})
			i++
			continue
		}
		j := i + 1
		for j < len(pattern) && pattern[j] == c {
			j++
		}
		n := j - i
		e := jdkElem{letter: c, n: n}
		bad := func() error { return fmt.Errorf("unsupported pattern component %q at offset %d", pattern[i:j], i) }
		switch c {
		case 'u', 'y':
			e.numeric = true
			switch {
			case n == 2:
				e.minW, e.maxW = 2, 2
			case n == 1:
				e.minW, e.maxW = 1, 10
			default:
				e.minW, e.maxW = n, 10
			}
		case 'M', 'L':
			switch n {
			case 1:
				e.numeric, e.minW, e.maxW = true, 1, 2
			case 2:
				e.numeric, e.minW, e.maxW = true, 2, 2
			case 3, 4:
			default:
				return nil, bad()
			}
		case 'd', 'H', 'h', 'K', 'k', 'm', 's':
			switch n {
			case 1:
				e.numeric, e.minW, e.maxW = true, 1, 2
			case 2:
				e.numeric, e.minW, e.maxW = true, 2, 2
			default:
				return nil, bad()
			}
		case 'D':
			if n > 3 {
				return nil, bad()
			}
			e.numeric, e.minW, e.maxW = true, n, 3
		case 'S':
			if n > 9 {
				return nil, bad()
			}
			e.numeric, e.minW, e.maxW = true, n, n
		case 'n':
			e.numeric, e.minW, e.maxW = true, 1, 9
		case 'G', 'E':
			if n > 4 {
				return nil, bad()
			}
		case 'a':
			if n > 1 {
				return nil, bad()
			}
		case 'V':
			if n != 2 {
				return nil, bad()
			}
		case 'z', 'O', 'X', 'x', 'Z':
			if n > 5 {
				return nil, bad()
			}
		default:
			return nil, bad()
		}
		p.elems = append(p.elems, e)
		i = j
	}
	// Adjacent value parsing, as java.time does it: a variable-width number followed
	// by fixed-width numbers ("yyyyMMdd") leaves them the digits they need.
	for i := range p.elems {
		e := &p.elems[i]
		if !e.numeric || e.minW == e.maxW {
			continue
		}
		for j := i + 1; j < len(p.elems) && p.elems[j].numeric && p.elems[j].minW == p.elems[j].maxW; j++ {
			e.reserved += p.elems[j].minW
		}
	}
	return p, nil
}

func cachedJDK(pattern string) (*jdkPattern, error) {
	if p, ok := jdkCache.get(pattern); ok {
		return p.(*jdkPattern), nil
	}
	p, err := compileJDK(pattern)
	if err != nil {
		return nil, err
	}
	jdkCache.put(pattern, p)
	return p, nil
}

// zoneAbbrevs maps the zone abbreviations java.time parses to the regions it
// resolves them to.
var zoneAbbrevs = map[string]string{
	"KST": "Asia/Seoul", "JST": "Asia/Tokyo", "HKT": "Asia/Hong_Kong", "SGT": "Asia/Singapore",
	"IST": "Asia/Kolkata", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
	"MST": "America/Denver", "MDT": "America/Denver", "CST": "America/Chicago",
	"CDT": "America/Chicago", "EST": "America/New_York", "EDT": "America/New_York",
	"CET": "Europe/Paris", "CEST": "Europe/Paris", "BST": "Europe/London",
	"EET": "Europe/Athens", "EEST": "Europe/Athens", "WET": "Europe/Lisbon", "WEST": "Europe/Lisbon",
	"AEST": "Australia/Sydney", "AEDT": "Australia/Sydney",
}

// parse parses s and returns epoch milliseconds. Fields the pattern lacks default
// to 1970-01-01T00:00:00, and the zone to UTC.
func (p *jdkPattern) parse(s string) (int64, error) {
	year, month, day, doy := 1970, 1, 1, 0
	hour, hour12, minute, sec, nano := 0, -1, 0, 0, 0
	pm, bc := -1, false
	loc := time.UTC
	pos := 0
	errAt := func(what string) error {
		return fmt.Errorf("%s at offset %d", what, pos)
	}
	for _, e := range p.elems {
		if e.letter == 0 {
			if !strings.HasPrefix(s[pos:], e.lit) {
				return 0, errAt(fmt.Sprintf("expected %q", e.lit))
			}
			pos += len(e.lit)
			continue
		}
		if e.numeric {
			avail := 0
			for pos+avail < len(s) && isDigit(s[pos+avail]) {
				avail++
			}
			take := min(avail-e.reserved, e.maxW)
			if e.minW == e.maxW {
				take = e.minW
			}
			if take < e.minW || take > avail {
				return 0, errAt(fmt.Sprintf("expected %d digits", e.minW))
			}
			v, _ := strconv.Atoi(s[pos : pos+take])
			pos += take
			switch e.letter {
			case 'u', 'y':
				year = v
				if e.n == 2 {
					year = 2000 + v
				}
			case 'M', 'L':
				month = v
			case 'd':
				day = v
			case 'D':
				doy = v
			case 'H':
				hour = v
			case 'k':
				hour = v % 24
				if v == 0 {
					return 0, errAt("clock hour 0")
				}
			case 'h', 'K':
				hour12 = v
				if e.letter == 'h' && (v < 1 || v > 12) || e.letter == 'K' && v > 11 {
					return 0, errAt("hour out of range")
				}
			case 'm':
				minute = v
			case 's':
				sec = v
			case 'S':
				for i := take; i < 9; i++ {
					v *= 10
				}
				nano = v
			case 'n':
				nano = v
			}
			continue
		}
		rest := s[pos:]
		switch e.letter {
		case 'M', 'L':
			i, n := matchName(rest, monthNames[:], e.n == 3)
			if n == 0 {
				return 0, errAt("expected a month name")
			}
			month, pos = i+1, pos+n
		case 'E':
			_, n := matchName(rest, dayNames[:], e.n < 4)
			if n == 0 {
				return 0, errAt("expected a day name")
			}
			pos += n
		case 'a':
			switch {
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "AM"):
				pm = 0
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "PM"):
				pm = 1
			default:
				return 0, errAt("expected AM or PM")
			}
			pos += 2
		case 'G':
			switch {
			case strings.HasPrefix(rest, "AD"):
				pos += 2
			case strings.HasPrefix(rest, "BC"):
				bc = true
				pos += 2
			case strings.HasPrefix(rest, "Anno Domini"):
				pos += len("Anno Domini")
			case strings.HasPrefix(rest, "Before Christ"):
				bc = true
				pos += len("Before Christ")
			default:
				return 0, errAt("expected an era")
			}
		case 'V', 'z':
			n := 0
			for n < len(rest) && isZoneChar(rest[n]) {
				n++
			}
			l, err := parseZoneText(rest[:n])
			if err != nil {
				return 0, errAt(err.Error())
			}
			loc, pos = l, pos+n
		case 'O', 'X', 'x', 'Z':
			if len(rest) > 0 && rest[0] == 'Z' && (e.letter == 'X' || e.letter == 'Z' && e.n == 5) {
				loc, pos = time.UTC, pos+1
				break
			}
			r := rest
			for _, prefix := range []string{"GMT", "UTC", "UT"} {
				if strings.HasPrefix(r, prefix) {
					r = r[len(prefix):]
					break
				}
			}
			if r == "" || r[0] != '+' && r[0] != '-' {
				if len(r) < len(rest) { // "GMT" alone
					loc, pos = time.UTC, pos+len(rest)-len(r)
					break
				}
				return 0, errAt("expected a zone offset")
			}
			off, n, ok := parseOffset(r, e.letter == 'O')
			if !ok {
				return 0, errAt("expected a zone offset")
			}
			loc, pos = fixedZone(off).loc, pos+len(rest)-len(r)+n
		}
	}
	if pos != len(s) {
		return 0, errAt("unparsed text")
	}
	if hour12 >= 0 {
		hour = hour12 % 12
		if pm == 1 {
			hour += 12
		}
	}
	if bc {
		year = 1 - year
	}
	if month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return 0, errors.New("field out of range")
	}
	if doy > 0 {
		if doy > 366 {
			return 0, errors.New("day of year out of range")
		}
		month, day = 1, doy
	} else if day < 1 || day > daysIn(time.Month(month), year) {
		return 0, errors.New("day of month out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nano, loc)
	if doy > 0 && t.Year() != year {
		return 0, errors.New("day of year out of range")
	}
	return t.UnixMilli(), nil
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func isZoneChar(c byte) bool {
	return isASCIILetter(c) || isDigit(c) || c == '_' || c == '/' || c == '+' || c == '-' || c == ':'
}

// matchName matches a month or day name at the start of s, case-insensitively:
// the full name, or its first three letters when short is set. It returns the
// index of the name and the length matched (0 when nothing matched).
func matchName(s string, names []string, short bool) (int, int) {
	for i, name := range names {
		if short {
			name = name[:3]
		}
		if len(s) >= len(name) && strings.EqualFold(s[:len(name)], name) {
			return i, len(name)
		}
	}
	return 0, 0
}

// parseZoneText resolves what "z" and "VV" read: a region ID, "UTC"/"GMT"/"Z",
// an abbreviation java.time knows, or an offset possibly prefixed by UTC/GMT/UT.
func parseZoneText(s string) (*time.Location, error) {
	if s == "" {
		return nil, errors.New("expected a time zone")
	}
	for _, prefix := range []string{"UTC", "GMT", "UT"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok && rest != "" && (rest[0] == '+' || rest[0] == '-') {
			off, n, ok := parseOffset(rest, true)
			if !ok || n != len(rest) {
				return nil, fmt.Errorf("invalid zone %q", s)
			}
			return fixedZone(off).loc, nil
		}
	}
	switch s {
	case "Z", "UTC", "GMT", "UT":
		return time.UTC, nil
	}
	if region, ok := zoneAbbrevs[s]; ok {
		s = region
	}
	z, err := loadZone(s)
	if err != nil {
		return nil, err
	}
	return z.loc, nil
}
