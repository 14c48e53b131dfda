package ordocli

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/ordoflow/ordo/server"
)

// keyDelim separates the parts of a configuration key ("log::level"). It
// is not "." because bearer tokens, which are keys of the tokens map, may
// hold dots.
const keyDelim = "::"

// logConfig is the logging part of the configuration.
type logConfig struct {
	// Format is text or json.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// httpConfig is what http steps and http side effects may call.
type httpConfig struct {
	// AllowHosts lists the hosts they may call (see server.HTTPPolicy);
	// empty allows every public address.
	AllowHosts []string `yaml:"allowHosts"`
	// AllowPrivate lets them call loopback, private and link-local
	// addresses.
	AllowPrivate bool `yaml:"allowPrivate"`
	// Timeout bounds each call; a step's own timeout can only make it
	// shorter. Defaults to 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// envKeys maps the environment variables `ordo server` reads to
// configuration keys. ORDO_TOKENS is read apart (TOKEN=ROLE,...).
var envKeys = map[string]string{
	"ORDO_DB":                 "db",
	"ORDO_SCHEMA":             "schema",
	"ORDO_MIGRATE":            "migrate",
	"ORDO_ROLES":              "roles",
	"ORDO_ADDR":               "addr",
	"ORDO_INSECURE":           "insecure",
	"ORDO_MAX_BODY_BYTES":     "maxBodyBytes",
	"ORDO_LOG_FORMAT":         "log::format",
	"ORDO_LOG_LEVEL":          "log::level",
	"ORDO_HTTP_ALLOW_HOSTS":   "http::allowHosts",
	"ORDO_HTTP_ALLOW_PRIVATE": "http::allowPrivate",
	"ORDO_HTTP_TIMEOUT":       "http::timeout",
	"ORDO_TRACE":              "trace",
	"ORDO_TASK_LEASE":         "taskLease",
	"ORDO_LEASE":              "leaseDuration",
	"ORDO_NODE_ID":            "nodeId",
}

// flagKeys maps the flags of `ordo server` to configuration keys. A flag
// not listed here (--config, --check-config) is not a setting.
var flagKeys = map[string]string{
	"db":                 "db",
	"schema":             "schema",
	"migrate":            "migrate",
	"roles":              "roles",
	"addr":               "addr",
	"insecure":           "insecure",
	"max-body-bytes":     "maxBodyBytes",
	"log-format":         "log::format",
	"log-level":          "log::level",
	"http-allow-host":    "http::allowHosts",
	"http-allow-private": "http::allowPrivate",
	"http-timeout":       "http::timeout",
	"trace":              "trace",
	"task-lease":         "taskLease",
	"lease":              "leaseDuration",
	"node-id":            "nodeId",
}

// configDefaults are the settings when nothing sets them.
var configDefaults = map[string]any{
	"addr":          server.DefaultAddr,
	"log::format":   "text",
	"log::level":    "info",
	"http::timeout": "30s",
}

// loadServeConfig reads the configuration of `ordo server`: flags (only
// those given) override environment variables (environ, ORDO_*), which
// override the YAML file at path (when not ""), which overrides the
// defaults. Tokens from the file and the environment are merged. Unknown
// keys in the file, and values of the wrong type, are errors that name
// the key.
func loadServeConfig(flags *pflag.FlagSet, path string, environ []string) (*serveConfig, error) {
	k := koanf.New(keyDelim)
	for key, v := range configDefaults {
		if err := k.Set(key, v); err != nil {
			return nil, err
		}
	}
	if path != "" {
		kf, err := loadFile(path)
		if err != nil {
			return nil, err
		}
		if err := k.Merge(kf); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	var envErr error
	err := k.Load(env.Provider(keyDelim, env.Opt{
		Prefix:      "ORDO_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			if name == "ORDO_TOKENS" {
				toks, err := parseTokens(value)
				if err != nil {
					envErr = err
					return "", nil
				}
				m := make(map[string]any, len(toks))
				for tok, roles := range toks {
					m[tok] = roles
				}
				return "tokens", m
			}
			key := envKeys[name]
			if key == "" || value == "" {
				return "", nil // ORDO_SERVER, ORDO_TOKEN and the like are the client's
			}
			if key == "http::allowHosts" {
				return key, splitList(value)
			}
			return key, value
		},
	}), nil)
	if err == nil {
		err = envErr
	}
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if flags != nil {
		err := k.Load(posflag.ProviderWithFlag(flags, keyDelim, nil, func(f *pflag.Flag) (string, any) {
			key := flagKeys[f.Name]
			if key == "" {
				return "", nil
			}
			return key, posflag.FlagVal(flags, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("flags: %w", err)
		}
	}
	cfg, err := unmarshalConfig(k)
	if err != nil {
		return nil, err
	}
	if cfg.Tokens == nil {
		cfg.Tokens = map[string][]string{}
	}
	return cfg, nil
}

// loadConfigFile reads a YAML config file alone, without defaults,
// environment or flags. Unknown keys are errors.
func loadConfigFile(path string) (*serveConfig, error) {
	k, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := unmarshalConfig(k)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// loadFile reads the YAML file at path, refusing keys that are not
// settings.
func loadFile(path string) (*koanf.Koanf, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	k := koanf.New(keyDelim)
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	known := configKeys(reflect.TypeFor[serveConfig](), "")
	var unknown []string
	for _, key := range k.Keys() {
		if !known.allows(key) {
			unknown = append(unknown, strings.ReplaceAll(key, keyDelim, "."))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("config %s: unknown setting %s (known: %s)", path, quoteList(unknown), strings.Join(known.names(), ", "))
	}
	return k, nil
}

// unmarshalConfig decodes k into a serveConfig. Strings (from the
// environment) are converted to the fields' types.
func unmarshalConfig(k *koanf.Koanf) (*serveConfig, error) {
	var cfg serveConfig
	err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{
		Tag: "yaml",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				mapstructure.StringToTimeDurationHookFunc(),
				mapstructure.StringToSliceHookFunc(","),
			),
			WeaklyTypedInput: true,
			ErrorUnused:      true,
			Result:           &cfg,
			TagName:          "yaml",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("configuration: %s", strings.ReplaceAll(cleanDecodeError(err), keyDelim, "."))
	}
	return &cfg, nil
}

// cleanDecodeError turns mapstructure's multi-line error into one line.
func cleanDecodeError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):")
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// keySet is the set of valid configuration keys: exact keys, and prefixes
// under which any key is valid (the entries of a map).
type keySet struct {
	exact, maps map[string]bool
}

func (s keySet) allows(key string) bool {
	if s.exact[key] {
		return true
	}
	for m := range s.maps {
		if key == m || strings.HasPrefix(key, m+keyDelim) {
			return true
		}
	}
	return false
}

func (s keySet) names() []string {
	var out []string
	for k := range s.exact {
		out = append(out, strings.ReplaceAll(k, keyDelim, "."))
	}
	for k := range s.maps {
		out = append(out, strings.ReplaceAll(k, keyDelim, "."))
	}
	sort.Strings(out)
	return out
}

// configKeys lists the keys of a config struct from its yaml tags.
func configKeys(t reflect.Type, prefix string) keySet {
	s := keySet{exact: map[string]bool{}, maps: map[string]bool{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		switch f.Type.Kind() {
		case reflect.Struct:
			if f.Type == reflect.TypeFor[time.Time]() {
				s.exact[key] = true
				continue
			}
			sub := configKeys(f.Type, key+keyDelim)
			for k := range sub.exact {
				s.exact[k] = true
			}
			for k := range sub.maps {
				s.maps[k] = true
			}
		case reflect.Map:
			s.maps[key] = true
		default:
			s.exact[key] = true
		}
	}
	return s
}

func quoteList(keys []string) string {
	slices.Sort(keys)
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// checkObservability checks the log and http settings.
func (c *serveConfig) checkObservability() error {
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log format %q is not text or json", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return err
	}
	if c.HTTP.Timeout < 0 {
		return errors.New("http.timeout must not be negative")
	}
	return c.httpPolicy().Validate()
}

// httpPolicy is where the engine's http steps and effects may connect.
func (c *serveConfig) httpPolicy() *server.HTTPPolicy {
	return &server.HTTPPolicy{AllowHosts: c.HTTP.AllowHosts, AllowPrivate: c.HTTP.AllowPrivate}
}
