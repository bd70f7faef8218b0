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
		return Answer(req.(*kmsg.ProduceRequest), func(int32) int16 { return code }), nil, true
	})
}

// Answer is the broker's answer to req that stores nothing: each
// partition's error code is code(partition).
func Answer(req *kmsg.ProduceRequest, code func(partition int32) int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code(p.Partition)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
