package telematics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fleetgate/fleetgate/legacy"
	"github.com/fleetgate/fleetgate/router"
)

// decodeFunc is the signature of the legacy decoders.
type decodeFunc func([]byte) ([]legacy.Message, error)

// route holds the decoders of one path, by terminal family.
type route struct {
	sts, csa decodeFunc
}

// routes are the two paths of SPEC 2.2.
var routes = map[string]route{
	"/log":  {sts: legacy.DecodeSTSLog, csa: legacy.DecodeCSALog},
	"/boot": {sts: legacy.DecodeSTSBoot, csa: legacy.DecodeCSABoot},
}

// Media types that tell the terminal families apart.
const (
	mediaSTS = "application/json"
	mediaCSA = "application/x-www-form-urlencoded"
)

// retryAfterSeconds is the Retry-After of a 503. Short: its causes (memory
// bound, broker fail-over) are usually brief, and a terminal keeps its data
// meanwhile.
const retryAfterSeconds = "2"

// serveHTTP handles one request: route, method, authentication, content
// type, body, decoding, ingestion, in that order; the first failure decides
// the status.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		s.refuse(w, r, "", http.StatusServiceUnavailable, "shutting down, retry later", nil)
		return
	}
	defer s.handlers.Done()

	rt, ok := routes[r.URL.Path]
	if !ok {
		s.refuse(w, r, "", http.StatusNotFound, "no such path: POST /log or /boot", nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, r, "", http.StatusMethodNotAllowed, "method not allowed: POST only", nil)
		return
	}
	principal := ""
	if s.tokens != nil {
		name, ok := s.tokens.authenticate(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fleetgate"`)
			s.refuse(w, r, "", http.StatusUnauthorized, "missing or invalid bearer token", nil)
			return
		}
		principal = name
	}
	source, decode, ok := rt.pick(r.Header.Get("Content-Type"))
	if !ok {
		s.refuse(w, r, "", http.StatusUnsupportedMediaType, "Content-Type must be "+mediaSTS+" (STS) or "+mediaCSA+" (CSA)", nil)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		s.refuse(w, r, "", http.StatusUnsupportedMediaType, "Content-Encoding is not supported", nil)
		return
	}

	body, status, err := s.readBody(w, r)
	if err != nil {
		s.refuse(w, r, "", status, err.Error(), nil)
		return
	}
	received := time.Now()

	msgs, err := decode(body)
	if err != nil {
		s.refuse(w, r, "", http.StatusBadRequest, err.Error(), err)
		return
	}
	if len(msgs) == 0 {
		s.accept(w, r, "", 0)
		return
	}
	device := msgs[0].DeviceNo // one request, one terminal: the decoders give every message the same

	out := make([]router.Message, len(msgs))
	for i, m := range msgs {
		out[i] = router.Message{
			Source:    source,
			Topic:     s.cfg.Topic,
			ClientID:  m.DeviceNo,
			Principal: principal,
			Payload:   m.Payload,
			Received:  received,
		}
	}
	if err := s.ingest(device, out); err != nil {
		if unavailable(err) {
			w.Header().Set("Retry-After", retryAfterSeconds)
			s.refuse(w, r, device, http.StatusServiceUnavailable, "temporarily unable to store, retry later", err)
			return
		}
		s.refuse(w, r, device, http.StatusInternalServerError, "messages could not be stored", err)
		return
	}
	s.accept(w, r, device, len(msgs))
	latency := time.Since(received)
	for range msgs {
		s.obs.Acked(source, latency)
	}
}

// pick chooses the decoder by media type, ignoring parameters (charset).
func (rt route) pick(contentType string) (source string, decode decodeFunc, ok bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return "", nil, false
	}
	switch mt {
	case mediaSTS:
		return legacy.SourceSTS, rt.sts, true
	case mediaCSA:
		return legacy.SourceCSA, rt.csa, true
	}
	return "", nil, false
}

// readBody reads at most MaxBodyBytes of the body. On failure it returns the
// status to answer: 413 (too large), 408 (the read deadline passed) or 400.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	tooLarge := errors.New("body larger than telematics.max_body_bytes (" + strconv.FormatInt(s.cfg.MaxBodyBytes, 10) + ")")
	if r.ContentLength > s.cfg.MaxBodyBytes {
		// Refused without reading: close rather than drain a large body.
		w.Header().Set("Connection", "close")
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case err == nil:
		r.Body = http.NoBody // read: later answers may keep the connection (see refuse)
		return buf.Bytes(), 0, nil
	case errors.As(err, &maxErr):
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, errors.New("body not received within telematics.read_timeout")
	}
	return nil, http.StatusBadRequest, errors.New("reading body: " + err.Error())
}

// ingest waits for the device's turn and hands msgs to the Ingester, both
// within RequestTimeout.
func (s *Server) ingest(device string, msgs []router.Message) error {
	ctx, cancel := context.WithTimeout(s.ingestCtx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.order.lock(ctx, device); err != nil {
		return err
	}
	defer s.order.unlock(device)
	return s.ing.Ingest(ctx, msgs)
}

// unavailable reports whether an Ingest error means "not stored now, retry
// later" (503) rather than a failure (500).
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// accept answers 200 {"accepted": n}.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, device string, n int) {
	writeJSON(w, http.StatusOK, struct {
		Accepted int `json:"accepted"`
	}{n})
	s.obs.Responded(http.StatusOK)
	if ce := s.log.Check(zap.DebugLevel, "accepted"); ce != nil {
		ce.Write(zap.String("device", device), zap.String("path", r.URL.Path), zap.Int("status", http.StatusOK), zap.Int("messages", n))
	}
}

// errorBody is the JSON body of every error response. Field names the
// invalid field of a 400, when there is one.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// refuse answers an error status with a JSON body and logs one line: info
// for client errors, warn for 503, error for 500. cause, when given, is
// logged and, for a 400, gives the field.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, device string, status int, msg string, cause error) {
	early := r.Body != http.NoBody // refused before its body was read (readBody sets NoBody)
	if early {
		// Answer and close at once. net/http would otherwise read up to
		// 256 KiB of the unread body before answering, and again before
		// closing, so a client holding its body back waited for
		// telematics.read_timeout twice.
		w.Header().Set("Connection", "close")
		defer func() { _ = http.NewResponseController(w).SetReadDeadline(time.Now()) }()
	}
	body := errorBody{Error: msg}
	var fe *legacy.FieldError
	if status == http.StatusBadRequest && errors.As(cause, &fe) {
		body.Field = fe.Field
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	writeJSON(w, status, body)
	s.obs.Responded(status)

	level := zapcore.InfoLevel
	switch {
	case status >= 500 && status != http.StatusServiceUnavailable:
		level = zapcore.ErrorLevel
	case status == http.StatusServiceUnavailable:
		level = zapcore.WarnLevel
	}
	if ce := s.log.Check(level, "request refused"); ce != nil {
		fields := []zap.Field{
			zap.String("device", device),
			zap.String("path", r.URL.Path),
			zap.Int("status", status),
			zap.String("remote", r.RemoteAddr),
		}
		if cause != nil && status != http.StatusBadRequest {
			fields = append(fields, zap.Error(cause))
		} else {
			fields = append(fields, zap.String("error", msg))
		}
		ce.Write(fields...)
	}
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own small structs: cannot happen
		b = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client hung up: nothing left to tell it
}
