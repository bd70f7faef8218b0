package legacy_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetgate/fleetgate/legacy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the decoders' output")

// goldenDecoder picks the decoder for a testdata body by its name prefix.
func goldenDecoder(name string) decoder {
	switch {
	case strings.HasPrefix(name, "sts-log"):
		return legacy.DecodeSTSLog
	case strings.HasPrefix(name, "sts-boot"):
		return legacy.DecodeSTSBoot
	case strings.HasPrefix(name, "csa-log"):
		return legacy.DecodeCSALog
	case strings.HasPrefix(name, "csa-boot"):
		return legacy.DecodeCSABoot
	}
	return nil
}

// TestGolden decodes every request body in testdata/ (*.json for STS, *.form
// for CSA; the decoder is chosen by the sts-log, sts-boot, csa-log, csa-boot
// name prefix) and compares the exact payload bytes, one message per line, or
// "error: ..." with the .golden file of the same name. Run with -update to
// rewrite the golden files after an intended change, and review the diff.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		ext := filepath.Ext(in)
		if ext != ".json" && ext != ".form" {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(in), ext)
		decode := goldenDecoder(name)
		if decode == nil {
			t.Errorf("%s: no decoder for this name", in)
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			msgs, err := decode(body)
			if err != nil {
				got.WriteString("error: " + err.Error() + "\n")
			}
			for _, m := range msgs {
				if err := checkMessage(m); err != nil {
					t.Error(err)
				}
				got.Write(m.Payload)
				got.WriteByte('\n')
			}
			golden := strings.TrimSuffix(in, ext) + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs:\n got:\n%s\nwant:\n%s", golden, got.Bytes(), want)
			}
		})
	}
	if n < 4 {
		t.Fatalf("found %d bodies in testdata, want at least the 4 samples", n)
	}
}
