package timefmt

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestJodaFormat(t *testing.T) {
	const ms = 1763780000123 // 2025-11-22T02:53:20.123Z, a Saturday
	tests := []struct {
		pattern string
		ms      int64
		zone    string
		want    string
	}{
		{"yyyy-MM-dd'T'HH:mm:ssz", 1763780000000, "UTC", "2025-11-22T02:53:20UTC"},
		{"yyyy-MM-dd'T'HH:mm:ssz", 1763780000000, "Asia/Seoul", "2025-11-22T11:53:20KST"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZZ", ms, "Asia/Seoul", "2025-11-22T11:53:20.123+09:00"},
		{"yyyyMMddHHmmss", ms, "Asia/Seoul", "20251122115320"},
		{"yy/M/d H:m:s", ms, "UTC", "25/11/22 2:53:20"},
		{"EEE, d MMM yyyy hh:mm a", ms, "UTC", "Sat, 22 Nov 2025 02:53 AM"},
		{"EEEE MMMM", ms, "UTC", "Saturday November"},
		{"h 'o''clock' a", ms, "Asia/Seoul", "11 o'clock AM"},
		{"''yyyy''", ms, "UTC", "'2025'"},
		{"'literal text' yyyy", ms, "UTC", "literal text 2025"},
		{"'it''s' HH", ms, "UTC", "it's 02"},
		{"yyyy년 M월 d일", ms, "Asia/Seoul", "2025년 11월 22일"},
		{"Z|ZZ|ZZZ", ms, "UTC", "+0000|+00:00|UTC"},
		{"Z|ZZ|ZZZ", ms, "Asia/Seoul", "+0900|+09:00|Asia/Seoul"},
		{"z|zzzz", ms, "UTC", "UTC|Coordinated Universal Time"},
		{"z|zzzz", ms, "Asia/Seoul", "KST|Korea Standard Time"},
		{"HH:mm z Z", ms, "+05:30", "08:23 +05:30 +0530"},
		{"HH:mm z", ms, "-0330", "23:23 -03:30"},
		{"z", ms, "Asia/Dubai", "+04:00"}, // tzdata has no letters for it: Joda prints the offset
		{"HH z zzzz", 1751371200000, "America/Los_Angeles", "05 PDT Pacific Daylight Time"},
		{"HH z", 1763780000000, "America/Los_Angeles", "18 PST"},
		{"S|SS|SSS|SSSSSS", ms, "UTC", "1|12|123|123000"},
		{"D DDD", ms, "UTC", "326 326"},
		{"D DDD", 0, "UTC", "1 001"},
		{"e E", ms, "UTC", "6 Sat"},
		{"xxxx-'W'ww-e", ms, "UTC", "2025-W47-6"},
		{"xx", ms, "UTC", "25"},
		{"G C", ms, "UTC", "AD 20"},
		{"k K h a", 0, "UTC", "24 0 12 AM"},
		{"k K h a", 13 * 3600 * 1000, "UTC", "13 1 1 PM"},
		{"yyyy G Y", -62135596800000, "UTC", "0001 AD 1"},
		{"yyyy G Y yy", -62135596800001, "UTC", "0000 BC 1 00"},
		{"y", ms, "UTC", "2025"},
		{"yyyyyy", ms, "UTC", "002025"},
		{"", ms, "UTC", ""},
		{"-/:. ,", ms, "UTC", "-/:. ,"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"@"+tt.zone, func(t *testing.T) {
			p, err := compileJoda(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			z, err := loadZone(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(p.appendFormat(nil, tt.ms, z)); got != tt.want {
				t.Errorf("format(%q, %d, %s) = %q, want %q", tt.pattern, tt.ms, tt.zone, got, tt.want)
			}
		})
	}
}

func TestJodaCompileErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"yyyy-qq", `illegal pattern component "qq" at offset 5`},
		{"b", `illegal pattern component "b"`},
		{"yyyy-MM-dd'T", "unterminated quote"},
		{"uuuu", `illegal pattern component "uuuu"`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := compileJoda(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compileJoda(%q) error = %v, want %q", tt.pattern, err, tt.want)
			}
		})
	}
}

