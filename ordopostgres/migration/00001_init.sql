-- The initial schema. Every table is created in the store's schema (the
-- connection's search_path). Times are bigint Unix nanoseconds (UTC), as in
-- the SQLite driver; docs/storage.md explains every table and index.

-- +goose Up
CREATE TABLE definitions (
    name       text COLLATE "C" NOT NULL,
    version    integer          NOT NULL CHECK (version > 0),
    hash       text             NOT NULL,
    source     bytea            NOT NULL,
    created_at bigint           NOT NULL,
    PRIMARY KEY (name, version)
);

-- IDs compare byte by byte (COLLATE "C"), as in SQLite: newest first is ID
-- descending whatever the database's locale.
CREATE TABLE instances (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    workflow        text             NOT NULL,
    version         integer          NOT NULL,
    status          text             NOT NULL,
    idempotency_key text,
    business_key    text,
    parent_id       text COLLATE "C",
    seq             bigint           NOT NULL CHECK (seq >= 0),
    state           bytea,
    created_at      bigint           NOT NULL,
    updated_at      bigint           NOT NULL,
    finished_at     bigint
);

-- One instance per (workflow, idempotency key); serves GetInstanceByKey.
CREATE UNIQUE INDEX instances_idempotency_key ON instances (workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- ListInstances filters, each giving rows newest first (ID descending).
CREATE INDEX instances_status ON instances (status, id);
CREATE INDEX instances_workflow ON instances (workflow, id);
CREATE INDEX instances_business_key ON instances (business_key, id)
    WHERE business_key IS NOT NULL;
CREATE INDEX instances_created_at ON instances (created_at);

-- The primary key keeps each journal gapless and serves ListEvents.
CREATE TABLE events (
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    seq         bigint           NOT NULL CHECK (seq > 0),
    type        text             NOT NULL,
    step_id     text             NOT NULL,
    attempt     integer          NOT NULL,
    data        bytea,
    created_at  bigint           NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

-- A sequence never gives an ID twice, so a late completion of a deleted
-- task can never match a newer task. A claim updates only columns that no
-- index holds, so it is a HOT update: the fillfactor leaves room for it on
-- the row's page.
CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind        text             NOT NULL,
    queue       text             NOT NULL,
    step_id     text             NOT NULL,
    attempt     integer          NOT NULL,
    payload     bytea,
    due_at      bigint           NOT NULL,
    -- '' and 0 when not leased.
    lease_owner text             NOT NULL DEFAULT '',
    lease_until bigint           NOT NULL DEFAULT 0,
    claim       integer          NOT NULL DEFAULT 0,
    created_at  bigint           NOT NULL
) WITH (fillfactor = 80);

-- Claims and NextTaskDue for one kind and one queue, in (due_at, id) order.
CREATE INDEX tasks_kind_queue_due ON tasks (kind, queue, due_at, id);
-- Claims and NextTaskDue for one kind and any queue, in (due_at, id) order.
CREATE INDEX tasks_kind_due ON tasks (kind, due_at, id);
-- CountTasks by instance, and the ON DELETE CASCADE from instances.
CREATE INDEX tasks_instance_id ON tasks (instance_id);

-- +goose Down
DROP TABLE tasks;
DROP TABLE events;
DROP TABLE instances;
DROP TABLE definitions;
