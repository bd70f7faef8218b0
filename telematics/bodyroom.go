package telematics

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// Limiter bounds the bytes in flight across the process (limits.*;
// limits.Budget implements it). Request bodies take room from it before
// they are read. It must be safe for concurrent use.
type Limiter interface {
	// TryAcquire takes room for msgs messages of bytes bytes if there is
	// room now.
	TryAcquire(msgs int, bytes int64) bool
	// Release gives back what TryAcquire took.
	Release(msgs int, bytes int64)
}

// WithLimiter makes every request body take room from l before it is read:
// all of a declared Content-Length at once, a chunked body as it arrives. A
// request that gets no room is answered 503 with Retry-After at once,
// without reading (more of) its body, and its connection is closed. The
// room is given back when the request's messages are handed to the
// Ingester (which takes room for them itself) or the request is answered.
// Default: no limit.
func WithLimiter(l Limiter) Option { return func(s *Server) { s.limit = l } }

// errNoRoom ends reading a chunked body that got no room.
var errNoRoom = errors.New("gateway at its in-flight bound (limits.*)")

// bodyRoom is the room one request body holds.
type bodyRoom struct {
	limit Limiter // nil: no limit
	held  int64
}

// take takes room for n more bytes.
func (b *bodyRoom) take(n int64) bool {
	if b.limit != nil && !b.limit.TryAcquire(0, n) {
		return false
	}
	b.held += n
	return true
}

// countedReader takes room for each piece of a body of unknown length as it
// is read. A piece that gets none has been read already: it is not
// returned, and reading stops.
type countedReader struct {
	r    io.Reader
	room *bodyRoom
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.room.take(int64(n)) {
		return 0, errNoRoom
	}
	return n, err
}

// noRoom counts a body refused for lack of room and returns the answer:
// 503, without reading further.
func (s *Server) noRoom(w http.ResponseWriter) (int, error) {
	s.obs.Refused(reasonInflightLimit)
	closeUnread(w)
	return http.StatusServiceUnavailable, errNoRoom
}

// releaseOnce returns a function that gives back held bytes the first time
// it is called.
func (s *Server) releaseOnce(held int64) func() {
	if s.limit == nil || held == 0 {
		return func() {}
	}
	return sync.OnceFunc(func() { s.limit.Release(0, held) })
}
