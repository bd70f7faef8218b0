package telematics

import "time"

// Observer is told about responses (the metrics package implements it). Its
// methods must be safe for concurrent use and cheap.
type Observer interface {
	// Responded: a response with status was written.
	Responded(status int)
	// Acked: a message of source (sts, csa) was acknowledged with 200,
	// latency after its request body was read. Called once per message.
	Acked(source string, latency time.Duration)
	// Refused: a request was refused for reason (legacy_unauthenticated,
	// legacy_device_not_allowed, inflight_limit), besides its Responded.
	Refused(reason string)
}

// Option tunes New.
type Option func(*Server)

// WithObserver reports responses to o. Default: none.
func WithObserver(o Observer) Option { return func(s *Server) { s.obs = o } }

type nopObserver struct{}

func (nopObserver) Responded(int)               {}
func (nopObserver) Acked(string, time.Duration) {}
func (nopObserver) Refused(string)              {}
