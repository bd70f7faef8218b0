package schema_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/schema"
	"github.com/fleetgate/fleetgate/schema/schematest"
)

func registryConfig(url string) schema.Config {
	c := schema.DefaultConfig()
	c.Registry.URL = url
	c.Registry.Timeout = 5 * time.Second
	return c
}

func TestRegistryLoad(t *testing.T) {
	reg := schematest.New(t)
	reg.RequireBasic("fleet", "s3cret")
	reg.Register("message-log-value", "JSON", `{"type":"object","required":["level"]}`)
	id := reg.Register("message-log-value", "JSON", `{"type":"object","required":["device_no"]}`)
	reg.Register("message-gps-value", "AVRO", `{"type":"record","name":"gps","fields":[]}`)
	commonID := reg.Register("common", "JSON", `{"$defs":{"pos":{"type":"object","required":["lat"]}}}`)
	_ = commonID
	refID := reg.Register("message-kinematic-value", "JSON", `{"type":"object","properties":{"pos":{"$ref":"common.json#/$defs/pos"}}}`,
		schematest.Reference{Name: "common.json", Subject: "common", Version: 1})

	cfg := registryConfig(reg.URL)
	cfg.Registry.Username, cfg.Registry.Password = "fleet", "s3cret"
	set, err := schema.Load(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "common,message-kinematic-value,message-log-value" {
		t.Fatalf("names = %s (the Avro subject must be skipped)", got)
	}
	log, _ := set.Get("message-log-value")
	if log.ID != id || log.Version != 2 {
		t.Errorf("latest = id %d version %d, want id %d version 2", log.ID, log.Version, id)
	}
	if err := log.Validate([]byte(`{"device_no":"1"}`)); err != nil {
		t.Errorf("valid record: %v", err)
	}
	var ve *schema.ValidationError
	if err := log.Validate([]byte(`{"level":"info"}`)); !errors.As(err, &ve) || ve.Keyword != "required" {
		t.Errorf("invalid record: %v", err)
	}
	kin, _ := set.Get("message-kinematic-value")
	if kin.ID != refID {
		t.Errorf("kinematic id %d, want %d", kin.ID, refID)
	}
	if err := kin.Validate([]byte(`{"pos":{}}`)); !errors.As(err, &ve) || ve.Pointer != "/pos" || ve.Keyword != "required" {
		t.Errorf("through a reference: %v", err)
	}

	// By id, as GET /schemas/ids/{id} answers it.
	v, err := schema.NewRegistry(cfg.Registry, nil).ByID(t.Context(), id)
	if err != nil || v.SchemaType != "JSON" || !strings.Contains(v.Schema, "device_no") {
		t.Fatalf("ByID = %+v, %v", v, err)
	}
	if _, err := schema.NewRegistry(cfg.Registry, nil).ByID(t.Context(), 999); !strings.Contains(fmtErr(err), "error 40403") {
		t.Errorf("ByID(999) = %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestRegistryErrors(t *testing.T) {
	reg := schematest.New(t)
	reg.RequireBearer("tok")
	reg.Register("message-log-value", "JSON", `{"type":"object"}`)
	reg.Register("message-gps-value", "PROTOBUF", `syntax = "proto3";`)
	reg.Register("broken-value", "JSON", `{"type":"objekt"}`)

	cfg := registryConfig(reg.URL)
	cfg.Registry.BearerToken = "wrong"
	_, err := schema.Load(t.Context(), cfg, nil)
	var api *schema.APIError
	if !errors.As(err, &api) || api.Status != 401 || !strings.HasPrefix(err.Error(), "schemas.registry: GET "+reg.URL+"/subjects: HTTP 401") {
		t.Fatalf("wrong token: %v", err)
	}

	cfg.Registry.BearerToken = "tok"
	_, err = schema.Load(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `schemas.registry: subject "broken-value" version 1 (id 3) does not compile`) {
		t.Fatalf("broken schema: %v", err)
	}

	cfg.Registry.Subjects = []string{"message-log-value", "message-gps-value"}
	_, err = schema.Load(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `schemas.registry.subjects: "message-gps-value" is a PROTOBUF schema`) {
		t.Fatalf("named protobuf subject: %v", err)
	}

	cfg.Registry.Subjects = []string{"message-log-value", "nope"}
	_, err = schema.Load(t.Context(), cfg, nil)
	if !errors.As(err, &api) || api.Code != 40401 {
		t.Fatalf("unknown subject: %v", err)
	}

	cfg.Registry.Subjects = []string{"message-log-value"}
	set, err := schema.Load(t.Context(), cfg, nil)
	if err != nil || set.Len() != 1 {
		t.Fatalf("named subject: %v, %v", set.Names(), err)
	}

	// A subject also in schemas.dir is ambiguous.
	cfg.Dir = writeDir(t, map[string]string{"message-log-value.json": `{}`})
	_, err = schema.Load(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `schemas: "message-log-value" is both a file of schemas.dir and a registry subject`) {
		t.Fatalf("collision: %v", err)
	}

	// A registry that is not there.
	_, err = schema.Load(t.Context(), registryConfig("http://127.0.0.1:1"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "schemas.registry: GET http://127.0.0.1:1/subjects: ") {
		t.Fatalf("no registry: %v", err)
	}
}