func TestLoadZone(t *testing.T) {
	tests := []struct{ name, id, err string }{
		{"UTC", "UTC", ""},
		{"Etc/UTC", "UTC", ""},
		{"Asia/Seoul", "Asia/Seoul", ""},
		{"America/Belize", "America/Belize", ""},
		{"+09:00", "+09:00", ""},
		{"-0530", "-05:30", ""},
		{"+09", "+09:00", ""},
		{"+00:00", "UTC", ""},
		{"Mars/Olympus", "", "unknown time zone"},
		{"", "", "unknown time zone"},
		{"Local", "", "unknown time zone"},
		{"+25:00", "", "invalid time zone offset"},
		{"+09:00x", "", "invalid time zone offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, err := loadZone(tt.name)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("loadZone(%q) = %v, %v; want error %q", tt.name, z, err, tt.err)
				}
				return
			}
			if err != nil || z.id != tt.id {
				t.Errorf("loadZone(%q) = %+v, %v; want id %q", tt.name, z, err, tt.id)
			}
		})
	}
}

func TestTimeToEpoch(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) int64 {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC).UnixMilli()
	}
	tests := []struct {
		s, pattern string
		want       int64
	}{
		// the examples of the IoT Core documentation
		{"2020-04-03 09:45:18 UTC+01:00", "yyyy-MM-dd HH:mm:ss VV", 1585903518000},
		{"18 December 2015", "dd MMMM yyyy", 1450396800000},
		{"2007-12-03 10:15:30.592 America/Los_Angeles", "yyyy-MM-dd HH:mm:ss.SSS z", 1196705730592},
		// adjacent numbers, as the CSA terminals send them
		{"20261122115306", "yyyyMMddHHmmss", utc(2026, 11, 22, 11, 53, 6, 0)},
		{"2025-11-22T11:53:20+09:00", "yyyy-MM-dd'T'HH:mm:ssXXX", 1763780000000},
		{"2025-11-22T02:53:20Z", "yyyy-MM-dd'T'HH:mm:ssX", 1763780000000},
		{"2025-11-22T02:53:20+0000", "yyyy-MM-dd'T'HH:mm:ssx", 1763780000000},
		{"2025-11-22 11:53:20 KST", "yyyy-MM-dd HH:mm:ss z", 1763780000000},
		{"2025-11-22 11:53:20 Asia/Seoul", "yyyy-MM-dd HH:mm:ss VV", 1763780000000},
		{"2025-11-22 11:53:20 GMT+9", "yyyy-MM-dd HH:mm:ss O", 1763780000000},
		{"2025-11-22 11:53:20 GMT+09:00", "yyyy-MM-dd HH:mm:ss OOOO", 1763780000000},
		{"22/Nov/2025:02:53:20 +0000", "dd/MMM/yyyy:HH:mm:ss Z", 1763780000000},
		{"Sat, 22 Nov 2025 02:53:20 GMT", "EEE, dd MMM yyyy HH:mm:ss z", 1763780000000},
		{"Saturday, 22 november 2025", "EEEE, d MMMM uuuu", utc(2025, 11, 22, 0, 0, 0, 0)},
		{"11/22/25 2:53 AM", "MM/dd/yy h:mm a", utc(2025, 11, 22, 2, 53, 0, 0)},
		{"11/22/25 2:53 PM", "MM/dd/yy h:mm a", utc(2025, 11, 22, 14, 53, 0, 0)},
		{"11/22/25 12:05 AM", "MM/dd/yy hh:mm a", utc(2025, 11, 22, 0, 5, 0, 0)},
		{"2025-326", "yyyy-DDD", utc(2025, 11, 22, 0, 0, 0, 0)},
		{"2025-1-5 7:8:9", "yyyy-M-d H:m:s", utc(2025, 1, 5, 7, 8, 9, 0)},
		{"2025-11-22 02:53:20.123456789", "yyyy-MM-dd HH:mm:ss.SSSSSSSSS", 1763780000123},
		{"2025-11-22 02:53:20.5", "yyyy-MM-dd HH:mm:ss.S", 1763780000500},
		{"2025 'quoted'", "yyyy '''quoted'''", utc(2025, 1, 1, 0, 0, 0, 0)},
		{"2025'", "yyyy''", utc(2025, 1, 1, 0, 0, 0, 0)},
		{"2024-02-29", "yyyy-MM-dd", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"24 AD", "yy G", utc(2024, 1, 1, 0, 0, 0, 0)},
		{"12:00", "HH:mm", utc(1970, 1, 1, 12, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			p, err := compileJDK(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.parse(tt.s)
			if err != nil || got != tt.want {
				t.Errorf("time_to_epoch(%q, %q) = %d, %v; want %d", tt.s, tt.pattern, got, err, tt.want)
			}
		})
	}
}

