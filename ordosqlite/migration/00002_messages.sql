-- Messages kept for receive steps, and the slots of deferred workflows.

-- +goose Up
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    payload     BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- '' while the message waits for a receive step.
    consumed_by TEXT    NOT NULL DEFAULT ''
) STRICT;
-- A message is kept once: a second with the same ID is a duplicate.
CREATE UNIQUE INDEX messages_message_id ON messages (name, message_id);
-- ListMessages: the waiting messages of one name and key, oldest first.
CREATE INDEX messages_waiting ON messages (name, key, id) WHERE consumed_by = '';
-- ExpireMessages.
CREATE INDEX messages_expires_at ON messages (expires_at);

-- One row per slot taken in a group (deferred workflows: concurrencyKey
-- and maxConcurrent).
CREATE TABLE slots (
    grp        TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (grp, holder)
) STRICT;

-- +goose Down
DROP TABLE slots;
DROP TABLE messages;
