// Package telematics is the legacy HTTPS endpoint of SPEC section 2.2: old
// STS and CSA terminals POST reports to /log and /boot; the package decodes
// them with package legacy and hands the canonical messages to the rule
// engine through the Ingester it declares, as if the device had published
// them over MQTT to telematics.topic with client id = device_no.
//
// # Responses
//
// Checks run in this order and the first failure answers:
//
//	404  path other than /log and /boot (exact; no trailing slash, query ignored)
//	405  method other than POST, with Allow: POST
//	401  telematics.auth.tokens_file set and no valid "Authorization: Bearer <token>",
//	     with WWW-Authenticate: Bearer
//	415  Content-Type other than application/json (STS) or
//	     application/x-www-form-urlencoded (CSA), parameters such as charset
//	     ignored; also any Content-Encoding but identity
//	413  body over telematics.max_body_bytes (by Content-Length before reading,
//	     else while reading; the connection is then closed)
//	503  no room for the body under limits.* (WithLimiter): by Content-Length
//	     before reading, else while reading; Retry-After: 2, connection closed
//	408  body not received within the read timeout
//	400  body not decodable or a field invalid: {"error": "records[0].lat: out of
//	     range [-90, 90]", "field": "records[0].lat"}; nothing is ingested
//	403  the token may not speak for the device of one of the request's
//	     messages: {"error": "...", "field": "device_no"} ("tid" for CSA), the
//	     device not echoed; checked for every message before any is ingested
//	503  Ingest reports unavailable (an error with Unavailable() true), the
//	     request timeout expired, or the server is shutting down; Retry-After: 2
//	500  any other Ingest error (the cause is logged, not returned)
//	200  {"accepted": N} once Ingest returned nil for all N messages
//
// The refusals before the body is read (404, 405, 401, 415, 413 by
// Content-Length, 503 for room or shutdown) carry Connection: close and stop
// reading the request, so they are answered at once and the connection
// closed even if the body never comes (net/http would otherwise wait for
// up to 256 KiB of it, until the read timeout). Every response of the
// handler has a JSON body and Content-Type application/json. Requests that net/http refuses before any handler runs
// (unparsable request line, headers over 16 KiB, headers not received in
// time) get its own plain-text 400/431 or a closed connection. An STS
// /log with an empty records array is accepted with {"accepted": 0} without
// calling Ingest. Each refused request is logged once (device when known,
// path, status, remote address, reason; never the body): info for 4xx, warn
// for 503, error for 500. Accepted requests are logged at debug.
//
// # Order and delivery
//
// Messages of one request go to one Ingest call in body order, and the
// response waits for it, so a terminal that sends its next request only
// after a 200 gets its records stored in order. Beyond that, requests of the
// same device_no are serialised: a per-device first-come-first-served lock,
// taken once the body is read and decoded, lets only one request per device
// be in Ingest at a time, so two overlapping requests of one terminal (a
// retry on a new connection while the first attempt is still being stored)
// are ingested in the order their bodies arrived. Devices do not wait for
// each other. The wait for the lock counts against RequestTimeout (503 when
// it expires). Ingest runs under a context that a client hanging up does
// not cancel, so a disconnect does not cut a request's messages in the
// middle; Shutdown cancels it only when its own deadline passes. A request
// answered 5xx may have been partly stored: the terminal's retry produces
// duplicates, never a reordering, as long as it retries before sending
// newer data.
//
// # Connections and TLS
//
// TLS always (1.2 minimum), HTTP/1.1 only, keep-alive on. With no
// certificate configured New generates a self-signed ECDSA P-256 one for
// localhost, 127.0.0.1, ::1 and the host name, valid one year; Start logs its
// SHA-256 fingerprint (CertFingerprint) at info. Timeouts: request headers
// within min(ReadTimeout, 10s), the whole request within ReadTimeout, the
// response within WriteTimeout of the headers, IdleTimeout between
// keep-alive requests; headers at most 16 KiB. A client that trickles its
// headers or body is disconnected when they expire.
//
// # Authentication
//
// telematics.auth.tokens_file holds one "name token [device ...]" line per
// token ('#' comments, blank lines skipped; names and tokens unique, at
// least one). It is read once by New. Tokens are compared as SHA-256
// digests in constant time against every entry; the matching name becomes
// router.Message's Principal. The devices (separated by white space or
// commas) are exact device numbers or prefixes ending in '*' ("STS-12*");
// "*" means any device. A line without devices (the original format) may
// speak for any device: New logs a warning naming such tokens.
//
// # Memory
//
// With WithLimiter, a request body takes room under limits.* before it is
// read (all of a declared Content-Length, a chunked body as it arrives), and
// keeps it while the request waits for its device's turn; Ingest then takes
// room for the decoded messages. Refusals are counted by reason through
// Observer.Refused (legacy_unauthenticated, legacy_device_not_allowed,
// inflight_limit) and logged (sampled) with device, principal and remote
// address.
package telematics
