package ordocli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loadWith loads the configuration of `ordo server` from a file with body
// (none when ""), the environment env and the command line args.
func loadWith(t *testing.T, body string, env []string, args ...string) (*serveConfig, error) {
	t.Helper()
	path := ""
	if body != "" {
		path = filepath.Join(t.TempDir(), "ordo.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	}
	cmd := newServe()
	require.NoError(t, cmd.Flags().Parse(args))
	return loadServeConfig(cmd.Flags(), path, env)
}

func TestLoadServeConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadWith(t, "", nil)
		require.NoError(t, err)
		require.Equal(t, &serveConfig{
			Addr: "127.0.0.1:7070", Tokens: map[string][]string{},
			Log:  logConfig{Format: "text", Level: "info"},
			HTTP: httpConfig{Timeout: 30 * time.Second},
		}, cfg)
		require.NoError(t, cfg.checkObservability())
	})

	t.Run("FlagsOverrideEnvOverridesFile", func(t *testing.T) {
		t.Parallel()
		file := `db: file.db
addr: 127.0.0.1:1
maxBodyBytes: 100
tokens:
  file.token.with.dots: admin
log:
  format: json
  level: warn
http:
  allowHosts: [api.example.com, "*.example.org"]
  timeout: 5s
trace: true
`
		cfg, err := loadWith(t, file, nil)
		require.NoError(t, err)
		require.Equal(t, &serveConfig{
			DB: "file.db", Addr: "127.0.0.1:1", MaxBodyBytes: 100, Trace: true,
			Tokens: map[string][]string{"file.token.with.dots": {"admin"}},
			Log:    logConfig{Format: "json", Level: "warn"},
			HTTP:   httpConfig{AllowHosts: []string{"api.example.com", "*.example.org"}, Timeout: 5 * time.Second},
		}, cfg)

		env := []string{
			"ORDO_ADDR=127.0.0.1:2", "ORDO_LOG_LEVEL=debug", "ORDO_MAX_BODY_BYTES=200",
			"ORDO_HTTP_ALLOW_HOSTS=a.example.com, 10.0.0.0/8", "ORDO_HTTP_ALLOW_PRIVATE=true",
			"ORDO_TOKENS=env-token=reader", "ORDO_TRACE=false",
			"ORDO_SERVER=http://elsewhere", "ORDO_TOKEN=client", "ORDO_DB=", // not settings, or empty
			"HOME=/root",
		}
		cfg, err = loadWith(t, file, env)
		require.NoError(t, err)
		require.Equal(t, "file.db", cfg.DB, "an empty variable sets nothing")
		require.Equal(t, "127.0.0.1:2", cfg.Addr)
		require.Equal(t, "debug", cfg.Log.Level)
		require.Equal(t, "json", cfg.Log.Format)
		require.Equal(t, int64(200), cfg.MaxBodyBytes)
		require.Equal(t, []string{"a.example.com", "10.0.0.0/8"}, cfg.HTTP.AllowHosts)
		require.True(t, cfg.HTTP.AllowPrivate)
		require.False(t, cfg.Trace)
		require.Equal(t, map[string][]string{"file.token.with.dots": {"admin"}, "env-token": {"reader"}}, cfg.Tokens, "tokens are merged")

		cfg, err = loadWith(t, file, env, "--addr", "127.0.0.1:3", "--log-level", "error", "--log-format", "text",
			"--http-allow-host", "x.example.com", "--http-allow-host", "y.example.com:8443", "--http-timeout", "2s", "--trace")
		require.NoError(t, err)
		require.Equal(t, "127.0.0.1:3", cfg.Addr)
		require.Equal(t, logConfig{Format: "text", Level: "error"}, cfg.Log)
		require.Equal(t, []string{"x.example.com", "y.example.com:8443"}, cfg.HTTP.AllowHosts)
		require.Equal(t, 2*time.Second, cfg.HTTP.Timeout)
		require.True(t, cfg.Trace)
		require.Equal(t, int64(200), cfg.MaxBodyBytes, "a flag not given does not override")
		require.NoError(t, cfg.checkObservability())
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			file string
			env  []string
			args []string
			want string
		}{
			{file: "adress: x\n", want: `unknown setting "adress"`},
			{file: "log:\n  colour: red\n", want: `unknown setting "log.colour"`},
			{file: "http:\n  allowhosts: [a]\n", want: `unknown setting "http.allowhosts"`},
			{file: "maxBodyBytes: lots\n", want: "maxBodyBytes"},
			{file: "http:\n  timeout: soon\n", want: "http.timeout"},
			{file: "db: [unclosed\n", want: "config"},
			{env: []string{"ORDO_MAX_BODY_BYTES=many"}, want: "maxBodyBytes"},
			{env: []string{"ORDO_TOKENS=nope"}, want: "TOKEN=ROLE"},
		} {
			_, err := loadWith(t, tc.file, tc.env, tc.args...)
			require.ErrorContains(t, err, tc.want, "%+v", tc)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--log-format", "xml"}, `log format "xml"`},
			{[]string{"--log-level", "loud"}, `log level "loud"`},
			{[]string{"--http-allow-host", "a b"}, "http.allowHosts"},
			{[]string{"--http-timeout", "-1s"}, "http.timeout"},
		} {
			cfg, err := loadWith(t, "", nil, tc.args...)
			require.NoError(t, err)
			require.ErrorContains(t, cfg.checkObservability(), tc.want, "%v", tc.args)
		}
	})
}
