package ordosqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Checkpoints. SQLite checkpoints the WAL (copies its pages into the
// database file and fsyncs it) on its own when the WAL passes a size, inside
// whichever commit crosses it: with one writer, that stalls every
// transition waiting in the group commit. The store runs PASSIVE
// checkpoints on a connection of their own every checkpointEvery, which
// copy pages into the database file without blocking the writer. Under
// sustained writes they cannot quite catch up (the writer keeps appending),
// so the WAL is restarted by SQLite's own checkpoint when it reaches
// autoCheckpointPages; by then the background checkpoints have copied
// nearly everything and that commit is short. The WAL file therefore stays
// under about autoCheckpointPages × 4 KiB (80 MiB); when writes pause, the
// background checkpoint completes and the WAL starts over.
const (
	checkpointEvery = 200 * time.Millisecond
	// autoCheckpointPages is the writer's wal_autocheckpoint (SQLite's
	// default is 1000 pages).
	autoCheckpointPages = 20000
)

// startCheckpointer runs PASSIVE checkpoints until stop is closed, and
// closes done when it has stopped.
func (s *Store) startCheckpointer(db *sql.DB) {
	s.ckptStop = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go func() {
		defer close(s.ckptDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ckptStop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			cancel()
			if err != nil {
				s.logger.Warn("background checkpoint failed", slog.String("path", s.path), slog.Any("error", err))
			}
		}
	}()
}

// stopCheckpointer stops the checkpointer and waits for it.
func (s *Store) stopCheckpointer() {
	if s.ckptStop == nil {
		return
	}
	close(s.ckptStop)
	<-s.ckptDone
	s.ckptStop = nil
}
