package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// kst is Asia/Seoul, the zone CSA terminals write dt in. Korea has had no
// daylight saving time since 1988, so a fixed zone needs no tz database.
var kst = time.FixedZone("KST", 9*3600)

// httpLoad is the legacy HTTPS side of a run: STS terminals POSTing JSON and
// CSA terminals POSTing forms, one request at a time each, over keep-alive
// TLS connections.
type httpLoad struct {
	cfg       *runConfig
	pace      *pacer
	stats     *sourceStats
	client    *http.Client
	baseURL   string
	csaBaseMS int64 // CSA request n is sent with dt = csaBaseMS + n s
	devices   []*legacyDevice
	// senderDone is called once per terminal when it has made its last
	// request (which may still be retried).
	senderDone func()
}

// legacyDevice is one STS or CSA terminal, driven by its own goroutine.
type legacyDevice struct {
	index  int
	id     string
	csa    bool
	seq    int64
	v      *vehicle
	rng    *rand.Rand
	ledger *ledger
}

func newHTTPLoad(cfg *runConfig, pace *pacer, started time.Time) *httpLoad {
	n := cfg.stsDevices + cfg.csaDevices
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the gateway's default certificate is self-signed
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n, // one kept-alive connection per terminal
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	l := &httpLoad{
		cfg: cfg, pace: pace, stats: newSourceStats("https"),
		client:    &http.Client{Transport: tr, Timeout: cfg.httpTimeout},
		baseURL:   "https://" + cfg.httpsAddr,
		csaBaseMS: started.Truncate(time.Second).UnixMilli(),
	}
	seedRNG := rand.New(rand.NewPCG(cfg.seed, 1<<40))
	for i := 0; i < n; i++ {
		d := &legacyDevice{index: i, rng: rand.New(rand.NewPCG(cfg.seed, 1<<40+uint64(i)+1)), v: newVehicle(seedRNG)}
		if i < cfg.stsDevices {
			d.id = fmt.Sprintf("%sSTS-%08d", cfg.prefix, cfg.deviceOffset+i+1)
			d.ledger = newLedger(d.id, "sts", len(cfg.mix.types))
		} else {
			d.csa = true
			d.id = fmt.Sprintf("%sCSA%07d", cfg.prefix, cfg.deviceOffset+i-cfg.stsDevices+1)
			d.ledger = newLedger(d.id, "csa", len(cfg.mix.types))
		}
		l.devices = append(l.devices, d)
	}
	return l
}

// run runs every terminal until it is done.
func (l *httpLoad) run(genCtx, hardCtx context.Context) {
	var wg sync.WaitGroup
	for _, d := range l.devices {
		done := sync.OnceFunc(func() {
			if l.senderDone != nil {
				l.senderDone()
			}
		})
		wg.Go(func() {
			defer done()
			l.runDevice(genCtx, hardCtx, d, done)
		})
	}
	wg.Wait()
	l.client.CloseIdleConnections()
}

// ledgers returns the terminals' ledgers. Only after run.
func (l *httpLoad) ledgers() []*ledger {
	out := make([]*ledger, len(l.devices))
	for i, d := range l.devices {
		out[i] = d.ledger
	}
	return out
}

// legacyRequest is one request a terminal sends, and the report types (mix
// indexes) the gateway makes of it, all carrying the request's seq.
type legacyRequest struct {
	path        string
	contentType string
	body        []byte
	types       []int
}

// runDevice sends a terminal's requests one after the other. A request that
// gets 503 (or 429, 5xx, or no answer) is sent again, unchanged, after
// Retry-After or a second; other answers than 200 fail it for good.
func (l *httpLoad) runDevice(genCtx, hardCtx context.Context, d *legacyDevice, doneSending func()) {
	st := l.stats
	for genCtx.Err() == nil && (l.cfg.messages == 0 || d.seq < l.cfg.messages) {
		if l.pace.Wait(genCtx) != nil {
			return
		}
		d.seq++
		d.v.step(d.rng)
		var req legacyRequest
		if d.csa {
			req = csaRequest(l.cfg.mix, d, l.csaBaseMS)
		} else {
			req = stsRequest(l.cfg.mix, l.cfg.runID, d, time.Now().UnixMilli())
		}
		if d.seq == l.cfg.messages {
			doneSending()
		}
		acked := false
		attempts := 0
		for {
			attempts++
			if attempts > 1 {
				st.resent.Add(1)
			}
			st.sent.Add(1)
			st.inflight.Add(1)
			start := time.Now()
			wait, ok, permanent := l.post(hardCtx, req)
			st.inflight.Add(-1)
			if ok {
				st.ack(d.index, time.Since(start), len(req.types))
				acked = true
				break
			}
			st.failed.Add(1)
			if permanent || sleepCtx(hardCtx, wait) != nil {
				break
			}
		}
		for _, t := range req.types {
			d.ledger.settle(t, d.seq, acked, attempts)
		}
		if !acked {
			st.unacked.Add(1)
		}
	}
}

