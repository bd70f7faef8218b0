package kafka

import (
	"testing"
	"time"
)

func TestSaramaFlushFollowsLinger(t *testing.T) {
	cases := []struct {
		name      string
		linger    time.Duration
		wantBytes int
	}{
		// sarama sends at once only when every flush trigger is 0.
		{"zero sends at once", 0, 0},
		{"linger keeps the byte trigger", 2 * time.Millisecond, 512 * 1024},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Brokers = []string{"127.0.0.1:9092"}
			cfg.Linger = c.linger
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			sc, err := saramaConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Producer.Flush.Frequency != c.linger || sc.Producer.Flush.Bytes != c.wantBytes || sc.Producer.Flush.Messages != 0 {
				t.Fatalf("flush frequency %s bytes %d messages %d, want %s %d 0", sc.Producer.Flush.Frequency,
					sc.Producer.Flush.Bytes, sc.Producer.Flush.Messages, c.linger, c.wantBytes)
			}
		})
	}
}
