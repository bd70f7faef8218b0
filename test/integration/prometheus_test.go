package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/config"
)

// prometheus is a real Prometheus server (the Debian package's binary) run
// as a plain process by a test, on 127.0.0.1, with its own storage.
type prometheus struct {
	url string // http://127.0.0.1:port
	cmd *exec.Cmd
}

// startPrometheus runs Prometheus scraping targets every second and
// evaluating ruleFiles every second; it is stopped by t.Cleanup.
func startPrometheus(t *testing.T, targets []string, ruleFiles ...string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install the Debian package prometheus (.ci/run does)")
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\nrule_files:\n")
	for _, f := range ruleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "  - %q\n", abs)
	}
	fmt.Fprintf(&cfg, "scrape_configs:\n  - job_name: fleetgate\n    static_configs:\n      - targets: [%s]\n", quoteAll(targets))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Prometheus cannot report the port it bound to: pick a free one, and
	// try again should another process take it first.
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		logFile := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
		logOut, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
		cmd.Stdout, cmd.Stderr = logOut, logOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); logOut.Close() }()
		p := &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
		deadline := time.Now().Add(30 * time.Second)
		for {
			select {
			case err := <-exited:
				out, _ := os.ReadFile(logFile)
				if attempt < 3 && strings.Contains(string(out), "address already in use") {
					goto retry
				}
				t.Fatalf("prometheus exited: %v\n%s", err, out)
			default:
			}
			if resp, err := http.Get(p.url + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					t.Cleanup(func() {
						_ = cmd.Process.Signal(syscall.SIGTERM)
						select {
						case <-exited:
						case <-time.After(10 * time.Second):
							_ = cmd.Process.Kill()
							<-exited
						}
						if t.Failed() {
							out, _ := os.ReadFile(logFile)
							t.Logf("prometheus log:\n%s", out)
						}
					})
					return p
				}
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("prometheus not ready on %s after 30s", p.url)
			}
			time.Sleep(100 * time.Millisecond)
		}
	retry:
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// promSample is one series of a query result: its labels and, for an
// instant query, one value; for a range query, every value.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

