package kafkatest

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// brokerConfig returns the server.properties of node id (1-based) in a cluster
// of n nodes, before Options.ExtraBrokerConfig is laid over it.
func brokerConfig(id, n int, port, ctrlPort int, voters, dataDir string) map[string]string {
	rf := strconv.Itoa(n)
	minISR := "1"
	if n >= 3 {
		minISR = "2"
	}
	return map[string]string{
		// KRaft, every node both broker and controller (combined mode), all voters.
		"process.roles":                  "broker,controller",
		"node.id":                        strconv.Itoa(id),
		"controller.quorum.voters":       voters,
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listeners":                      fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, ctrlPort),
		"advertised.listeners":           fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                       dataDir,

		// Like production for what the gateway relies on: no topic appears by
		// itself, and with 3 nodes acks=all needs 2 in-sync replicas.
		"auto.create.topics.enable":  "false",
		"num.partitions":             "1",
		"default.replication.factor": rf,
		"min.insync.replicas":        minISR,

		// Internal topics sized to the cluster. Their default 50 partitions
		// each cost seconds to create on 2 cores, so the first consumer group
		// or transaction would stall; 4 is plenty for tests.
		"offsets.topic.replication.factor":                 rf,
		"offsets.topic.num.partitions":                     "4",
		"transaction.state.log.replication.factor":         rf,
		"transaction.state.log.min.isr":                    minISR,
		"transaction.state.log.num.partitions":             "4",
		"share.coordinator.state.topic.replication.factor": rf,
		"share.coordinator.state.topic.min.isr":            minISR,
		"share.coordinator.state.topic.num.partitions":     "4",
		"group.initial.rebalance.delay.ms":                 "0",

		// Fast failover: a killed node is fenced (and its partitions get new
		// leaders) after broker.session.timeout.ms instead of the default 9 s.
		"broker.heartbeat.interval.ms": "500",
		"broker.session.timeout.ms":    "3000",

		// Small footprint: up to three brokers share 2 cores with the tests.
		"num.network.threads":               "2",
		"num.io.threads":                    "2",
		"num.replica.fetchers":              "1",
		"background.threads":                "2",
		"num.recovery.threads.per.data.dir": "1",
		"log.cleaner.threads":               "1",
		// The cleaner's dedupe buffer (default 128 MiB) is allocated on the heap.
		"log.cleaner.dedupe.buffer.size": strconv.Itoa(16 << 20),
	}
}

// writeProperties writes cfg sorted by key, so the file diffs cleanly.
func writeProperties(path string, cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by github.com/fleetgate/fleetgate/test/kafkatest.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, cfg[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
