// Package schematest is a fake Confluent Schema Registry for tests: an
// httptest server answering the REST calls package schema makes, in the
// shapes the Confluent API documents (the answers, the error_code bodies,
// the omitted schemaType of Avro schemas). No real registry can be
// started on the development machines (see docs/rules.md), so tests use
// this one.
package schematest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Reference is a registered schema's reference to another.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

type version struct {
	id         int
	schemaType string // "" for Avro, as the API answers
	schema     string
	refs       []Reference
}

// Registry is a running fake registry. Its methods are safe for
// concurrent use.
type Registry struct {
	// URL is the API base, ending in Prefix.
	URL string
	// Requests counts the requests answered.
	Requests atomic.Int64

	mu       sync.Mutex
	subjects map[string][]version
	order    []string
	nextID   int
	user     string
	pass     string
	token    string
}

// Prefix is where the fake serves the API, as Apicurio does.
const Prefix = "/apis/ccompat/v7"

// New starts a fake registry on 127.0.0.1; it stops with the test.
func New(t testing.TB) *Registry {
	r := &Registry{subjects: map[string][]version{}, nextID: 1}
	srv := httptest.NewServer(http.StripPrefix(Prefix, http.HandlerFunc(r.serve)))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + Prefix
	return r
}

// RequireBasic makes the registry refuse requests without these
// credentials.
func (r *Registry) RequireBasic(user, pass string) {
	r.mu.Lock()
	r.user, r.pass = user, pass
	r.mu.Unlock()
}

// RequireBearer makes the registry refuse requests without this token.
func (r *Registry) RequireBearer(token string) {
	r.mu.Lock()
	r.token = token
	r.mu.Unlock()
}

// Register adds a version of subject and returns its schema id.
// schemaType is JSON, PROTOBUF or AVRO.
func (r *Registry) Register(subject, schemaType, schema string, refs ...Reference) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if schemaType == "AVRO" {
		schemaType = ""
	}
	if _, ok := r.subjects[subject]; !ok {
		r.order = append(r.order, subject)
	}
	id := r.nextID
	r.nextID++
	r.subjects[subject] = append(r.subjects[subject], version{id, schemaType, schema, refs})
	return id
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.authorized(req) {
		fail(w, http.StatusUnauthorized, 401, "Unauthorized")
		return
	}
	if req.Method != http.MethodGet {
		fail(w, http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed")
		return
	}
	parts := strings.Split(strings.Trim(req.URL.EscapedPath(), "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "subjects":
		answer(w, append([]string{}, r.order...))
	case len(parts) == 4 && parts[0] == "subjects" && parts[2] == "versions":
		subject, err := url.PathUnescape(parts[1])
		if err != nil {
			fail(w, http.StatusBadRequest, 400, err.Error())
			return
		}
		versions, ok := r.subjects[subject]
		if !ok {
			fail(w, http.StatusNotFound, 40401, fmt.Sprintf("Subject '%s' not found.", subject))
			return
		}
		n := len(versions)
		if parts[3] != "latest" {
			var err error
			if n, err = strconv.Atoi(parts[3]); err != nil || n < 1 || n > len(versions) {
				fail(w, http.StatusNotFound, 40402, "Version "+parts[3]+" not found.")
				return
			}
		}
		v := versions[n-1]
		answer(w, map[string]any{"subject": subject, "version": n, "id": v.id,
			"schemaType": omitEmpty(v.schemaType), "schema": v.schema, "references": v.refs})
	case len(parts) == 3 && parts[0] == "schemas" && parts[1] == "ids":
		id, _ := strconv.Atoi(parts[2])
		for _, vs := range r.subjects {
			for _, v := range vs {
				if v.id == id {
					answer(w, map[string]any{"schemaType": omitEmpty(v.schemaType), "schema": v.schema, "references": v.refs})
					return
				}
			}
		}
		fail(w, http.StatusNotFound, 40403, "Schema "+parts[2]+" not found")
	default:
		fail(w, http.StatusNotFound, 404, "HTTP 404 Not Found")
	}
}

func (r *Registry) authorized(req *http.Request) bool {
	switch {
	case r.token != "":
		return req.Header.Get("Authorization") == "Bearer "+r.token
	case r.user != "":
		u, p, ok := req.BasicAuth()
		return ok && u == r.user && p == r.pass
	}
	return true
}

// omitEmpty drops schemaType from the answer for Avro, as the API does.
func omitEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func answer(w http.ResponseWriter, v any) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			if x == nil {
				delete(m, k)
			}
		}
		if refs, ok := m["references"].([]Reference); ok && len(refs) == 0 {
			delete(m, "references")
		}
	}
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}
