package router

// Failure reasons: the short words of the error header ("reason: message")
// on error records and the reason label of fleetgate_errors_total,
// fleetgate_error_records_total and fleetgate_messages_dropped_total.
// This is the one list of them: the engine, the kafka producer, the inputs
// and the metrics (which set every rule and reason to zero at start, so
// that alerts see the first failure) all use these names.
const (
	// ReasonEvalError: the SQL (or a foreach) could not be evaluated,
	// e.g. the payload is not JSON.
	ReasonEvalError = "eval_error"
	// ReasonTemplateError: a topic, key, partition or header template
	// could not be evaluated.
	ReasonTemplateError = "template_error"
	// ReasonInvalidPartition: a partition that is not a number, or that
	// the topic does not have.
	ReasonInvalidPartition = "invalid_partition"
	// ReasonRepublishFailed: a republish action could not publish.
	ReasonRepublishFailed = "republish_failed"
	// ReasonInvalidTopic: a Kafka topic name that Kafka would refuse.
	ReasonInvalidTopic = "invalid_topic"
	// ReasonUnknownTopic: a Kafka topic that does not exist.
	ReasonUnknownTopic = "unknown_topic"
	// ReasonRecordTooLarge: the record exceeds kafka.max_message_bytes or
	// the broker's limit.
	ReasonRecordTooLarge = "record_too_large"
	// ReasonInvalidRecord: Kafka refused the record as invalid.
	ReasonInvalidRecord = "invalid_record"
	// ReasonNotAuthorized: Kafka refused the topic to our principal.
	ReasonNotAuthorized = "not_authorized"
	// ReasonPermanentError: a permanent sink error that names no reason.
	ReasonPermanentError = "permanent_error"
	// ReasonIdentityMismatch: the message's device field names another
	// device than the sender's verified principal (router/identity.go).
	ReasonIdentityMismatch = "identity_mismatch"
	// ReasonInvalidDeviceID: the device field is not a string, is empty,
	// too long, has control characters or leading/trailing spaces, does not
	// match router.identity.pattern, or appears more than once.
	ReasonInvalidDeviceID = "invalid_device_id"
	// ReasonSchemaInvalid: the record value does not match its schema.
	ReasonSchemaInvalid = "schema_invalid"
	// ReasonSchemaUnknown: the schema the action names is not loaded (or,
	// with format: confluent, has no registry id).
	ReasonSchemaUnknown = "schema_unknown"
	// ReasonForeachTooLarge: a foreach array has more elements than
	// router.max_foreach_elements.
	ReasonForeachTooLarge = "foreach_too_large"

	// ReasonKafkaUnavailable: Kafka failed a record after the producer's
	// retries; the message is not acknowledged.
	ReasonKafkaUnavailable = "kafka_unavailable"
	// ReasonDeliveryTimeout: Kafka did not answer within
	// kafka.delivery_timeout (or telematics.request_timeout); the message
	// is not acknowledged.
	ReasonDeliveryTimeout = "delivery_timeout"
	// ReasonInflightLimit: no room under limits.* in time; MQTT 5 gets
	// reason code 0x97, MQTT 3.1.1 is disconnected, HTTP gets 503, a QoS 0
	// message is dropped.
	ReasonInflightLimit = "inflight_limit"

	// ReasonLegacyUnauthenticated: a legacy request without a valid bearer
	// token (HTTP 401).
	ReasonLegacyUnauthenticated = "legacy_unauthenticated"
	// ReasonLegacyDeviceNotAllowed: a legacy token spoke for a device it is
	// not bound to (HTTP 403).
	ReasonLegacyDeviceNotAllowed = "legacy_device_not_allowed"
)

// PermanentReasons returns the reasons of permanent failures: a rule's
// message goes to its error action (or is dropped when it has none). A new
// slice on every call.
func PermanentReasons() []string {
	return []string{
		ReasonEvalError, ReasonTemplateError, ReasonInvalidPartition, ReasonRepublishFailed,
		ReasonInvalidTopic, ReasonUnknownTopic, ReasonRecordTooLarge, ReasonInvalidRecord,
		ReasonNotAuthorized, ReasonPermanentError, ReasonIdentityMismatch, ReasonInvalidDeviceID,
		ReasonForeachTooLarge, ReasonSchemaInvalid, ReasonSchemaUnknown,
	}
}

// TransientReasons returns the reasons a message is not acknowledged (its
// sender retries). A new slice on every call.
func TransientReasons() []string {
	return []string{ReasonKafkaUnavailable, ReasonDeliveryTimeout, ReasonInflightLimit}
}

// RefusalReasons returns the reasons an input refuses a request before any
// rule sees it (counted in fleetgate_errors_total). A new slice on every
// call.
func RefusalReasons() []string {
	return []string{ReasonLegacyUnauthenticated, ReasonLegacyDeviceNotAllowed}
}
