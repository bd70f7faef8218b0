package legacy_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetgate/fleetgate/legacy"
)

// TestDecodeCSALogSample checks the sample against the two messages that
// shared/samples/legacy/README.md says it must become.
func TestDecodeCSALogSample(t *testing.T) {
	body, err := os.ReadFile("testdata/csa-log.form")
	if err != nil {
		t.Fatal(err)
	}
	got, err := legacy.DecodeCSALog(body)
	if err != nil {
		t.Fatal(err)
	}
	assertMessages(t, got,
		`{"type":"gps","device_no":"CSA0000042","ts":1795315986000,"source":"csa","lat":37.5665,"lng":126.978,"speed_kmh":42,"heading_deg":180,"satellites":9}`,
		`{"type":"log","device_no":"CSA0000042","ts":1795315986000,"source":"csa","ignition":true,"battery_v":12.6,"odometer_km":123456.7,"fuel_pct":55,"door_locked":true}`,
	)
	if got[0].DeviceNo != "CSA0000042" || got[0].Type != "gps" || got[1].Type != "log" {
		t.Fatalf("DeviceNo/Type = %q/%q, %q", got[0].DeviceNo, got[0].Type, got[1].Type)
	}
}

func TestDecodeCSALog(t *testing.T) {
	const head = "tid=CSA1&dt=20261122115306&"
	const ts = `"device_no":"CSA1","ts":1795315986000,"source":"csa"`
	tests := []struct {
		name string
		body string
		want []string
	}{
		{
			name: "gps only",
			body: head + "lat=37566500&lon=126978000",
			want: []string{`{"type":"gps",` + ts + `,"lat":37.5665,"lng":126.978}`},
		},
		{
			name: "log only",
			body: head + "ign=0&lock=0",
			want: []string{`{"type":"log",` + ts + `,"ignition":false,"door_locked":false}`},
		},
		{
			name: "single log field",
			body: head + "fuel=0",
			want: []string{`{"type":"log",` + ts + `,"fuel_pct":0}`},
		},
		{
			name: "exact decimal conversions",
			body: head + "lat=-500&lon=-180000000&bat=120&odo=5",
			want: []string{
				`{"type":"gps",` + ts + `,"lat":-0.0005,"lng":-180}`,
				`{"type":"log",` + ts + `,"battery_v":12,"odometer_km":0.5}`,
			},
		},
		{
			name: "limits and zero",
			body: head + "lat=90000000&lon=0&spd=0&dir=0&sat=0&bat=0&odo=0",
			want: []string{
				`{"type":"gps",` + ts + `,"lat":90,"lng":0,"speed_kmh":0,"heading_deg":0,"satellites":0}`,
				`{"type":"log",` + ts + `,"battery_v":0,"odometer_km":0}`,
			},
		},
		{
			name: "key order does not matter, output order is fixed",
			body: "lock=1&odo=1234567&lat=1&tid=CSA1&lon=2&dt=20261122115306&bat=126",
			want: []string{
				`{"type":"gps",` + ts + `,"lat":0.000001,"lng":0.000002}`,
				`{"type":"log",` + ts + `,"battery_v":12.6,"odometer_km":123456.7,"door_locked":true}`,
			},
		},
		{
			name: "percent-encoding and trailing newline",
			body: "tid=CSA%31&dt=20261122115306&&fuel=5%35\r\n",
			want: []string{`{"type":"log",` + ts + `,"fuel_pct":55}`},
		},
		{
			name: "leading zeros",
			body: head + "lat=037566500&lon=0126978000&fuel=007",
			want: []string{
				`{"type":"gps",` + ts + `,"lat":37.5665,"lng":126.978}`,
				`{"type":"log",` + ts + `,"fuel_pct":7}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := legacy.DecodeCSALog([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			assertMessages(t, got, tt.want...)
		})
	}
}

// TestCSAExactDecimals checks the printed bytes, not just the values: a
// float64 division would print 37.566500000000005 or 12.600000000000001.
func TestCSAExactDecimals(t *testing.T) {
	for _, tt := range []struct{ lat, lon, bat, odo, wantGPS, wantLog string }{
		{"37566500", "126978000", "126", "1234567", `"lat":37.5665,"lng":126.978}`, `"battery_v":12.6,"odometer_km":123456.7}`},
		{"-33868820", "151209296", "3", "10", `"lat":-33.86882,"lng":151.209296}`, `"battery_v":0.3,"odometer_km":1}`},
		{"1", "-1", "9223372036854775807", "100", `"lat":0.000001,"lng":-0.000001}`, `"battery_v":922337203685477580.7,"odometer_km":10}`},
	} {
		body := "tid=T&dt=20261122115306&lat=" + tt.lat + "&lon=" + tt.lon + "&bat=" + tt.bat + "&odo=" + tt.odo
		got, err := legacy.DecodeCSALog([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(got[0].Payload), tt.wantGPS) || !strings.HasSuffix(string(got[1].Payload), tt.wantLog) {
			t.Errorf("%s:\n%s\n%s", body, got[0].Payload, got[1].Payload)
		}
	}
}

func TestCSADateTime(t *testing.T) {
	for _, tt := range []struct {
		dt   string
		want time.Time
	}{
		{"20261122115306", time.Date(2026, 11, 22, 2, 53, 6, 0, time.UTC)},
		{"20260101000000", time.Date(2025, 12, 31, 15, 0, 0, 0, time.UTC)},
		{"20240229235959", time.Date(2024, 2, 29, 14, 59, 59, 0, time.UTC)},
		{"19700101090000", time.Unix(0, 0)},
		{"20000701120000", time.Date(2000, 7, 1, 3, 0, 0, 0, time.UTC)}, // no summer time
	} {
		got, err := legacy.DecodeCSABoot([]byte("tid=T&rsn=1&fw=f&dt=" + tt.dt))
		if err != nil {
			t.Fatalf("%s: %v", tt.dt, err)
		}
		want := `"ts":` + strconv.FormatInt(tt.want.UnixMilli(), 10) + `,`
		if !strings.Contains(string(got[0].Payload), want) {
			t.Errorf("dt %s: %s, want %s", tt.dt, got[0].Payload, want)
		}
	}
}

func TestDecodeCSALogErrors(t *testing.T) {
	const head = "tid=CSA1&dt=20261122115306&"
	tests := []struct {
		name    string
		body    string
		field   string
		problem string
	}{
		{"empty body", "", "", "empty body"},
		{"white space body", " \r\n", "", "empty body"},
		{"empty key", "=1&tid=T", "", "empty key"},
		{"bad escape in key", "t%zzid=T", "", "percent-encoding"},
		{"bad escape in value", "tid=T%z", "tid", "percent-encoding"},
		{"JSON body", `{"tid":"T"}`, `["{\"tid\":\"T\"}"]`, "unknown key"},
		{"unknown key", head + "lat=1&lon=1&alt=5", "alt", "unknown key"},
		{"boot key on log", head + "rsn=1", "rsn", "unknown key"},
		{"uppercase key", head + "LAT=1", "LAT", "unknown key"},
		{"repeated key", head + "fuel=1&fuel=2", "fuel", "repeated"},
		{"repeated tid", "tid=A&tid=B&dt=20261122115306&fuel=1", "tid", "repeated"},
		{"key without value", head + "ign", "ign", "has no value"},
		{"missing tid", "dt=20261122115306&fuel=1", "tid", "missing"},
		{"empty tid", "tid=&dt=20261122115306&fuel=1", "tid", "is empty"},
		{"tid with control character", "tid=A%00B&dt=20261122115306&fuel=1", "tid", "control character"},
		{"tid not UTF-8", "tid=A%FF&dt=20261122115306&fuel=1", "tid", "UTF-8"},
		{"missing dt", "tid=T&fuel=1", "dt", "missing"},
		{"short dt", "tid=T&dt=2026112211530&fuel=1", "dt", "14 digits"},
		{"non-digit dt", "tid=T&dt=2026-11-22T1153&fuel=1", "dt", "14 digits"},
		{"month 13", "tid=T&dt=20261322115306&fuel=1", "dt", "month out of range"},
		{"month 0", "tid=T&dt=20260022115306&fuel=1", "dt", "month out of range"},
		{"day 0", "tid=T&dt=20261100115306&fuel=1", "dt", "day out of range"},
		{"31 November", "tid=T&dt=20261131115306&fuel=1", "dt", "day out of range"},
		{"29 February 2026", "tid=T&dt=20260229115306&fuel=1", "dt", "day out of range"},
		{"hour 24", "tid=T&dt=20261122245306&fuel=1", "dt", "hour out of range"},
		{"minute 60", "tid=T&dt=20261122116006&fuel=1", "dt", "minute out of range"},
		{"second 60", "tid=T&dt=20261122115360&fuel=1", "dt", "second out of range"},
		{"before 1970", "tid=T&dt=19691231235959&fuel=1", "dt", "before 1970"},
		{"neither gps nor log", head[:len(head)-1], "lat/lon", "required when none of"},
		{"lat without lon", head + "lat=1", "lon", "missing"},
		{"lon without lat", head + "lon=1&fuel=1", "lat", "missing"},
		{"spd without position", head + "spd=1&fuel=1", "spd", "needs lat and lon"},
		{"sat without position", head + "sat=1", "sat", "needs lat and lon"},
		{"lat not numeric", head + "lat=abc&lon=1", "lat", "must be an integer"},
		{"lat decimal", head + "lat=37.5665&lon=1", "lat", "must be an integer"},
		{"lat empty", head + "lat=&lon=1", "lat", "must not be empty"},
		{"lat plus sign", head + "lat=%2B1&lon=1", "lat", "must be an integer"},
		{"lat minus only", head + "lat=-&lon=1", "lat", "must be an integer"},
		{"lat above 90", head + "lat=90000001&lon=1", "lat", "out of range [-90, 90]"},
		{"lat below -90", head + "lat=-90000001&lon=1", "lat", "out of range"},
		{"lon above 180", head + "lat=1&lon=180000001", "lon", "out of range [-180, 180]"},
		{"lon below -180", head + "lat=1&lon=-180000001", "lon", "out of range"},
		{"lat overflow", head + "lat=99999999999999999999&lon=1", "lat", "out of range"},
		{"negative spd", head + "lat=1&lon=1&spd=-1", "spd", "non-negative integer"},
		{"decimal spd", head + "lat=1&lon=1&spd=4.5", "spd", "non-negative integer"},
		{"bad dir", head + "lat=1&lon=1&dir=N", "dir", "non-negative integer"},
		{"bad sat", head + "lat=1&lon=1&sat=x", "sat", "non-negative integer"},
		{"ign 2", head + "ign=2", "ign", "0 or 1"},
		{"ign true", head + "ign=true", "ign", "0 or 1"},
		{"lock empty", head + "lock=", "lock", "0 or 1"},
		{"negative bat", head + "bat=-1", "bat", "non-negative integer"},
		{"bad odo", head + "odo=1e6", "odo", "non-negative integer"},
		{"bad fuel", head + "fuel=full", "fuel", "non-negative integer"},
		{"spaces in value", head + "fuel=+5", "fuel", "non-negative integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := legacy.DecodeCSALog([]byte(tt.body))
			if msgs != nil {
				t.Errorf("got %d messages with an error", len(msgs))
			}
			assertError(t, err, tt.field, tt.problem)
		})
	}
}

func TestDecodeCSABoot(t *testing.T) {
	for _, tt := range []struct{ rsn, reason string }{
		{"1", "power_on"}, {"2", "watchdog"}, {"3", "ota"}, {"4", "manual"},
		{"0", "unknown"}, {"5", "unknown"}, {"-1", "unknown"}, {"99", "unknown"},
	} {
		t.Run("rsn="+tt.rsn, func(t *testing.T) {
			got, err := legacy.DecodeCSABoot([]byte("tid=CSA0000042&dt=20261122115306&rsn=" + tt.rsn + "&fw=csa-1.0.9"))
			if err != nil {
				t.Fatal(err)
			}
			assertMessages(t, got, `{"type":"boot","device_no":"CSA0000042","ts":1795315986000,"source":"csa","reason":"`+tt.reason+`","firmware":"csa-1.0.9"}`)
		})
	}
}

func TestDecodeCSABootErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		field   string
		problem string
	}{
		{"missing tid", "dt=20261122115306&rsn=2&fw=f", "tid", "missing"},
		{"bad dt", "tid=T&dt=20261122115399&rsn=2&fw=f", "dt", "second out of range"},
		{"missing rsn", "tid=T&dt=20261122115306&fw=f", "rsn", "missing"},
		{"non-numeric rsn", "tid=T&dt=20261122115306&rsn=watchdog&fw=f", "rsn", "must be an integer"},
		{"missing fw", "tid=T&dt=20261122115306&rsn=2", "fw", "missing"},
		{"empty fw", "tid=T&dt=20261122115306&rsn=2&fw=", "fw", "is empty"},
		{"log key on boot", "tid=T&dt=20261122115306&rsn=2&fw=f&lat=1", "lat", "unknown key"},
		{"repeated rsn", "tid=T&dt=20261122115306&rsn=2&rsn=3&fw=f", "rsn", "repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := legacy.DecodeCSABoot([]byte(tt.body))
			if msgs != nil {
				t.Errorf("got %d messages with an error", len(msgs))
			}
			assertError(t, err, tt.field, tt.problem)
		})
	}
}
