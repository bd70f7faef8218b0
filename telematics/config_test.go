package telematics

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Listen != ":8443" || c.Topic != "report" || c.MaxBodyBytes != 1048576 || c.TLS.CertFile != "" || c.Auth.TokensFile != "" {
		t.Fatalf("defaults differ from SPEC section 5: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"empty listen", func(c *Config) { c.Listen = "" }, "telematics.listen must not be empty"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "telematics.listen"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, "telematics.tls.cert_file and telematics.tls.key_file"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "k.pem" }, "telematics.tls.cert_file and telematics.tls.key_file"},
		{"empty topic", func(c *Config) { c.Topic = "" }, "telematics.topic must not be empty"},
		{"wildcard topic", func(c *Config) { c.Topic = "report/#" }, "telematics.topic"},
		{"zero max body", func(c *Config) { c.MaxBodyBytes = 0 }, "telematics.max_body_bytes must be > 0"},
		{"negative max body", func(c *Config) { c.MaxBodyBytes = -1 }, "telematics.max_body_bytes must be > 0"},
		{"zero read timeout", func(c *Config) { c.ReadTimeout = 0 }, "telematics.read_timeout must be > 0"},
		{"zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, "telematics.write_timeout must be > 0"},
		{"zero idle timeout", func(c *Config) { c.IdleTimeout = 0 }, "telematics.idle_timeout must be > 0"},
		{"zero request timeout", func(c *Config) { c.RequestTimeout = 0 }, "telematics.request_timeout must be > 0"},
		{"write timeout too short", func(c *Config) { c.WriteTimeout = 60 * time.Second }, "telematics.write_timeout (1m0s) must be greater than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if _, err := New(c, &fakeIngester{}, nil); err == nil {
				t.Fatal("New accepted an invalid Config")
			}
		})
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("zero Config valid")
	}
	for _, key := range []string{"listen", "topic", "max_body_bytes", "read_timeout", "write_timeout", "idle_timeout", "request_timeout"} {
		if !strings.Contains(err.Error(), "telematics."+key) {
			t.Errorf("error does not name telematics.%s: %v", key, err)
		}
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	c := DefaultConfig()
	if got := c.readHeaderTimeout(); got != 10*time.Second {
		t.Errorf("header timeout %v with read_timeout 30s", got)
	}
	c.ReadTimeout = time.Second
	if got := c.readHeaderTimeout(); got != time.Second {
		t.Errorf("header timeout %v with read_timeout 1s", got)
	}
}
