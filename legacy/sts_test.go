package legacy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/legacy"
)

func TestDecodeSTSLog(t *testing.T) {
	const env = `"device_no":"STS-1","sent_at":1763780000123,"seq":7`
	tests := []struct {
		name string
		body string
		want []string
	}{
		{
			name: "gps renames",
			body: `{` + env + `,"records":[{"kind":"gps","ts":1763779999000,"lat":37.5665,"lng":126.978,"speed":42.5,"heading":180,"sats":9}]}`,
			want: []string{`{"type":"gps","device_no":"STS-1","ts":1763779999000,"source":"sts","seq":7,"lat":37.5665,"lng":126.978,"speed_kmh":42.5,"heading_deg":180,"satellites":9}`},
		},
		{
			name: "kinematic samples become objects",
			body: `{` + env + `,"records":[{"kind":"kinematic","ts":1,"hz":10,"samples":[[0.01,-0.02,0.98],[1e-3, 2 ,-3]]}]}`,
			want: []string{`{"type":"kinematic","device_no":"STS-1","ts":1,"source":"sts","seq":7,"hz":10,"samples":[{"ax":0.01,"ay":-0.02,"az":0.98},{"ax":1e-3,"ay":2,"az":-3}]}`},
		},
		{
			name: "empty samples",
			body: `{` + env + `,"records":[{"kind":"kinematic","ts":1,"samples":[]}]}`,
			want: []string{`{"type":"kinematic","device_no":"STS-1","ts":1,"source":"sts","seq":7,"samples":[]}`},
		},
		{
			name: "status becomes log",
			body: `{` + env + `,"records":[{"kind":"status","ts":2,"ignition":false,"battery_v":12.6,"odometer_km":12345.6,"fuel_pct":55,"door_locked":true}]}`,
			want: []string{`{"type":"log","device_no":"STS-1","ts":2,"source":"sts","seq":7,"ignition":false,"battery_v":12.6,"odometer_km":12345.6,"fuel_pct":55,"door_locked":true}`},
		},
		{
			name: "adas passes through",
			body: `{` + env + `,"records":[{"kind":"adas","ts":3,"event":"FCW","level":2}]}`,
			want: []string{`{"type":"adas","device_no":"STS-1","ts":3,"source":"sts","seq":7,"event":"FCW","level":2}`},
		},
		{
			name: "unknown kind passes through with fields as sent",
			body: `{` + env + `,"records":[{"kind":"tpms","ts":4,"tyres":{"fl": 2.3, "fr":[1, 2]},"speed":1,"note":null,"ok":true}]}`,
			want: []string{`{"type":"tpms","device_no":"STS-1","ts":4,"source":"sts","seq":7,"tyres":{"fl":2.3,"fr":[1,2]},"speed":1,"note":null,"ok":true}`},
		},
		{
			name: "record without ts takes sent_at",
			body: `{` + env + `,"records":[{"kind":"adas","event":"LDW"}]}`,
			want: []string{`{"type":"adas","device_no":"STS-1","ts":1763780000123,"source":"sts","seq":7,"event":"LDW"}`},
		},
		{
			name: "no seq, fw not copied",
			body: `{"device_no":"STS-1","fw":"sts-2.4.1","sent_at":5,"records":[{"kind":"adas"}]}`,
			want: []string{`{"type":"adas","device_no":"STS-1","ts":5,"source":"sts"}`},
		},
		{
			name: "unknown fields of known kinds pass through",
			body: `{` + env + `,"records":[{"kind":"gps","lat":-90,"lng":180,"alt":35.2,"speed_kmh":1}]}`,
			want: []string{`{"type":"gps","device_no":"STS-1","ts":1763780000123,"source":"sts","seq":7,"lat":-90,"lng":180,"alt":35.2,"speed_kmh":1}`},
		},
		{
			name: "several records in order",
			body: `{` + env + `,"records":[{"kind":"adas","ts":1},{"kind":"status","ts":2},{"kind":"adas","ts":3}]}`,
			want: []string{
				`{"type":"adas","device_no":"STS-1","ts":1,"source":"sts","seq":7}`,
				`{"type":"log","device_no":"STS-1","ts":2,"source":"sts","seq":7}`,
				`{"type":"adas","device_no":"STS-1","ts":3,"source":"sts","seq":7}`,
			},
		},
		{
			name: "empty records",
			body: `{` + env + `,"records":[]}`,
		},
		{
			name: "white space and escapes",
			body: " \n{ \"device_no\" : \"STS\\u002d1\" ,\t\"sent_at\":9 , \"records\" : [ { \"kind\" : \"adas\" , \"t\\\"x\" : \"a\\\"b\" } ] }\r\n",
			want: []string{`{"type":"adas","device_no":"STS-1","ts":9,"source":"sts","t\"x":"a\"b"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := legacy.DecodeSTSLog([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			assertMessages(t, got, tt.want...)
		})
	}
}

// TestDecodeSTSLogNumbersAsSent checks the exact bytes: numbers keep their
// literal text and integers beyond float64 precision are not rounded.
func TestDecodeSTSLogNumbersAsSent(t *testing.T) {
	body := `{"device_no":"D","sent_at":9007199254740993,"seq":9223372036854775807,"records":[{"kind":"gps","lat":37.50,"lng":1.0E2,"speed":42.50},{"kind":"x","n":123456789012345678901234567890}]}`
	got, err := legacy.DecodeSTSLog([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"gps","device_no":"D","ts":9007199254740993,"source":"sts","seq":9223372036854775807,"lat":37.50,"lng":1.0E2,"speed_kmh":42.50}`,
		`{"type":"x","device_no":"D","ts":9007199254740993,"source":"sts","seq":9223372036854775807,"n":123456789012345678901234567890}`,
	}
	for i, m := range got {
		if string(m.Payload) != want[i] {
			t.Errorf("message %d:\n got %s\nwant %s", i, m.Payload, want[i])
		}
	}
}

func TestDecodeSTSLogErrors(t *testing.T) {
	const env = `"device_no":"STS-1","sent_at":1763780000123`
	rec := func(r string) string { return `{` + env + `,"records":[` + r + `]}` }
	tests := []struct {
		name    string
		body    string
		field   string // "" for ErrMalformed
		problem string
	}{
		{"empty body", ``, "", "empty body"},
		{"not JSON", `{"device_no":`, "", "unexpected end of JSON input"},
		{"syntax error", `{"device_no" "x"}`, "", "invalid character"},
		{"trailing data", `{"device_no":"x"} {}`, "", "invalid character"},
		{"array body", `[1]`, "", "must be a JSON object"},
		{"string body", `"x"`, "", "must be a JSON object"},
		{"invalid UTF-8", "{\"device_no\":\"\xff\"}", "", "UTF-8"},
		{"missing device_no", `{"sent_at":1,"records":[]}`, "device_no", "missing"},
		{"empty device_no", `{"device_no":"","sent_at":1,"records":[]}`, "device_no", "is empty"},
		{"numeric device_no", `{"device_no":123,"sent_at":1,"records":[]}`, "device_no", "must be a string"},
		{"null device_no", `{"device_no":null,"sent_at":1,"records":[]}`, "device_no", "must be a string"},
		{"device_no with control character", `{"device_no":"a\nb","sent_at":1,"records":[]}`, "device_no", "control character"},
		{"device_no with spaces around", `{"device_no":" a","sent_at":1,"records":[]}`, "device_no", "spaces"},
		{"device_no too long", `{"device_no":"` + strings.Repeat("x", 129) + `","sent_at":1,"records":[]}`, "device_no", "longer than 128"},
		{"missing sent_at", `{"device_no":"D","records":[]}`, "sent_at", "missing"},
		{"string sent_at", `{"device_no":"D","sent_at":"1","records":[]}`, "sent_at", "non-negative integer"},
		{"fractional sent_at", `{"device_no":"D","sent_at":1.5,"records":[]}`, "sent_at", "non-negative integer"},
		{"exponent sent_at", `{"device_no":"D","sent_at":1.7e12,"records":[]}`, "sent_at", "non-negative integer"},
		{"negative sent_at", `{"device_no":"D","sent_at":-1,"records":[]}`, "sent_at", "non-negative integer"},
		{"huge sent_at", `{"device_no":"D","sent_at":9223372036854775808,"records":[]}`, "sent_at", "out of range"},
		{"bad seq", `{` + env + `,"seq":"7","records":[]}`, "seq", "non-negative integer"},
		{"bad fw", `{` + env + `,"fw":2,"records":[]}`, "fw", "must be a string"},
		{"missing records", `{` + env + `}`, "records", "missing"},
		{"records not array", `{` + env + `,"records":{}}`, "records", "must be an array"},
		{"records null", `{` + env + `,"records":null}`, "records", "must be an array"},
		{"unknown top-level key", `{` + env + `,"records":[],"extra":1}`, "extra", "unknown field"},
		{"odd top-level key", `{` + env + `,"records":[],"a b":1}`, `["a b"]`, "unknown field"},
		{"repeated top-level key", `{` + env + `,"records":[],"device_no":"E"}`, "device_no", "repeated"},
		{"repeated key, escaped", `{` + env + `,"records":[],"sent\u005fat":2}`, "sent_at", "repeated"},
		{"record not an object", rec(`{"kind":"adas"},[1]`), "records[1]", "must be an object"},
		{"record is a string", rec(`"gps"`), "records[0]", "must be an object"},
		{"missing kind", rec(`{"ts":1}`), "records[0].kind", "missing"},
		{"numeric kind", rec(`{"kind":1}`), "records[0].kind", "must be a string"},
		{"empty kind", rec(`{"kind":""}`), "records[0].kind", "is empty"},
		{"bad ts", rec(`{"kind":"adas","ts":"now"}`), "records[0].ts", "non-negative integer"},
		{"fractional ts", rec(`{"kind":"adas","ts":1.0}`), "records[0].ts", "non-negative integer"},
		{"repeated record key", rec(`{"kind":"adas","level":1,"level":2}`), "records[0].level", "repeated"},
		{"repeated key in nested object", rec(`{"kind":"x","a":{"b":1,"b":2}}`), "records[0].a.b", "repeated"},
		{"repeated key deep in arrays", rec(`{"kind":"x","a":[{"c":1,"d":[]},{"d":{"e":1,"f":{},"e":2}}]}`), "records[0].a[1].d.e", "repeated"},
		{"repeated odd key nested", rec(`{"kind":"status","x y":[0,{"k k":1,"k\u0020k":2}]}`), `records[0]["x y"][1]["k k"]`, "repeated"},
		{"reserved type", rec(`{"kind":"adas","type":"x"}`), "records[0].type", "reserved"},
		{"reserved device_no", rec(`{"kind":"x","device_no":"D"}`), "records[0].device_no", "reserved"},
		{"reserved source", rec(`{"kind":"x","source":"mqtt"}`), "records[0].source", "reserved"},
		{"reserved seq", rec(`{"kind":"x","seq":1}`), "records[0].seq", "reserved"},
		{"gps lat above 90", rec(`{"kind":"gps","lat":90.0001,"lng":0}`), "records[0].lat", "out of range [-90, 90]"},
		{"gps lat below -90", rec(`{"kind":"gps","lat":-91,"lng":0}`), "records[0].lat", "out of range"},
		{"gps lng above 180", rec(`{"kind":"gps","lat":0,"lng":180.5}`), "records[0].lng", "out of range [-180, 180]"},
		{"gps lng below -180", rec(`{"kind":"gps","lat":0,"lng":-181}`), "records[0].lng", "out of range"},
		{"gps lat string", rec(`{"kind":"gps","lat":"37.5","lng":0}`), "records[0].lat", "must be a number"},
		{"gps lat missing", rec(`{"kind":"gps","lng":0}`), "records[0].lat", "missing"},
		{"gps lng missing", rec(`{"kind":"gps","lat":0}`), "records[0].lng", "missing"},
		{"gps speed not a number", rec(`{"kind":"gps","lat":0,"lng":0,"speed":"fast"}`), "records[0].speed", "must be a number"},
		{"gps heading null", rec(`{"kind":"gps","lat":0,"lng":0,"heading":null}`), "records[0].heading", "must be a number"},
		{"gps sats fractional", rec(`{"kind":"gps","lat":0,"lng":0,"sats":9.5}`), "records[0].sats", "non-negative integer"},
		{"gps speed and speed_kmh", rec(`{"kind":"gps","lat":0,"lng":0,"speed_kmh":1,"speed":1}`), "records[0].speed_kmh", "conflicts with speed"},
		{"kinematic without samples", rec(`{"kind":"kinematic","hz":10}`), "records[0].samples", "missing"},
		{"kinematic samples not array", rec(`{"kind":"kinematic","samples":{}}`), "records[0].samples", "must be an array"},
		{"kinematic sample too short", rec(`{"kind":"kinematic","samples":[[1,2,3],[1,2]]}`), "records[0].samples[1]", "3 numbers"},
		{"kinematic sample too long", rec(`{"kind":"kinematic","samples":[[1,2,3,4]]}`), "records[0].samples[0]", "3 numbers"},
		{"kinematic sample not array", rec(`{"kind":"kinematic","samples":[1]}`), "records[0].samples[0]", "3 numbers"},
		{"kinematic sample value not number", rec(`{"kind":"kinematic","samples":[[1,"2",3]]}`), "records[0].samples[0][1]", "must be a number"},
		{"kinematic hz not number", rec(`{"kind":"kinematic","hz":"10","samples":[]}`), "records[0].hz", "must be a number"},
		{"status ignition not bool", rec(`{"kind":"status","ignition":1}`), "records[0].ignition", "true or false"},
		{"status door_locked string", rec(`{"kind":"status","door_locked":"true"}`), "records[0].door_locked", "true or false"},
		{"status battery_v not number", rec(`{"kind":"status","battery_v":true}`), "records[0].battery_v", "must be a number"},
		{"error in later record", rec(`{"kind":"adas"},{"kind":"adas"},{"kind":"gps","lat":100,"lng":0}`), "records[2].lat", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := legacy.DecodeSTSLog([]byte(tt.body))
			if msgs != nil {
				t.Errorf("got %d messages with an error", len(msgs))
			}
			assertError(t, err, tt.field, tt.problem)
		})
	}
}

func TestDecodeSTSBoot(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "sample",
			body: `{"device_no":"STS-00000123","fw":"sts-2.4.1","sent_at":1763780000123,"reason":"watchdog","uptime_s":0}`,
			want: `{"type":"boot","device_no":"STS-00000123","ts":1763780000123,"source":"sts","reason":"watchdog","firmware":"sts-2.4.1","uptime_s":0}`,
		},
		{
			name: "seq copied",
			body: `{"seq":12,"uptime_s":3600,"reason":"power_on","sent_at":1,"fw":"f","device_no":"D"}`,
			want: `{"type":"boot","device_no":"D","ts":1,"source":"sts","seq":12,"reason":"power_on","firmware":"f","uptime_s":3600}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := legacy.DecodeSTSBoot([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			assertMessages(t, got, tt.want)
		})
	}
}

func TestDecodeSTSBootErrors(t *testing.T) {
	boot := func(replace, with string) string {
		return strings.Replace(`{"device_no":"D","fw":"f","sent_at":1,"reason":"watchdog","uptime_s":0}`, replace, with, 1)
	}
	tests := []struct {
		name    string
		body    string
		field   string
		problem string
	}{
		{"not JSON", `device_no=D`, "", "invalid character"},
		{"missing device_no", boot(`"device_no":"D",`, ``), "device_no", "missing"},
		{"missing sent_at", boot(`"sent_at":1,`, ``), "sent_at", "missing"},
		{"bad sent_at", boot(`"sent_at":1`, `"sent_at":"1"`), "sent_at", "non-negative integer"},
		{"missing fw", boot(`"fw":"f",`, ``), "fw", "missing"},
		{"empty fw", boot(`"fw":"f"`, `"fw":""`), "fw", "is empty"},
		{"missing reason", boot(`"reason":"watchdog",`, ``), "reason", "missing"},
		{"numeric reason", boot(`"reason":"watchdog"`, `"reason":2`), "reason", "must be a string"},
		{"missing uptime_s", boot(`,"uptime_s":0`, ``), "uptime_s", "missing"},
		{"negative uptime_s", boot(`"uptime_s":0`, `"uptime_s":-5`), "uptime_s", "non-negative integer"},
		{"fractional uptime_s", boot(`"uptime_s":0`, `"uptime_s":0.5`), "uptime_s", "non-negative integer"},
		{"records on boot", boot(`"uptime_s":0`, `"uptime_s":0,"records":[]`), "records", "unknown field"},
		{"repeated key", boot(`"uptime_s":0`, `"uptime_s":0,"fw":"g"`), "fw", "repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := legacy.DecodeSTSBoot([]byte(tt.body))
			if msgs != nil {
				t.Errorf("got %d messages with an error", len(msgs))
			}
			assertError(t, err, tt.field, tt.problem)
		})
	}
}

func TestFieldErrorAs(t *testing.T) {
	_, err := legacy.DecodeSTSLog([]byte(`{"sent_at":1,"records":[]}`))
	var fe *legacy.FieldError
	if !errors.As(err, &fe) || fe.Field != "device_no" || fe.Problem != "missing" {
		t.Fatalf("err = %v", err)
	}
	if err.Error() != "device_no: missing" {
		t.Fatalf("Error() = %q", err.Error())
	}
}
