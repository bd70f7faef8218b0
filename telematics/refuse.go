package telematics

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/fleetgate/fleetgate/legacy"
	"github.com/fleetgate/fleetgate/router"
)

// Reasons given to Observer.Refused, as fleetgate_errors_total says them.
const (
	reasonUnauthenticated  = router.ReasonLegacyUnauthenticated
	reasonDeviceNotAllowed = router.ReasonLegacyDeviceNotAllowed
	reasonInflightLimit    = router.ReasonInflightLimit
)

// closeUnread makes the response the connection's last and stops reading
// the request: a body left unread (a refusal before it, a terminal that
// never sends it) is neither drained nor waited for. net/http otherwise
// reads up to 256 KiB of it, until telematics.read_timeout, before it
// answers or closes.
func closeUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	// Fails only for a writer that has no connection (tests): nothing to
	// stop reading then.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// refuseUnread answers a request refused before its body was read, at once,
// and closes the connection.
func (s *Server) refuseUnread(w http.ResponseWriter, r *http.Request, status int, msg string) {
	closeUnread(w)
	s.refuse(w, r, "", status, msg, nil)
}

// allowed checks that token may speak for the device of every message of
// the request, before any is produced. It answers 403 and reports false
// when one is not covered.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, token *tokenEntry, source string, msgs []legacy.Message) bool {
	for i := range msgs {
		if token.allows(msgs[i].DeviceNo) {
			continue
		}
		field := "device_no"
		if source == legacy.SourceCSA {
			field = "tid"
		}
		s.obs.Refused(reasonDeviceNotAllowed)
		msg := "the token may not send data for this " + field
		s.refuse(w, r, msgs[i].DeviceNo, http.StatusForbidden, msg, &legacy.FieldError{Field: field, Problem: msg},
			zap.String("principal", token.name))
		return false
	}
	return true
}
