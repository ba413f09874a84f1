-- The event store: cqrs-es's events table, extended with a global order.
--
-- `position` is a unique, increasing number; `tx_id` is the writing transaction.
-- Readers take events in (tx_id, position) order and only below the oldest
-- transaction still running (pg_snapshot_xmin), so an event that commits late
-- can never land behind a reader's checkpoint. See docs/event-store.md.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    position       bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_order ON events (tx_id, position);
CREATE UNIQUE INDEX events_position ON events (position);

-- Events are facts: nothing may change or remove them.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'PX403';
END
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- cqrs-es expects this table to exist even in event-store mode; it stays empty.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Idempotency keys: claimed by the first event a request appends, in the same
-- transaction, so a retried request can never append twice.
CREATE TABLE idempotency_keys
(
    actor_id       text        NOT NULL,
    key            text        NOT NULL,
    request_id     text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    first_sequence bigint      NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (actor_id, key)
);

CREATE FUNCTION events_claim_idempotency_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO idempotency_keys (actor_id, key, request_id, aggregate_type, aggregate_id, first_sequence)
    VALUES (NEW.metadata ->> 'actor_id', NEW.metadata ->> 'idempotency_key', NEW.metadata ->> 'request_id',
            NEW.aggregate_type, NEW.aggregate_id, NEW.sequence)
    ON CONFLICT (actor_id, key) DO NOTHING;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM idempotency_keys
                                  WHERE actor_id = NEW.metadata ->> 'actor_id'
                                    AND key = NEW.metadata ->> 'idempotency_key'
                                    AND request_id = NEW.metadata ->> 'request_id') THEN
        RAISE EXCEPTION 'idempotency key already used' USING ERRCODE = 'PX409';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_idempotency AFTER INSERT ON events
    FOR EACH ROW WHEN ((NEW.metadata ->> 'idempotency_key') IS NOT NULL)
    EXECUTE FUNCTION events_claim_idempotency_key();

-- The projection engine's bookkeeping: which slot of each projection is live,
-- and how far each slot has read the global stream.
CREATE TABLE projection_slots
(
    name        text        NOT NULL PRIMARY KEY,
    active_slot text        NOT NULL,
    version     integer     NOT NULL,
    switched_at text        NOT NULL
);

CREATE TABLE projection_checkpoints
(
    name       text   NOT NULL,
    slot       text   NOT NULL,
    tx_id      bigint NOT NULL,
    position   bigint NOT NULL,
    events     bigint NOT NULL,
    updated_at text   NOT NULL,
    PRIMARY KEY (name, slot)
);
