package integration

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
)

// TestLegacyBodiesCountUnderLimits: a legacy request body takes its room
// under limits.* from its Content-Length before it is read (the in-flight
// bytes gauge shows it while the body has not arrived), so a second body
// that does not fit beside it is refused at once with 503 and Retry-After;
// once the first is stored its room is given back.
func TestLegacyBodiesCountUnderLimits(t *testing.T) {
	g := startAdminGateway(t, func(c *config.Config) {
		c.MQTT.MaxPacketBytes = 2048
		c.Telematics.MaxBodyBytes = 2048
		c.Limits.MaxInflightBytes = 2048
	})
	tlsCfg := pinnedClient(g.TelematicsCertFingerprint()).Transport.(*http.Transport).TLSClientConfig
	conn, err := tls.Dial("tcp", g.TelematicsAddr(), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	record := `{"kind":"gps","ts":1763779999000,"lat":37.5,"lng":126.9}`
	body := `{"device_no":"STS-1","sent_at":1763780000123,"records":[` + record + `]}`
	body += strings.Repeat(" ", 1500-len(body))
	if _, err := io.WriteString(conn, "POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, g, map[string]float64{"fleetgate_inflight_bytes": 1500, "fleetgate_inflight_messages": 0})

	second := `{"device_no":"STS-2","sent_at":1763780000123,"records":[` + record + `]}`
	second += strings.Repeat(" ", 1000-len(second))
	status, resp, header := post(t, httpsClient(g), "https://"+g.TelematicsAddr()+"/log", "application/json", []byte(second))
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || resp["error"] == nil {
		t.Fatalf("second body beside the first: %d %v %v; want 503 with Retry-After", status, resp, header)
	}

	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	first, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || first.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", first, err)
	}
	waitMetrics(t, g, map[string]float64{"fleetgate_inflight_bytes": 0, `fleetgate_errors_total{reason="inflight_limit"}`: 1})
	if status, resp, _ := post(t, httpsClient(g), "https://"+g.TelematicsAddr()+"/log", "application/json", []byte(second)); status != http.StatusOK {
		t.Fatalf("second body alone: %d %v", status, resp)
	}
	if recs := consume(t, g.KafkaBrokers(), "message-gps", 2); len(recs) != 2 {
		t.Fatalf("message-gps holds %d records, want 2", len(recs))
	}
}