// post sends one request. ok: 200. Otherwise wait is how long to wait before
// sending it again, or permanent says not to.
func (l *httpLoad) post(ctx context.Context, r legacyRequest) (wait time.Duration, ok, permanent bool) {
	st := l.stats
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.baseURL+r.path, bytes.NewReader(r.body))
	if err != nil {
		st.noteError(err.Error())
		return 0, false, true
	}
	req.Header.Set("Content-Type", r.contentType)
	resp, err := l.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			st.connFails.Add(1)
		}
		if ctx.Err() == nil {
			st.noteError(r.path + ": " + errText(err))
		}
		return time.Second, false, false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, resp.Body) // read to the end so the connection is reused
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return 0, true, false
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		st.noteError(resp.Status)
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()), false, false
	case resp.StatusCode >= 500:
		st.noteError(fmt.Sprintf("%s %s", resp.Status, bytes.TrimSpace(body)))
		return time.Second, false, false
	default:
		st.noteError(fmt.Sprintf("%s %s %s", r.path, resp.Status, bytes.TrimSpace(body)))
		return 0, false, true
	}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); missing
// or unreadable means one second, and the wait is capped at a minute.
func retryAfter(h string, now time.Time) time.Duration {
	d := time.Second
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Minute)
}

// stsKind is the STS record kind that becomes report type typ ("status"
// becomes "log").
func stsKind(typ string) string {
	if typ == typeLog {
		return "status"
	}
	return typ
}

// stsRequest builds an STS terminal's next request (SPEC 2.2): /boot when the
// mix draws boot, otherwise /log with the drawn type's record and up to two
// more of other types, at most one record per type (a type's topic then gets
// each seq once).
func stsRequest(m mix, run string, d *legacyDevice, nowMS int64) legacyRequest {
	first := m.pick(d.rng)
	b := make([]byte, 0, 512)
	b = append(b, `{"device_no":`...)
	b = strconv.AppendQuote(b, d.id)
	b = append(b, `,"fw":"sts-2.4.1","sent_at":`...)
	b = strconv.AppendInt(b, nowMS, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, d.seq, 10)
	if m.types[first] == typeBoot {
		b = append(b, `,"reason":`...)
		b = strconv.AppendQuote(b, bootReasons[d.rng.IntN(len(bootReasons))])
		b = append(b, `,"uptime_s":0}`...)
		return legacyRequest{path: "/boot", contentType: "application/json", body: b, types: []int{first}}
	}
	types := []int{first}
	for range 2 {
		if d.rng.IntN(2) == 0 {
			continue
		}
		t := m.pick(d.rng)
		if m.types[t] != typeBoot && !containsInt(types, t) {
			types = append(types, t)
		}
	}
	b = append(b, `,"records":[`...)
	for i, t := range types {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSTSRecord(b, m.types[t], run, nowMS-int64(100*(len(types)-i)), d.v, d.rng)
	}
	b = append(b, "]}"...)
	return legacyRequest{path: "/log", contentType: "application/json", body: b, types: types}
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// appendSTSRecord appends one STS record in the terminal's own field names.
func appendSTSRecord(b []byte, typ, run string, ts int64, v *vehicle, r *rand.Rand) []byte {
	b = append(b, `{"kind":`...)
	b = strconv.AppendQuote(b, stsKind(typ))
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	if run != "" {
		b = append(b, `,"run":`...)
		b = strconv.AppendQuote(b, run)
	}
	switch typ {
	case typeGPS:
		b = append(b, `,"lat":`...)
		b = strconv.AppendFloat(b, v.lat, 'f', 6, 64)
		b = append(b, `,"lng":`...)
		b = strconv.AppendFloat(b, v.lng, 'f', 6, 64)
		b = append(b, `,"speed":`...)
		b = strconv.AppendFloat(b, v.speed, 'f', 1, 64)
		b = append(b, `,"heading":`...)
		b = strconv.AppendInt(b, int64(v.heading), 10)
		b = append(b, `,"sats":`...)
		b = strconv.AppendInt(b, int64(v.satellites), 10)
	case typeKinematic:
		b = append(b, `,"hz":10,"samples":[`...)
		for i := range 5 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendFloat(b, r.NormFloat64()*0.05, 'f', 2, 64)
			b = append(b, ',')
			b = strconv.AppendFloat(b, r.NormFloat64()*0.05, 'f', 2, 64)
			b = append(b, ',')
			b = strconv.AppendFloat(b, 1+r.NormFloat64()*0.02, 'f', 2, 64)
			b = append(b, ']')
		}
		b = append(b, ']')
	case typeADAS:
		b = append(b, `,"event":`...)
		b = strconv.AppendQuote(b, adasEvents[r.IntN(len(adasEvents))])
		b = append(b, `,"level":`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(3)), 10)
	case typeLog:
		b = append(b, `,"ignition":`...)
		b = strconv.AppendBool(b, v.ignition)
		b = append(b, `,"battery_v":`...)
		b = strconv.AppendFloat(b, v.battery, 'f', 1, 64)
		b = append(b, `,"odometer_km":`...)
		b = strconv.AppendFloat(b, v.odometer, 'f', 1, 64)
		b = append(b, `,"fuel_pct":`...)
		b = strconv.AppendInt(b, int64(v.fuel), 10)
		b = append(b, `,"door_locked":`...)
		b = strconv.AppendBool(b, v.locked)
	default:
		b = append(b, `,"value":`...)
		b = strconv.AppendInt(b, int64(r.IntN(1000)), 10)
	}
	return append(b, '}')
}

