package legacy_test

import (
	"os"
	"testing"

	"github.com/fleetgate/fleetgate/legacy"
)

func benchmarkDecode(b *testing.B, decode decoder, file string) {
	body, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSTSLog decodes the four-record STS sample.
func BenchmarkDecodeSTSLog(b *testing.B) {
	benchmarkDecode(b, legacy.DecodeSTSLog, "testdata/sts-log.json")
}

func BenchmarkDecodeSTSBoot(b *testing.B) {
	benchmarkDecode(b, legacy.DecodeSTSBoot, "testdata/sts-boot.json")
}

func BenchmarkDecodeCSALog(b *testing.B) {
	benchmarkDecode(b, legacy.DecodeCSALog, "testdata/csa-log.form")
}

func BenchmarkDecodeCSABoot(b *testing.B) {
	benchmarkDecode(b, legacy.DecodeCSABoot, "testdata/csa-boot.form")
}
