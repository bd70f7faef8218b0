// Package kfaketest scripts the embedded Kafka broker (franz-go's kfake) for
// tests: it answers requests the way a failing cluster would.
package kfaketest

import (
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FailProduces answers produce requests with code for every partition for
// as long as fail, called once per request, reports true; from the first
// false on the broker serves produce requests itself again.
func FailProduces(c *kfake.Cluster, code int16, fail func() bool) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !fail() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}
