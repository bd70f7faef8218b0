package kfaketest

import (
	"strconv"
	"testing"

	"github.com/IBM/sarama"
)

// BrokerConfig returns the value that the (single) broker at addr describes
// for its config name, asked through the Kafka protocol as any admin client
// would; "" when it describes none.
func BrokerConfig(t testing.TB, addr, name string) string {
	t.Helper()
	c := sarama.NewConfig()
	c.Version = sarama.V3_9_0_0
	adm, err := sarama.NewClusterAdmin([]string{addr}, c)
	if err != nil {
		t.Fatalf("admin client for %s: %v", addr, err)
	}
	defer func() { _ = adm.Close() }()
	brokers, _, err := adm.DescribeCluster()
	if err != nil || len(brokers) != 1 {
		t.Fatalf("describe cluster at %s: %d brokers, err %v; want one broker", addr, len(brokers), err)
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{
		Type: sarama.BrokerResource, Name: strconv.Itoa(int(brokers[0].ID())), ConfigNames: []string{name},
	})
	if err != nil {
		t.Fatalf("describe broker config %s at %s: %v", name, addr, err)
	}
	for _, e := range entries {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
