package kafka

import (
	"errors"
	"math"
	"testing"

	"github.com/IBM/sarama"
)

// javaMurmur2 holds what the Apache Kafka Java client (kafka-clients 4.1.2)
// computes for UTF-8 keys: Utils.murmur2(key) and
// BuiltInPartitioner.partitionForKey(key, n), that is
// toPositive(murmur2(key)) % n, for 6 and 12 partitions. Produced by
// testdata/Murmur2Ref.java, run from the repository root:
//
//	mvn -q dependency:get -Dartifact=org.apache.kafka:kafka-clients:4.1.2
//	M2=~/.m2/repository
//	java -cp $M2/org/apache/kafka/kafka-clients/4.1.2/kafka-clients-4.1.2.jar:$M2/org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar \
//	    kafka/testdata/Murmur2Ref.java
//
// The last six keys are the vectors of Kafka's UtilsTest.testMurmur2; the
// hashes the program printed are the ones that test asserts.
var javaMurmur2 = []struct {
	key     string
	murmur2 int32
	p6, p12 int32
}{
	{"D1", 374963996, 2, 8},
	{"STS-00000123", -1298538577, 1, 7},
	{"CSA0000042", -582691398, 2, 2},
	{"", 275646681, 3, 9},
	{"a", -1563381124, 4, 4},
	{"차량1", -1406857246, 4, 10},
	{"21", -973932308, 0, 0},
	{"foobar", -790332482, 0, 6},
	{"a-little-bit-long-string", -985981536, 2, 8},
	{"a-little-bit-longer-string", -1486304829, 5, 11},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5, 5},
	{"abc", 479470107, 3, 3},
}

func TestMurmur2MatchesJava(t *testing.T) {
	newP, err := NewPartitioner("murmur2")
	if err != nil {
		t.Fatal(err)
	}
	p := newP("t")
	for _, c := range javaMurmur2 {
		t.Run(c.key, func(t *testing.T) {
			msg := &sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder(c.key)}
			for _, tc := range []struct{ n, want int32 }{
				{6, c.p6},
				{12, c.p12},
				// With MaxInt32 partitions the partition is the whole
				// positive 31-bit hash (no Java hash here equals MaxInt32).
				{math.MaxInt32, c.murmur2 & 0x7fffffff},
			} {
				got, err := p.Partition(msg, tc.n)
				if err != nil {
					t.Fatalf("Partition(%q, %d): %v", c.key, tc.n, err)
				}
				if got != tc.want {
					t.Errorf("Partition(%q, %d) = %d, Java gives %d", c.key, tc.n, got, tc.want)
				}
			}
			if !p.(sarama.DynamicConsistencyPartitioner).MessageRequiresConsistency(msg) {
				t.Errorf("keyed record %q may be moved off its partition", c.key)
			}
		})
	}
}

func TestDefaultPartitionerIsMurmur2(t *testing.T) {
	newP, err := NewPartitioner("")
	if err != nil {
		t.Fatal(err)
	}
	msg := &sarama.ProducerMessage{Key: sarama.StringEncoder("D1")}
	if got, _ := newP("t").Partition(msg, 12); got != 8 {
		t.Errorf("default partitioner put D1 on %d of 12, murmur2 gives 8", got)
	}
}

func TestFNV1aIsSaramaHash(t *testing.T) {
	newP, err := NewPartitioner("fnv1a")
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := newP("t"), sarama.NewHashPartitioner("t")
	for _, c := range javaMurmur2 {
		msg := &sarama.ProducerMessage{Key: sarama.StringEncoder(c.key)}
		got, err := ours.Partition(msg, 12)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := theirs.Partition(msg, 12)
		if got != want {
			t.Errorf("fnv1a put %q on %d, sarama's hash partitioner on %d", c.key, got, want)
		}
	}
}

// pinned is producer metadata that fixes a record's partition.
type pinned struct {
	partition int32
	ok        bool
}

