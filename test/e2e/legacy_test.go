package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

// legacyTestdata is legacy/testdata: the STS and CSA samples and, in the
// .golden files, the canonical messages each decodes to.
func legacyTestdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "legacy", "testdata", name)
}

// curlPost POSTs a file to the legacy endpoint with curl -k (the default
// certificate is self-signed) and returns the status, body and headers.
func curlPost(t *testing.T, addr, path, contentType, file string) (status int, body, headers string) {
	t.Helper()
	status, body, headers, err := curlPostErr(t.TempDir(), addr, path, contentType, file)
	if err != nil {
		t.Fatal(err)
	}
	return status, body, headers
}

// curlPostErr is curlPost for goroutines other than the test's; dir holds
// the headers file.
func curlPostErr(dir, addr, path, contentType, file string) (status int, body, headers string, err error) {
	hdr := filepath.Join(dir, "headers")
	res, err := runCmd(60*time.Second, "", "curl", "-k", "-sS", "--max-time", "50", "-D", hdr,
		"-H", "Content-Type: "+contentType, "--data-binary", "@"+file,
		"-w", `\n%{http_code}`, "https://"+addr+path)
	if err != nil {
		return 0, "", "", err
	}
	if res.Code != 0 {
		return 0, "", "", fmt.Errorf("curl: exit %d: %s", res.Code, res.Stderr)
	}
	out := strings.TrimRight(res.Stdout, "\n")
	i := strings.LastIndexByte(out, '\n')
	status, err = strconv.Atoi(out[i+1:])
	if err != nil {
		return 0, "", "", fmt.Errorf("curl printed %q", res.Stdout)
	}
	h, _ := os.ReadFile(hdr)
	return status, strings.TrimSpace(out[:max(i, 0)]), string(h), nil
}

// TestLegacyEndpoint POSTs the STS JSON and CSA form samples with curl and
// finds each canonical message (the .golden files) in its topic, keyed by
// device, on the device's partition, with the rule's timestamp added; a
// malformed request gets 400 and produces nothing.
func TestLegacyEndpoint(t *testing.T) {
	needTools(t, "curl")
	kc := sharedKafka(t)
	g := startGateway(t, kc, gatewayConfig{})
	topics := append([]string{}, reportTopics...)
	before := partitionEnds(t, kc, topics...)

	cases := []struct {
		path, contentType, sample, golden, device string
		partition                                 int32
	}{
		{"/log", "application/json", "sts-log.json", "sts-log.golden", "STS-00000123", 1},
		{"/boot", "application/json", "sts-boot.json", "sts-boot.golden", "STS-00000123", 1},
		{"/log", "application/x-www-form-urlencoded", "csa-log.form", "csa-log.golden", "CSA0000042", 2},
		{"/boot", "application/x-www-form-urlencoded", "csa-boot.form", "csa-boot.golden", "CSA0000042", 2},
	}
	var want []map[string]any
	for _, c := range cases {
		golden := readGolden(t, legacyTestdata(c.golden))
		status, body, _ := curlPost(t, g.HTTPSAddr, c.path, c.contentType, legacyTestdata(c.sample))
		if status != 200 || body != `{"accepted":`+strconv.Itoa(len(golden))+`}` {
			t.Fatalf("POST %s %s: %d %s; want 200 {\"accepted\":%d}", c.path, c.sample, status, body, len(golden))
		}
		want = append(want, golden...)
	}
	// A latitude out of range: 400 naming the field, and nothing produced.
	status, body, _ := curlPost(t, g.HTTPSAddr, "/log", "application/json", legacyTestdata("sts-log-bad-lat.json"))
	if status != 400 || !strings.Contains(body, `"error"`) {
		t.Errorf("POST a bad latitude: %d %s; want 400 with an error", status, body)
	}

	// The 200s came after Kafka stored everything: read without polling.
	got := map[string][]record{} // device → records, in each partition's order
	for _, r := range readTopicsSince(t, kc, before, topics...) {
		got[r.Key] = append(got[r.Key], r)
	}
	for _, c := range cases {
		for _, r := range got[c.device] {
			if r.Partition != c.partition {
				t.Errorf("%s: record in %s/%d; the device's partition is %d", c.device, r.Topic, r.Partition, c.partition)
			}
		}
	}
	for _, w := range want {
		device, typ := w["device_no"].(string), w["type"].(string)
		found := false
		for _, r := range got[device] {
			if r.Topic != "message-"+typ {
				continue
			}
			var v map[string]any
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			ts, _ := v["timestamp"].(string)
			delete(v, "timestamp")
			if reflect.DeepEqual(v, w) {
				found = true
				if !tsPattern.MatchString(ts) {
					t.Errorf("%s %s: timestamp %q", device, typ, ts)
				}
			}
		}
		if !found {
			t.Errorf("%s %s: no record equal to the decoded message (plus timestamp)\nwant %v\ngot  %v", device, typ, w, valuesOf(got[device]))
		}
	}
	if n, m := len(got["STS-00000123"])+len(got["CSA0000042"]), len(want); n != m {
		t.Errorf("%d records of the sample devices, want %d (the 400 produced something, or a 200 produced twice)", n, m)
	}
}

func readGolden(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.TrimSpace(s.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(s.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func valuesOf(recs []record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Topic+" "+string(r.Value))
	}
	return out
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// partitionEnds returns every partition's end offset, to read only what
// comes after. Topics that do not exist yet (the gateway creates them) start
// at 0.
func partitionEnds(t *testing.T, kc *kafkatest.Cluster, topics ...string) map[topicPartition]int64 {
	t.Helper()
	cfg := kc.SaramaConfig()
	cfg.ClientID = "e2e-offsets"
	client, err := sarama.NewClient(kc.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	out := map[topicPartition]int64{}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			continue
		}
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			out[topicPartition{topic, p}] = end
		}
	}
	return out
}
