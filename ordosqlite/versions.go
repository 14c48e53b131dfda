package ordosqlite

import "context"

// Migrate creates the database file at path if needed and brings its
// schema up to the latest migration this build embeds, as [Open] does,
// and returns the schema's migration version before (0 for a new file) and
// after: what `ordo migrate` prints. Like Open, it fails while another
// process has the file open.
func Migrate(ctx context.Context, path string, cfg *Config) (from, to int64, err error) {
	s, err := Open(ctx, path, cfg)
	if err != nil {
		return 0, 0, err
	}
	from, to = s.versionFrom, s.versionTo
	return from, to, s.Close()
}
