package ordocli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/ordopostgres"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
)

// maintenanceCommands are the commands that work on a store directly.
func maintenanceCommands() []*cobra.Command { return []*cobra.Command{newMigrate(), newPrune()} }

func newMigrate() *cobra.Command {
	var (
		spec   storeSpec
		output string
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations and print its version",
		Long: `Apply the schema migrations embedded in this build to a store: an SQLite
file (created if missing; not while a server has it open) or a PostgreSQL
schema (created if missing). Several processes may migrate one schema at
once: they take turns on an advisory lock. A schema newer than this build is
an error. Servers started with --migrate=false need this first.`,
		Example: "  ordo migrate --db 'postgres://ordo@db/ordo' --schema ordo\n  ordo migrate --db /var/lib/ordo/ordo.db",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := spec.check(); err != nil {
				return &usageError{err}
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			var from, to int64
			var err error
			if isPostgres(spec.DB) {
				from, to, err = ordopostgres.MigrateVersions(cmd.Context(), spec.DB, &ordopostgres.Config{Schema: spec.Schema, Logger: logger})
			} else {
				from, to, err = ordosqlite.Migrate(cmd.Context(), spec.DB, &ordosqlite.Config{Logger: logger})
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"db": spec.describe(), "from": from, "to": to})
			}
			if from == to {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: at version %d, up to date\n", spec.describe(), to)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: migrated from version %d to %d\n", spec.describe(), from, to)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.DB, "db", "", "SQLite file or postgres:// URL")
	f.StringVar(&spec.Schema, "schema", "", "PostgreSQL schema (default public)")
	addOutput(cmd, &output)
	return cmd
}

func newPrune() *cobra.Command {
	var (
		spec      storeSpec
		olderThan string
		batch     int
		dryRun    bool
		output    string
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete finished instances, with their journals, that finished before a cutoff",
		Long: `Delete the instances that are completed, failed, compensated or cancelled
and finished more than --older-than ago, with their journals and tasks, in
batches of --batch instances, each in its own short transaction, so that
running engines are not held up. Instances that are running, waiting or in
review are never deleted. Run it from cron against a live store; on
PostgreSQL, autovacuum then reclaims the space (docs/operations.md).`,
		Example: "  ordo prune --db 'postgres://ordo@db/ordo' --schema ordo --older-than 30d\n  ordo prune --db ordo.db --older-than 2w --dry-run",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Migrate = false
			if err := spec.check(); err != nil {
				return &usageError{err}
			}
			if !isPostgres(spec.DB) {
				if _, err := os.Stat(spec.DB); err != nil {
					return &usageError{fmt.Errorf("--db: %w", err)}
				}
			}
			if olderThan == "" {
				return &usageError{errors.New("--older-than is required (such as 30d)")}
			}
			age, err := parseAge(olderThan)
			if err != nil {
				return &usageError{fmt.Errorf("--older-than: %w", err)}
			}
			if batch <= 0 {
				return &usageError{fmt.Errorf("--batch must be positive, got %d", batch)}
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			store, err := spec.open(cmd.Context(), logger)
			if err != nil {
				return err
			}
			defer store.Close()
			cutoff := time.Now().Add(-age).UTC()
			n, err := store.PruneInstances(cmd.Context(), &ordostore.PruneParams{FinishedBefore: cutoff, Batch: batch, DryRun: dryRun})
			if err != nil {
				if n > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "deleted %d instances before the error\n", n)
				}
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"finishedBefore": cutoff, "dryRun": dryRun, "instances": n})
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d finished instances (finished before %s) with their journals\n", verb, n, cutoff.Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.DB, "db", "", "SQLite file or postgres:// URL")
	f.StringVar(&spec.Schema, "schema", "", "PostgreSQL schema (default public)")
	f.StringVar(&olderThan, "older-than", "", "delete instances finished longer ago than this: 30d, 2w, 1d12h, 720h")
	f.IntVar(&batch, "batch", ordostore.DefaultPruneBatch, "instances deleted per transaction")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	addOutput(cmd, &output)
	return cmd
}
