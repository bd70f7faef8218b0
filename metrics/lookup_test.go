package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetgate/fleetgate/lookup"
)

var _ lookup.Observer = (*Metrics)(nil)

func TestLookupSeries(t *testing.T) {
	m := New()
	tb := lookup.NewTable("vehicles", m)
	if _, ok := tb.Row("861"); ok {
		t.Fatal("hit in an empty table")
	}
	m.LookupRows("vehicles", 1200)
	m.LookupHit("vehicles")
	m.LookupHit("vehicles")
	m.LookupRefreshed("vehicles", time.Unix(1700000000, 500e6))
	m.LookupRefreshFailed("vehicles")
	m.LookupRows("registry", 0)

	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"rows", testutil.ToFloat64(m.lookups.rows.WithLabelValues("vehicles")), 1200},
		{"hits", testutil.ToFloat64(m.lookups.hits.WithLabelValues("vehicles")), 2},
		{"misses", testutil.ToFloat64(m.lookups.misses.WithLabelValues("vehicles")), 1},
		{"last refresh", testutil.ToFloat64(m.lookups.lastRefresh.WithLabelValues("vehicles")), 1700000000.5},
		{"failures", testutil.ToFloat64(m.lookups.failures.WithLabelValues("vehicles")), 1},
		{"a new table's hits start at zero", testutil.ToFloat64(m.lookups.hits.WithLabelValues("registry")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "fleetgate_lookup") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