// api calls a Prometheus HTTP API endpoint and decodes its data; a query
// Prometheus cannot parse is an error naming it.
func (p *prometheus) api(path string, params url.Values, data any) error {
	resp, err := http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, params, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query runs an instant query and returns its vector.
func (p *prometheus) query(t *testing.T, expr string) []promSample {
	t.Helper()
	var d struct {
		Result []promSample `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d); err != nil {
		t.Fatal(err)
	}
	return d.Result
}

// value is the instant value of a single-series query, NaN when empty.
func (p *prometheus) value(t *testing.T, expr string) float64 {
	t.Helper()
	r := p.query(t, expr)
	if len(r) != 1 {
		return math.NaN()
	}
	v, _ := strconv.ParseFloat(r[0].Value[1].(string), 64)
	return v
}

// waitValue polls expr until it has a single value for which ok holds.
func (p *prometheus) waitValue(t *testing.T, expr string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := p.value(t, expr)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %s = %v after 30s", expr, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPrometheusScrapesGateway runs a real Prometheus over a running
// gateway, with the shipped alert rules, and checks after known traffic
// that it sees exactly what the gateway counted, that the first dropped
// message after a start fires FleetgateMessagesDropped (its series starts
// at zero, so increase() sees it), and that every query of the Grafana
// dashboard parses and the throughput, error, latency and connection panels
// show data.
func TestPrometheusScrapesGateway(t *testing.T) {
	began := time.Now()
	g := startAdminGateway(t, func(c *config.Config) {
		c.Rules = append(c.Rules, routerRule(`
name: no-dlq
sql: SELECT * FROM 'nodlq'
actions:
  - kafka: {topic: "message-${type}", key: "${device_no}"}
`))
	})
	prom := startPrometheus(t, []string{g.AdminAddr()}, "../../deploy/prometheus/alerts.yml")
	prom.waitValue(t, `up{job="fleetgate"}`, func(v float64) bool { return v == 1 })

	// Before any traffic, the series alerts take increase() of exist at 0.
	for _, expr := range []string{
		`fleetgate_messages_dropped_total{rule="no-dlq",reason="template_error"}`,
		`fleetgate_error_records_total{rule="device-reports",reason="eval_error"}`,
		`fleetgate_errors_total{reason="eval_error"}`,
		`fleetgate_mqtt_refusals_total{stage="connect",reason="client_id_invalid"}`,
		`fleetgate_mqtt_refusals_total{stage="publish",reason="not_authorized"}`,
	} {
		if v := prom.value(t, expr); v != 0 {
			t.Errorf("before traffic %s = %v; want a series at 0", expr, v)
		}
	}

	// Known traffic: 20 reports, one payload for the error topic, one that
	// a rule without an error action drops, one legacy STS upload.
	c := connect(t, g.MQTTAddr(), "prom-test")
	for i := range 20 {
		publish(t, c, "report", report("log", "D1", i))
	}
	publish(t, c, "report", []byte("not json"))
	publish(t, c, "nodlq", []byte("not json"))
	refuseEmptyClientID(t, g.MQTTAddr())
	if status, body, _ := post(t, httpsClient(g), "https://"+g.TelematicsAddr()+"/log", "application/json", sample(t, "sts-log.json")); status != 200 {
		t.Fatalf("legacy upload: %d %v", status, body)
	}

	// Prometheus holds exactly what the gateway counts.
	waitMetrics(t, g, map[string]float64{
		`fleetgate_messages_received_total{source="mqtt"}`:                                  22,
		`fleetgate_messages_dropped_total{reason="template_error",rule="no-dlq"}`:           1,
		`fleetgate_error_records_total{reason="eval_error",rule="device-reports"}`:          1,
		`fleetgate_ack_latency_seconds_count{source="mqtt"}`:                                22,
		`fleetgate_messages_dropped_total{reason="eval_error",rule="device-reports"}`:       0,
		`fleetgate_error_records_total{reason="unknown_topic",rule="no-dlq"}`:               0,
		`fleetgate_mqtt_connections`:                                                        1,
		`fleetgate_ready`:                                                                   1,
		`fleetgate_rule_reloads_total{result="failure"}`:                                    0,
		`fleetgate_errors_total{reason="eval_error"}`:                                       1,
		`fleetgate_errors_total{reason="template_error"}`:                                   1,
		`fleetgate_messages_unmatched_total{source="mqtt"}`:                                 0,
		`fleetgate_telematics_responses_total{code="200"}`:                                  1,
		`fleetgate_inflight_messages`:                                                       0,
		`fleetgate_kafka_reachable`:                                                         1,
		`fleetgate_mqtt_auth_failures_total`:                                                1,
		`fleetgate_mqtt_refusals_total{reason="client_id_invalid",stage="connect"}`:         1,
		`fleetgate_mqtt_refusals_total{reason="bad_password",stage="connect"}`:              0,
		`fleetgate_mqtt_connects_total`:                                                     1,
		`fleetgate_messages_dropped_total{reason="record_too_large",rule="device-reports"}`: 0,
	})
	got, _ := scrape(t, g)
	sts := got[`fleetgate_messages_received_total{source="sts"}`]
	if sts == 0 {
		t.Fatal("the legacy upload was not counted")
	}
	prom.waitValue(t, `fleetgate_messages_received_total{source="mqtt"}`, func(v float64) bool { return v == 22 })
	prom.waitValue(t, `fleetgate_ack_latency_seconds_count{source="mqtt"}`, func(v float64) bool { return v == 22 })
	prom.waitValue(t, `fleetgate_messages_received_total{source="sts"}`, func(v float64) bool { return v == sts })
	produced := 0.0
	for k, v := range got {
		if strings.HasPrefix(k, "fleetgate_records_produced_total{") {
			produced += v
		}
	}
	prom.waitValue(t, `sum(fleetgate_records_produced_total)`, func(v float64) bool { return v == produced })

	// The first drop and the first error record after the start are
	// increases (they would not be if their series were born at 1).
	prom.waitValue(t, `increase(fleetgate_messages_dropped_total{rule="no-dlq",reason="template_error"}[1m])`, func(v float64) bool { return v > 0 })
	prom.waitValue(t, `increase(fleetgate_error_records_total{rule="device-reports",reason="eval_error"}[1m])`, func(v float64) bool { return v > 0 })
	// The shipped alert fires on it, live.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var d struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := prom.api("/api/v1/alerts", nil, &d); err != nil {
			t.Fatal(err)
		}
		var firing []string
		found := false
		for _, a := range d.Alerts {
			firing = append(firing, a.Labels["alertname"]+"/"+a.State)
			if a.Labels["alertname"] == "FleetgateMessagesDropped" && a.State == "firing" &&
				a.Labels["rule"] == "no-dlq" && a.Labels["reason"] == "template_error" {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FleetgateMessagesDropped{rule=no-dlq,reason=template_error} is not firing 30s after the drop; alerts: %v", firing)
		}
		time.Sleep(250 * time.Millisecond)
	}

	checkDashboard(t, prom, began)
}

// grafanaVar matches Grafana's variables in a query: $name, ${name}, and
// the built-in $__rate_interval and $__interval.
var grafanaVar = regexp.MustCompile(`\$\{?(__rate_interval|__interval|[a-z]+)\}?`)

// checkDashboard sends every query of the shipped dashboard to prom (a
// query it cannot parse fails), and checks that the panels on-call reads
// first show data over the test's traffic.
func checkDashboard(t *testing.T, prom *prometheus, since time.Time) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/fleetgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	// Grafana would give $__rate_interval at least four scrape intervals.
	expand := func(expr string) string {
		return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
			switch name := strings.Trim(v, "${}"); name {
			case "__rate_interval", "__interval":
				return "10s"
			default:
				return ".*" // $instance, $job: All
			}
		})
	}
	withData := map[string]bool{
		// throughput
		"Messages received by source": false, "Records produced by topic": false, "Messages acknowledged by source": false,
		// errors
		"Errors by reason": false, "Error-action records and drops": false,
		// latency
		"Receive-to-ack latency": false, "Kafka produce latency": false, "Ack latency p99": false,
		// connections and refusals
		"MQTT connections": false, "MQTT refusals by stage and reason": false,
	}
	start, end := strconv.FormatInt(since.Unix()-5, 10), strconv.FormatInt(time.Now().Unix()+1, 10)
	queries := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := expand(tg.Expr)
			queries++
			var r struct {
				Result []promSample `json:"result"`
			}
			if err := prom.api("/api/v1/query_range", url.Values{"query": {expr}, "start": {start}, "end": {end}, "step": {"1"}}, &r); err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			if _, want := withData[p.Title]; want && hasNumber(r.Result) {
				withData[p.Title] = true
			}
		}
	}
	if queries < 20 {
		t.Errorf("the dashboard has %d queries; the panels moved?", queries)
	}
	for title, ok := range withData {
		if !ok {
			t.Errorf("dashboard panel %q shows no data after the test's traffic", title)
		}
	}
}

// refuseEmptyClientID sends an MQTT 3.1.1 CONNECT with an empty client id
// and clean session 0, which the broker refuses (CONNACK 0x02) and counts as
// fleetgate_mqtt_refusals_total{stage="connect",reason="client_id_invalid"}:
// a refusal that needs no authentication configured.
func refuseEmptyClientID(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// CONNECT, remaining length 12: "MQTT", level 4, flags 0, keep-alive 60, client id "".
	if _, err := conn.Write([]byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 60, 0, 0}); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0x02 {
		t.Fatalf("CONNECT with an empty client id and clean session 0: CONNACK % x (%v), want 20 02 00 02", ack, err)
	}
}

func hasNumber(ss []promSample) bool {
	for _, s := range ss {
		for _, v := range s.Values {
			if f, err := strconv.ParseFloat(v[1].(string), 64); err == nil && !math.IsNaN(f) {
				return true
			}
		}
	}
	return false
}
