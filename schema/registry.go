package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Registry is a client of the Confluent Schema Registry REST API, the
// subset fleetgate reads: GET /subjects, GET
// /subjects/{subject}/versions/{version|latest}, GET /schemas/ids/{id}.
// It is used when schemas load, never per record. Safe for concurrent use.
type Registry struct {
	base   string
	cfg    RegistryConfig
	client *http.Client
}

// Version is a registered schema: GET /subjects/{s}/versions/{v}.
type Version struct {
	Subject    string      `json:"subject"`
	ID         int         `json:"id"`
	Version    int         `json:"version"`
	SchemaType string      `json:"schemaType"` // "" in the API means AVRO
	Schema     string      `json:"schema"`
	References []Reference `json:"references"`
}

// Reference is a schema that another one uses.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// APIError is an error answer of the registry.
type APIError struct {
	Method, URL string
	Status      int
	// Code and Message are the registry's error_code and message.
	Code    int
	Message string
}

func (e *APIError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%s %s: HTTP %d: error %d: %s", e.Method, e.URL, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Message)
}

// NewRegistry returns a client of the registry cfg names (cfg must be
// valid). A nil client means http.DefaultClient.
func NewRegistry(cfg RegistryConfig, client *http.Client) *Registry {
	if client == nil {
		client = http.DefaultClient
	}
	return &Registry{base: strings.TrimRight(cfg.URL, "/"), cfg: cfg, client: client}
}

// Subjects lists the registered subjects.
func (r *Registry) Subjects(ctx context.Context) ([]string, error) {
	var s []string
	err := r.get(ctx, "/subjects", &s)
	return s, err
}

// Latest returns the latest version of subject.
func (r *Registry) Latest(ctx context.Context, subject string) (*Version, error) {
	return r.version(ctx, subject, "latest")
}

// Version returns one version of subject.
func (r *Registry) Version(ctx context.Context, subject string, version int) (*Version, error) {
	return r.version(ctx, subject, strconv.Itoa(version))
}

func (r *Registry) version(ctx context.Context, subject, version string) (*Version, error) {
	var v Version
	path := "/subjects/" + url.PathEscape(subject) + "/versions/" + version
	if err := r.get(ctx, path, &v); err != nil {
		return nil, err
	}
	if err := v.check(true); err != nil {
		return nil, fmt.Errorf("GET %s%s: the answer is not what the Confluent API returns: %w", r.base, path, err)
	}
	if v.Subject == "" {
		v.Subject = subject
	}
	v.SchemaType = schemaType(v.SchemaType)
	return &v, nil
}

// ByID returns the schema registered under id (its subject and version
// are not part of that answer).
func (r *Registry) ByID(ctx context.Context, id int) (*Version, error) {
	var v Version
	path := "/schemas/ids/" + strconv.Itoa(id)
	if err := r.get(ctx, path, &v); err != nil {
		return nil, err
	}
	if err := v.check(false); err != nil {
		return nil, fmt.Errorf("GET %s%s: the answer is not what the Confluent API returns: %w", r.base, path, err)
	}
	v.ID = id
	v.SchemaType = schemaType(v.SchemaType)
	return &v, nil
}

// check refuses an answer without what every registered schema has, so
// that a broken registry or a proxy's page fails the load, not a record:
// a positive id (withID: the versions answer carries it) and the schema.
func (v *Version) check(withID bool) error {
	switch {
	case withID && v.ID <= 0:
		return errors.New("no id")
	case v.ID > math.MaxInt32: // ids are 32-bit: the wire format has 4 bytes
		return fmt.Errorf("id %d is out of range", v.ID)
	case v.Schema == "":
		return errors.New("no schema")
	}
	return nil
}

func schemaType(t string) string {
	if t == "" {
		return "AVRO"
	}
	return strings.ToUpper(t)
}

// maxAnswer bounds a registry answer (a schema or a subject list).
const maxAnswer = 16 << 20

func (r *Registry) get(ctx context.Context, path string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	u := r.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	switch {
	case r.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+r.cfg.BearerToken)
	case r.cfg.Username != "":
		req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("GET %s: the answer is larger than %d bytes", u, maxAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Method: http.MethodGet, URL: u, Status: resp.StatusCode}
		var ans struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &ans) == nil && ans.Message != "" {
			e.Code, e.Message = ans.Code, ans.Message
		} else {
			e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		return e
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: the answer is not what the Confluent API returns: %w", u, err)
	}
	return nil
}
