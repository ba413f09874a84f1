-- Issue 18: each person's key, wrapped under the master key (which is not
-- in the database). `wrapped` is NULL once the person is erased: the row
-- stays so that no new key is ever made for them.
CREATE TABLE person_keys
(
    person_id  text NOT NULL PRIMARY KEY,
    wrapped    text,
    created_at text NOT NULL,
    erased_at  text
);

-- Issue 18: the one-time sealing of events written before encryption, one
-- row per run (docs/privacy.md).
CREATE TABLE encryption_migrations
(
    id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  text    NOT NULL,
    finished_at text    NOT NULL,
    events      bigint  NOT NULL,
    sealed      bigint  NOT NULL,
    proof       text    NOT NULL
);
