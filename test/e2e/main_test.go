// Package e2e tests the real fleetgate binary against a real Apache Kafka
// (test/kafkatest), driven by real outside clients: mosquitto_pub, kcat,
// curl, paho and the fleetsim load simulator and verifier. The fault tests
// stop, kill and restart Kafka nodes and the gateway itself under load and
// check, record by record, what the gateway promised (docs/reliability.md).
//
// TestMain builds ./cmd/fleetgate and ./cmd/fleetsim once. Set
// FLEETGATE_E2E_BINARY (or FLEETGATE_E2E_FLEETSIM) to test a binary built
// elsewhere, for example a deliberately broken one to see a test fail. The
// gateway inherits the environment, so FLEETGATE_* configuration variables
// override the generated file (FLEETGATE_KAFKA_REQUIRED_ACKS=1 makes
// TestLeaderFailover lose messages). The tests need Kafka fetched by
// test/kafka/fetch (./test/run does it) and the Debian tools
// mosquitto-clients, kcat and curl; under -short they are skipped.
//
// The slowest fault tests (3-node clusters) run only with FLEETGATE_SLOW=1:
// FLEETGATE_SLOW=1 ./test/run -run 'TestReadinessTwoBrokersDown|TestLaggingFollowersFreshTopics' ./test/e2e/
//
// docs/reliability.md says which test shows which guarantee.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Environment variables that replace the binaries TestMain would build.
const (
	envBinary   = "FLEETGATE_E2E_BINARY"
	envFleetsim = "FLEETGATE_E2E_FLEETSIM"
)

// Paths of the binaries under test, set by TestMain.
var (
	fleetgateBin string
	fleetsimBin  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself (kafkatest.StartT)
	}
	dir, err := os.MkdirTemp("", "fleetgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		var err error
		if fleetgateBin, err = buildOrEnv(envBinary, "./cmd/fleetgate", filepath.Join(dir, "fleetgate")); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		if fleetsimBin, err = buildOrEnv(envFleetsim, "./cmd/fleetsim", filepath.Join(dir, "fleetsim")); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		defer closeShared()
		return m.Run()
	}()
	os.Exit(code)
}

// buildOrEnv returns the path in $env, or builds pkg into out.
func buildOrEnv(env, pkg, out string) (string, error) {
	if p := os.Getenv(env); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("$%s: %w", env, err)
		}
		fmt.Fprintf(os.Stderr, "e2e: testing %s=%s\n", env, abs)
		return abs, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	began := time.Now()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", pkg, time.Since(began).Round(time.Millisecond))
	return out, nil
}

// needTools fails the test when an outside client it drives is missing: CI
// installs them (.ci/run), and a test that skipped silently would prove
// nothing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing tools %s: install mosquitto-clients, kcat, curl and haproxy (.ci/run does)", strings.Join(missing, ", "))
	}
}
