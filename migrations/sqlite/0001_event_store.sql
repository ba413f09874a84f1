-- The event store: cqrs-es's events table, extended with a global order.
--
-- SQLite lets one writer in at a time, so commit order is `position` order and
-- a reader can never see position N+1 before N. `tx_id` is kept (always 0) so
-- both stores share one read path. See docs/event-store.md.
CREATE TABLE events
(
    position       integer PRIMARY KEY AUTOINCREMENT,
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    tx_id          integer                       NOT NULL DEFAULT 0,
    recorded_at    text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE UNIQUE INDEX events_aggregate_sequence ON events (aggregate_type, aggregate_id, sequence);

-- Events are facts: nothing may change or remove them.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- cqrs-es expects this table to exist even in event-store mode; it stays empty.
CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Idempotency keys: claimed by the first event a request appends, in the same
-- transaction, so a retried request can never append twice.
CREATE TABLE idempotency_keys
(
    actor_id       text    NOT NULL,
    key            text    NOT NULL,
    request_id     text    NOT NULL,
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    first_sequence integer NOT NULL,
    recorded_at    text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (actor_id, key)
);

CREATE TRIGGER events_idempotency AFTER INSERT ON events
    WHEN json_extract(NEW.metadata, '$.idempotency_key') IS NOT NULL
BEGIN
    INSERT INTO idempotency_keys (actor_id, key, request_id, aggregate_type, aggregate_id, first_sequence)
    VALUES (json_extract(NEW.metadata, '$.actor_id'), json_extract(NEW.metadata, '$.idempotency_key'),
            json_extract(NEW.metadata, '$.request_id'), NEW.aggregate_type, NEW.aggregate_id, NEW.sequence)
    ON CONFLICT (actor_id, key) DO NOTHING;
    SELECT RAISE(ABORT, 'idempotency key already used')
     WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys
                        WHERE actor_id = json_extract(NEW.metadata, '$.actor_id')
                          AND key = json_extract(NEW.metadata, '$.idempotency_key')
                          AND request_id = json_extract(NEW.metadata, '$.request_id'));
END;

-- The projection engine's bookkeeping: which slot of each projection is live,
-- and how far each slot has read the global stream.
CREATE TABLE projection_slots
(
    name        text    NOT NULL PRIMARY KEY,
    active_slot text    NOT NULL,
    version     integer NOT NULL,
    switched_at text    NOT NULL
);

CREATE TABLE projection_checkpoints
(
    name       text    NOT NULL,
    slot       text    NOT NULL,
    tx_id      integer NOT NULL,
    position   integer NOT NULL,
    events     integer NOT NULL,
    updated_at text    NOT NULL,
    PRIMARY KEY (name, slot)
);
