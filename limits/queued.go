package limits

// NewQueued returns the budget of messages the MQTT broker holds for
// subscribers (limits.max_queued_*), apart from the in-flight budget: a
// backlog of downlink for offline sessions must not take the room of
// uplink on its way to Kafka. The broker only ever calls TryAcquire on it
// and drops its oldest queued message when there is no room.
func NewQueued(cfg Config) *Budget {
	return New(Config{MaxInflightMessages: cfg.MaxQueuedMessages, MaxInflightBytes: cfg.MaxQueuedBytes})
}
