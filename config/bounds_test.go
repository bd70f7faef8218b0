package config

import (
	"strings"
	"testing"
	"time"
)

// TestBoundsKeys: the keys of the broker's bounds load from the environment
// like every other, and the queue budget must hold one packet.
func TestBoundsKeys(t *testing.T) {
	cfg, err := Load("", envOf(map[string]string{
		"FLEETGATE_MQTT_RETAINED_ENABLED":           "true",
		"FLEETGATE_MQTT_RETAINED_MAX_TOTAL_BYTES":   "1048576",
		"FLEETGATE_MQTT_MAX_SESSION_EXPIRY":         "30m",
		"FLEETGATE_MQTT_MAX_KEEP_ALIVE":             "5m",
		"FLEETGATE_MQTT_MAX_QUEUED_MESSAGES":        "50",
		"FLEETGATE_MQTT_WS_ALLOWED_ORIGINS":         "https://a.example,https://b.example",
		"FLEETGATE_LIMITS_MAX_QUEUED_BYTES":         "8388608",
		"FLEETGATE_LIMITS_MAX_QUEUED_MESSAGES":      "1000",
		"FLEETGATE_MQTT_RETAINED_MAX_MESSAGE_BYTES": "1024",
	}))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.MQTT
	if !m.Retained.Enabled || m.Retained.MaxTotalBytes != 1<<20 || m.Retained.MaxMessageBytes != 1024 || m.MaxSessionExpiry != 30*time.Minute ||
		m.MaxKeepAlive != 5*time.Minute || m.MaxQueuedMessages != 50 || len(m.WSAllowedOrigins) != 2 ||
		cfg.Limits.MaxQueuedBytes != 8<<20 || cfg.Limits.MaxQueuedMessages != 1000 {
		t.Fatalf("bounds keys not loaded: %+v %+v", m, cfg.Limits)
	}
	_, err = Load("", envOf(map[string]string{"FLEETGATE_LIMITS_MAX_QUEUED_BYTES": "100000"}))
	if err == nil || !strings.Contains(err.Error(), "limits.max_queued_bytes") {
		t.Fatalf("a queue budget below mqtt.max_packet_bytes: %v", err)
	}
	def := Default()
	if def.MQTT.Retained.Enabled || def.MQTT.MaxSessionExpiry != time.Hour || def.MQTT.MaxKeepAlive != 20*time.Minute {
		t.Fatalf("defaults: %+v", def.MQTT)
	}
}
