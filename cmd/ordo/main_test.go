package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ordoBinary builds the ordo binary once per test run.
func ordoBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ordo")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func TestBinary(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)

	t.Run("BenchJSON", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "bench.db")
		out, err := exec.Command(bin, "bench", "--workload", "order", "--instances", "300", "--concurrency", "30", "--db", db, "-o", "json").Output()
		require.NoError(t, err)
		var res map[string]any
		require.NoError(t, json.Unmarshal(out, &res), string(out))
		for _, k := range []string{"workload", "store", "instances", "concurrency", "seconds", "per_second", "p50_ms", "p99_ms", "peak_rss_mb"} {
			require.Contains(t, res, k)
		}
		require.Equal(t, "order", res["workload"])
		require.Equal(t, "sqlite", res["store"])
		require.EqualValues(t, 300, res["instances"])
		require.EqualValues(t, 30, res["concurrency"])
		require.Greater(t, res["per_second"].(float64), 0.0)
		require.Greater(t, res["peak_rss_mb"].(float64), 0.0)
		require.FileExists(t, db, "the benchmark ran on the file it was given")

		// The same file again is refused: the benchmark needs a fresh one.
		cmd := exec.Command(bin, "bench", "--instances", "10", "--db", db)
		out, err = cmd.CombinedOutput()
		require.Equal(t, 1, exitCode(err), string(out))
		require.Contains(t, string(out), "fresh database file")
	})

	t.Run("BenchText", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(bin, "bench", "--workload", "linear3", "--instances", "100", "--concurrency", "10").Output()
		require.NoError(t, err)
		require.Contains(t, string(out), "instances/s")
		require.Contains(t, string(out), "p99")
	})

	t.Run("BenchTimers", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(bin, "bench", "--workload", "timers", "--instances", "200", "--concurrency", "10", "-o", "json").Output()
		require.NoError(t, err)
		var res map[string]any
		require.NoError(t, json.Unmarshal(out, &res), string(out))
		require.Equal(t, "timers", res["workload"])
		require.EqualValues(t, 200, res["instances"])
		require.Greater(t, res["per_second"].(float64), 0.0, "timers fired per second")
		require.GreaterOrEqual(t, res["p99_ms"].(float64), res["p50_ms"].(float64), "lateness percentiles")
		require.Greater(t, res["create_seconds"].(float64), 0.0)

		out, err = exec.Command(bin, "bench", "--workload", "timers", "--instances", "50", "--concurrency", "5").Output()
		require.NoError(t, err)
		require.Contains(t, string(out), "lateness")
		require.Contains(t, string(out), "timers/s")
	})

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(bin, "version", "-o", "json").Output()
		require.NoError(t, err)
		var v map[string]string
		require.NoError(t, json.Unmarshal(out, &v))
		require.NotEmpty(t, v["version"])
		require.True(t, strings.HasPrefix(v["go"], "go"))
	})

	t.Run("UsageErrorsExit2", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"bench", "--workload", "nope"},
			{"bench", "--instances", "-1"},
			{"bench", "--bogus-flag"},
			{"bench", "-o", "yaml"},
			{"version", "extra"},
		} {
			out, err := exec.Command(bin, args...).CombinedOutput()
			require.Equal(t, 2, exitCode(err), "%v: %s", args, out)
			require.Contains(t, string(out), "ordo:")
		}
	})
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
