-- Messages kept for receive steps, and the slots of deferred workflows.

-- +goose Up
CREATE TABLE messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text   NOT NULL,
    key         text   NOT NULL,
    message_id  text   NOT NULL,
    payload     bytea,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    -- '' while the message waits for a receive step.
    consumed_by text COLLATE "C" NOT NULL DEFAULT ''
);
-- A message is kept once: a second with the same ID is a duplicate.
CREATE UNIQUE INDEX messages_message_id ON messages (name, message_id);
-- ListMessages: the waiting messages of one name and key, oldest first.
CREATE INDEX messages_waiting ON messages (name, key, id) WHERE consumed_by = '';
-- ExpireMessages.
CREATE INDEX messages_expires_at ON messages (expires_at);

-- One row per slot taken in a group (deferred workflows: concurrencyKey
-- and maxConcurrent).
CREATE TABLE slots (
    grp        text COLLATE "C" NOT NULL,
    holder     text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (grp, holder)
);

-- +goose Down
DROP TABLE slots;
DROP TABLE messages;