func TestTimeToEpochErrors(t *testing.T) {
	tests := []struct{ s, pattern, want string }{
		{"2025-02-30", "yyyy-MM-dd", "day of month out of range"},
		{"2025-13-01", "yyyy-MM-dd", "field out of range"},
		{"2025-11-22", "yyyy-MM-dd HH", `expected " " at offset 10`},
		{"2025-11-22x", "yyyy-MM-dd", "unparsed text at offset 10"},
		{"25-11-22", "yyyy-MM-dd", "expected 4 digits at offset 0"},
		{"2025-11-22 25:00", "yyyy-MM-dd HH:mm", "field out of range"},
		{"2025-11-22 Nowhere/City", "yyyy-MM-dd z", "unknown time zone"},
		{"13:00 PM", "hh:mm a", "hour out of range"},
		{"Foo 2025", "MMM yyyy", "expected a month name"},
		{"2025-367", "yyyy-DDD", "day of year out of range"},
		{"2025-11-22T00:00:00+1", "yyyy-MM-dd'T'HH:mm:ssXXX", "expected a zone offset"},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			p, err := compileJDK(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.parse(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse(%q, %q) = %d, %v; want error %q", tt.s, tt.pattern, got, err, tt.want)
			}
		})
	}
	for _, pattern := range []string{"yyyy[MM]", "YYYY", "'open", "MMMMMM", "HHH", "ww", "VVV", "q"} {
		t.Run("compile "+pattern, func(t *testing.T) {
			if _, err := compileJDK(pattern); err == nil {
				t.Errorf("compileJDK(%q) succeeded", pattern)
			}
		})
	}
}

func TestPatternCaches(t *testing.T) {
	p1, err := cachedJoda("yyyy")
	p2, _ := cachedJoda("yyyy")
	if err != nil || p1 != p2 {
		t.Errorf("cachedJoda did not cache: %p %p %v", p1, p2, err)
	}
	j1, err := cachedJDK("yyyy")
	j2, _ := cachedJDK("yyyy")
	if err != nil || j1 != j2 {
		t.Errorf("cachedJDK did not cache: %p %p %v", j1, j2, err)
	}
	if _, err := cachedJoda("qq"); err == nil {
		t.Error("cachedJoda accepted an invalid pattern")
	}
}

// TestAppendPadded compares appendPadded, with its fast path for two
// digits, with fmt's zero padding.
func TestAppendPadded(t *testing.T) {
	for width := range 5 {
		for v := -150; v <= 150; v++ {
			want := fmt.Sprintf("%0*d", width, v)
			if v < 0 {
				want = "-" + fmt.Sprintf("%0*d", width, -v)
			}
			if got := string(appendPadded([]byte("x"), v, width)); got != "x"+want {
				t.Fatalf("appendPadded(%d, %d) = %q, want %q", v, width, got[1:], want)
			}
		}
	}
}