// csaRequest builds a CSA terminal's next request (SPEC 2.2): /boot when the
// mix draws boot, otherwise /log with the GPS keys (when the mix has gps) and
// the vehicle keys (when it has log). The form has no seq: dt carries it, as
// csaBaseMS + seq seconds, and verify reads it back from ts.
func csaRequest(m mix, d *legacyDevice, csaBaseMS int64) legacyRequest {
	dt := time.UnixMilli(csaBaseMS).Add(time.Duration(d.seq) * time.Second).In(kst).Format("20060102150405")
	b := make([]byte, 0, 160)
	b = append(b, "tid="...)
	b = append(b, url.QueryEscape(d.id)...)
	b = append(b, "&dt="...)
	b = append(b, dt...)
	first := m.pick(d.rng)
	if m.types[first] == typeBoot {
		b = append(b, "&rsn="...)
		b = strconv.AppendInt(b, int64(1+d.rng.IntN(4)), 10)
		b = append(b, "&fw=csa-1.0.9"...)
		return legacyRequest{path: "/boot", contentType: "application/x-www-form-urlencoded", body: b, types: []int{first}}
	}
	var types []int
	v := d.v
	if t := m.index(typeGPS); t >= 0 {
		types = append(types, t)
		b = append(b, "&lat="...)
		b = strconv.AppendInt(b, int64(v.lat*1e6), 10)
		b = append(b, "&lon="...)
		b = strconv.AppendInt(b, int64(v.lng*1e6), 10)
		b = append(b, "&spd="...)
		b = strconv.AppendInt(b, int64(v.speed), 10)
		b = append(b, "&dir="...)
		b = strconv.AppendInt(b, int64(v.heading), 10)
		b = append(b, "&sat="...)
		b = strconv.AppendInt(b, int64(v.satellites), 10)
	}
	if t := m.index(typeLog); t >= 0 {
		types = append(types, t)
		b = append(b, "&ign="...)
		b = append(b, boolDigit(v.ignition))
		b = append(b, "&bat="...)
		b = strconv.AppendInt(b, int64(v.battery*10), 10)
		b = append(b, "&odo="...)
		b = strconv.AppendInt(b, int64(v.odometer*10), 10)
		b = append(b, "&fuel="...)
		b = strconv.AppendInt(b, int64(v.fuel), 10)
		b = append(b, "&lock="...)
		b = append(b, boolDigit(v.locked))
	}
	return legacyRequest{path: "/log", contentType: "application/x-www-form-urlencoded", body: b, types: types}
}

func boolDigit(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}
