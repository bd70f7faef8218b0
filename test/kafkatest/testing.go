package kafkatest

import (
	"context"
	"testing"
	"time"
)

// StartT starts a cluster for a test and closes it in tb.Cleanup. It skips
// the test under -short and fails it (with the fetch hint) if Kafka is not
// installed: a missing broker must not pass silently in CI. When the test has
// failed, the cluster's directory is kept and its path logged, so server.log
// can be read.
func StartT(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("kafkatest: real Kafka is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	began := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("kafkatest: %d-node Kafka %s ready at %s in %s (dir %s)",
		c.Nodes(), c.Version(), c.Bootstrap(), time.Since(began).Round(time.Millisecond), c.Dir())
	tb.Cleanup(func() {
		if tb.Failed() && !c.keep {
			c.keep = true
			tb.Logf("kafkatest: test failed, keeping %s (node-N/server.log)", c.Dir())
		}
		if err := c.Close(); err != nil {
			tb.Errorf("kafkatest: close: %v", err)
		}
	})
	return c
}