func (p pinned) FixedPartition() (int32, bool) { return p.partition, p.ok }

func TestPartitioners(t *testing.T) {
	key := sarama.StringEncoder("D1") // murmur2: 8 of 12
	tests := []struct {
		name        string
		partitioner string
		msg         *sarama.ProducerMessage
		want        int32 // -1: any partition
		consistent  bool
		wantErr     bool
	}{
		{"murmur2 keyed", "murmur2", &sarama.ProducerMessage{Key: key}, 8, true, false},
		{"murmur2 keyless", "murmur2", &sarama.ProducerMessage{}, -1, false, false},
		{"murmur2 fixed", "murmur2", &sarama.ProducerMessage{Key: key, Metadata: pinned{3, true}}, 3, true, false},
		{"murmur2 not fixed", "murmur2", &sarama.ProducerMessage{Key: key, Metadata: pinned{3, false}}, 8, true, false},
		{"murmur2 fixed keyless", "murmur2", &sarama.ProducerMessage{Metadata: pinned{11, true}}, 11, true, false},
		{"murmur2 fixed too large", "murmur2", &sarama.ProducerMessage{Metadata: pinned{12, true}}, 0, true, true},
		{"murmur2 fixed negative", "murmur2", &sarama.ProducerMessage{Metadata: pinned{-1, true}}, 0, true, true},
		{"murmur2 other metadata", "murmur2", &sarama.ProducerMessage{Key: key, Metadata: "x"}, 8, true, false},
		{"fnv1a keyless", "fnv1a", &sarama.ProducerMessage{}, -1, false, false},
		{"fnv1a fixed", "fnv1a", &sarama.ProducerMessage{Key: key, Metadata: pinned{0, true}}, 0, true, false},
		{"fnv1a fixed too large", "fnv1a", &sarama.ProducerMessage{Metadata: pinned{99, true}}, 0, true, true},
		{"random keyed", "random", &sarama.ProducerMessage{Key: key}, -1, false, false},
		{"random fixed", "random", &sarama.ProducerMessage{Key: key, Metadata: pinned{5, true}}, 5, true, false},
		{"random fixed too large", "random", &sarama.ProducerMessage{Metadata: pinned{12, true}}, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newP, err := NewPartitioner(tt.partitioner)
			if err != nil {
				t.Fatal(err)
			}
			p := newP("t")
			if got := p.(sarama.DynamicConsistencyPartitioner).MessageRequiresConsistency(tt.msg); got != tt.consistent {
				t.Errorf("MessageRequiresConsistency = %v, want %v", got, tt.consistent)
			}
			for range 20 {
				got, err := p.Partition(tt.msg, 12)
				if tt.wantErr {
					if !errors.Is(err, sarama.ErrInvalidPartition) {
						t.Fatalf("Partition error = %v, want one wrapping ErrInvalidPartition", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Partition: %v", err)
				}
				if got < 0 || got >= 12 || tt.want >= 0 && got != tt.want {
					t.Fatalf("Partition = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

func TestRequiresConsistency(t *testing.T) {
	for name, want := range map[string]bool{"murmur2": true, "fnv1a": true, "random": false} {
		newP, err := NewPartitioner(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := newP("t").RequiresConsistency(); got != want {
			t.Errorf("%s: RequiresConsistency = %v, want %v", name, got, want)
		}
	}
}

func TestUnknownPartitioner(t *testing.T) {
	if _, err := NewPartitioner("crc32"); err == nil {
		t.Fatal("NewPartitioner(crc32) succeeded")
	}
}

func BenchmarkMurmur2Partition(b *testing.B) {
	newP, _ := NewPartitioner("murmur2")
	p := newP("t")
	msg := &sarama.ProducerMessage{Key: sarama.StringEncoder("STS-00000123")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Partition(msg, 12); err != nil {
			b.Fatal(err)
		}
	}
}
