package ordopostgres

import (
	"context"
	"encoding/hex"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordoflow/ordo/ordostore"
)

// Wake-ups between nodes. A transaction that inserts tasks nobody leased
// (work for another node, or for later) or hands leases back sends a
// NOTIFY on the schema's channel; it is delivered at commit, and only if
// the transaction commits. Every store that is asked for [Store.Wake]
// LISTENs on the channel on a connection of its own and passes the
// notifications on, so an idle node claims a task made by another node in
// milliseconds instead of at its next poll.

var _ ordostore.Notifier = (*Store)(nil)

// sqlNotify sends a wake-up on channel $1. Notifications with the same
// channel and payload in one transaction are sent once.
const sqlNotify = `SELECT pg_notify($1, '')`

// Backoff of the listener's reconnections.
const (
	listenRetryFirst = 50 * time.Millisecond
	listenRetryMax   = 2 * time.Second
)

// channelName returns the notification channel of schema. A channel name
// is an identifier of at most 63 bytes, so a long schema name is hashed.
func channelName(schema string) string {
	name := "ordo." + schema
	if len(name) <= 63 {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return "ordo." + hex.EncodeToString(h.Sum(nil))
}

// Wake returns the channel that receives a value when a transaction of any
// process on this schema committed unleased tasks or handed leases back;
// see [ordostore.Notifier]. The first call starts listening, on a
// connection outside the pool that is opened again (with backoff) whenever
// it is lost; each new connection also sends a wake-up, for what was
// missed while it was down. Listening stops at [Store.Close].
func (s *Store) Wake() <-chan struct{} {
	s.listenOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.listenCancel = cancel
		s.listenDone = make(chan struct{})
		go s.listen(ctx)
	})
	return s.wake
}

// signal passes a wake-up on, merging it with one still pending.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// listen keeps a LISTEN connection open until ctx ends.
func (s *Store) listen(ctx context.Context) {
	defer close(s.listenDone)
	delay := listenRetryFirst
	for {
		err := s.listenConn(ctx, func() { delay = listenRetryFirst })
		if ctx.Err() != nil {
			return
		}
		s.logger.WarnContext(ctx, "listening for wake-ups failed; listening again",
			slog.String("schema", s.schema), slog.Duration("retry_in", delay), slog.Any("error", err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		delay = min(delay*2, listenRetryMax)
	}
}

// listenConn opens a connection, LISTENs, and passes notifications on
// until the connection fails or ctx ends. connected is called once it
// listens.
func (s *Store) listenConn(ctx context.Context, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	s.signal() // what was committed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.signal()
	}
}

// stopListening stops the listener, if it was started, and waits for it.
func (s *Store) stopListening() {
	s.listenOnce.Do(func() {}) // no listener may start after this
	if s.listenCancel != nil {
		s.listenCancel()
		<-s.listenDone
	}
}
