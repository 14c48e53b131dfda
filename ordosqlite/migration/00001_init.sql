-- The initial schema. Times are integer Unix nanoseconds (UTC); docs/storage.md
-- explains every table and why each index exists.

-- +goose Up
CREATE TABLE definitions (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    hash       TEXT    NOT NULL,
    source     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE instances (
    id              TEXT    NOT NULL PRIMARY KEY,
    workflow        TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    idempotency_key TEXT,
    business_key    TEXT,
    parent_id       TEXT,
    seq             INTEGER NOT NULL CHECK (seq >= 0),
    state           BLOB,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;

-- One instance per (workflow, idempotency key); serves GetInstanceByKey.
CREATE UNIQUE INDEX instances_idempotency_key ON instances (workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- ListInstances filters, each giving rows newest first (ID descending).
CREATE INDEX instances_status ON instances (status, id);
CREATE INDEX instances_workflow ON instances (workflow, id);
CREATE INDEX instances_business_key ON instances (business_key, id)
    WHERE business_key IS NOT NULL;
CREATE INDEX instances_created_at ON instances (created_at);

-- The journal. One row holds the events one transition appended, packed
-- (ordosqlite/pack.go), from first_seq to last_seq. A row per event cost a
-- b-tree insert and an index insert per event, the largest part of a group
-- commit; a row per transition halves that. Rows are clustered by an
-- append-only rowid, so a group commit appends to the last pages of the
-- table instead of dirtying one page per instance (each dirty page is a WAL
-- frame written at commit). The unique index keeps one instance's ranges
-- apart and serves ListEvents in seq order.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    first_seq   INTEGER NOT NULL CHECK (first_seq > 0),
    last_seq    INTEGER NOT NULL CHECK (last_seq >= first_seq),
    events      BLOB    NOT NULL
) STRICT;
CREATE UNIQUE INDEX events_instance_seq ON events (instance_id, last_seq);

CREATE TABLE tasks (
    -- AUTOINCREMENT: an ID is never reused, so a late completion of a
    -- deleted task can never match a newer task that got the same ID.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    step_id     TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    payload     BLOB,
    due_at      INTEGER NOT NULL,
    -- '' and 0 when not leased.
    lease_owner TEXT    NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0,
    claim       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;

-- Claims and NextTaskDue filtered by kind and queue, in due order.
CREATE INDEX tasks_kind_queue_due ON tasks (kind, queue, due_at);
-- Claims and NextTaskDue filtered by kind only (any queue), in due order.
CREATE INDEX tasks_kind_due ON tasks (kind, due_at);
-- CountTasks by instance, and the ON DELETE CASCADE from instances.
CREATE INDEX tasks_instance_id ON tasks (instance_id);

-- +goose Down
DROP TABLE tasks;
DROP TABLE events;
DROP TABLE instances;
DROP TABLE definitions;
