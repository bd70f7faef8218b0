package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// toolResult is what an outside command did.
type toolResult struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// runTool runs an outside command with stdin and a timeout. It fails the
// test only if the command cannot be started or outlives the timeout; the
// exit code is the caller's to judge.
func runTool(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) toolResult {
	t.Helper()
	res, err := runCmd(timeout, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runCmd is runTool for goroutines other than the test's: it returns the
// failure instead.
func runCmd(timeout time.Duration, stdin string, name string, args ...string) (toolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	began := time.Now()
	err := cmd.Run()
	res := toolResult{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(began)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %s: still running after %s\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), timeout, res.Stdout, res.Stderr)
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// mustTool is runTool that fails the test on a non-zero exit.
func mustTool(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) toolResult {
	t.Helper()
	res := runTool(t, timeout, stdin, name, args...)
	if res.Code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// newRunID returns a random id that tells this test's records from others'.
func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
