package legacy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetgate/fleetgate/legacy"
)

// fuzzDecoder checks what every decoder promises for any input: no panic;
// either an error that is a *FieldError or wraps ErrMalformed, and no
// messages; or messages whose payloads are JSON objects with type, device_no,
// ts, source (see checkMessage).
func fuzzDecoder(f *testing.F, decode decoder, glob string, seeds ...string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := decode(body)
		if err != nil {
			var fe *legacy.FieldError
			if !errors.As(err, &fe) && !errors.Is(err, legacy.ErrMalformed) {
				t.Fatalf("error %q (%T) is neither a *FieldError nor ErrMalformed", err, err)
			}
			if msgs != nil {
				t.Fatalf("%d messages with error %v", len(msgs), err)
			}
			return
		}
		for i, m := range msgs {
			if err := checkMessage(m); err != nil {
				t.Fatalf("message %d of %q: %v", i, body, err)
			}
		}
	})
}

func FuzzDecodeSTSLog(f *testing.F) {
	fuzzDecoder(f, legacy.DecodeSTSLog, "sts-log*.json",
		`{"device_no":"D","sent_at":1,"records":[]}`,
		`{"device_no":"D","sent_at":1,"seq":2,"records":[{"kind":"kinematic","samples":[[1,2,3]]},{"kind":"x","y":{"z":[null]}}]}`,
		`{"device_no":"D","sent_at":1,"records":[{"kind":"gps","lat":1,"lng":2,"speed":3,"speed_kmh":4}]}`,
		`{"device_no":"D\u0000","sent_at":1,"records":[{"kind":"a\"b","\u0074s":5}]}`,
	)
}

func FuzzDecodeSTSBoot(f *testing.F) {
	fuzzDecoder(f, legacy.DecodeSTSBoot, "sts-boot*.json",
		`{"device_no":"D","fw":"f","sent_at":1,"reason":"r","uptime_s":0,"seq":3}`,
		`{"device_no":"D","fw":"f","sent_at":1,"reason":"r","uptime_s":1e3}`,
	)
}

func FuzzDecodeCSALog(f *testing.F) {
	fuzzDecoder(f, legacy.DecodeCSALog, "csa-log*.form",
		"tid=T&dt=20261122115306&lat=-1&lon=1",
		"tid=T%20&dt=20240229000000&ign=1&&odo=9223372036854775807",
		"tid=T&dt=19700101090000&bat=0\n",
	)
}

func FuzzDecodeCSABoot(f *testing.F) {
	fuzzDecoder(f, legacy.DecodeCSABoot, "csa-boot*.form",
		"tid=T&dt=20261122115306&rsn=-9&fw=x",
		"fw=%41&rsn=4&dt=20261122115306&tid=T",
	)
}
