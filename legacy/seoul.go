package legacy

import (
	"sync"
	"time"
)

// seoul returns the Asia/Seoul location from the system's time zone database
// (or $ZONEINFO, or Go's own zoneinfo.zip), loaded once on first use. Without
// any of them (a scratch container) it falls back to a fixed +09:00 zone:
// Korea has had no daylight saving time since 1988, so both agree for every
// instant since October 1988; they differ only for the summers of 1987 and
// 1988, which no terminal in service sends.
// time/tzdata is not imported: it would add ~450 kB to every binary for one
// zone whose offset is fixed.
var seoul = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Seoul"); err == nil {
		return loc
	}
	return time.FixedZone("KST", 9*60*60)
})
