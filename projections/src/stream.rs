//! The global event stream: every event of every aggregate, in one safe order.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Backend, Db, DbError};

/// A reader's place in the global stream. Events are ordered by
/// `(tx_id, position)`; on SQLite `tx_id` is always 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Checkpoint {
    pub tx_id: i64,
    pub position: i64,
}

/// Who caused an event and on which request. Stored as the event's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub actor_id: String,
    pub actor_role: String,
    pub organisation: String,
    pub request_id: String,
    /// Unique per command: one HTTP request may carry several mutations.
    #[serde(default)]
    pub command_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Hash of the request (mutation and arguments) the key came with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_fingerprint: Option<String>,
}

impl EventMetadata {
    /// The metadata as the string map cqrs-es stores.
    pub fn to_map(&self) -> std::collections::HashMap<String, String> {
        let mut map = std::collections::HashMap::from([
            ("actor_id".to_string(), self.actor_id.clone()),
            ("actor_role".to_string(), self.actor_role.clone()),
            ("organisation".to_string(), self.organisation.clone()),
            ("request_id".to_string(), self.request_id.clone()),
            ("command_id".to_string(), self.command_id.clone()),
        ]);
        if let Some(key) = &self.idempotency_key {
            map.insert("idempotency_key".to_string(), key.clone());
        }
        if let Some(fingerprint) = &self.idempotency_fingerprint {
            map.insert("idempotency_fingerprint".to_string(), fingerprint.clone());
        }
        map
    }
}

/// One event as stored, with its place in the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub checkpoint: Checkpoint,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event as stored (JSON text); decoded only by those who need it.
    pub payload: String,
    pub metadata: EventMetadata,
    /// When the store recorded it (RFC 3339, UTC).
    pub recorded_at: String,
}

impl StoredEvent {
    /// Decodes the payload as an aggregate's event type.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, DbError> {
        serde_json::from_str(&self.payload).map_err(|e| DbError::Corrupt {
            position: self.checkpoint.position,
            reason: e.to_string(),
        })
    }
}

const COLUMNS_PG: &str = "position, tx_id::text::bigint AS tx_id, aggregate_type, aggregate_id, \
    sequence, event_type, event_version, payload::text AS payload, metadata::text AS metadata, \
    to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at";
const COLUMNS_SQLITE: &str =
    "position, tx_id, aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata, recorded_at";

fn columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => COLUMNS_PG,
        Backend::Sqlite => COLUMNS_SQLITE,
    }
}

/// Reads up to `limit` events after `after`, in global order, never returning
/// an event while an earlier one may still commit.
pub async fn read_batch(
    db: &Db,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, DbError> {
    opened(db, read_batch_sealed(db, after, limit).await?).await
}

/// [`read_batch`] with payloads as stored: personal fields still sealed, for
/// a reader that chooses events by their clear fields and opens only those
/// it keeps ([`open_events`]).
pub async fn read_batch_sealed(
    db: &Db,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, DbError> {
    let rows = match db.backend {
        // Only transactions older than every running one are certain to be
        // complete: below pg_snapshot_xmin nothing can still appear. The ORDER
        // BY names the table's columns: the output alias `tx_id` is a bigint
        // expression, and sorting by it would defeat the index and sort every
        // remaining event for each batch.
        Backend::Postgres => {
            let sql = format!(
                "SELECT {COLUMNS_PG} FROM events \
                 WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) \
                   AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY events.tx_id, events.position LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(after.tx_id)
                .bind(after.position)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
        // One writer at a time: a committed position means all lower ones are too.
        Backend::Sqlite => {
            let sql = format!(
                "SELECT {COLUMNS_SQLITE} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
            );
            sqlx::query(&sql)
                .bind(after.position)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
    };
    rows.iter().map(decode_row).collect()
}

/// Events with their personal fields opened (`crate::vault`).
async fn opened(db: &Db, mut events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>, DbError> {
    open_events(db, &mut events).await?;
    Ok(events)
}

/// Opens stored events in place (every read of the stream goes through
/// this), and forgets the keys of people an erasure in them names.
pub async fn open_events(db: &Db, events: &mut [StoredEvent]) -> Result<(), DbError> {
    for event in events.iter() {
        if event.aggregate_type == domain::erasure::ERASURE_TYPE
            && event.event_type == "PersonErased"
        {
            // The erasure stream's id is the person's key id.
            db.vault.forget(&event.aggregate_id);
        }
    }
    let mut items: Vec<(crate::vault::Ident<'_>, &mut String)> = events
        .iter_mut()
        .filter(|e| crate::vault::may_be_sealed(&e.payload))
        .map(|e| {
            (
                crate::vault::Ident {
                    aggregate_type: &e.aggregate_type,
                    aggregate_id: &e.aggregate_id,
                    sequence: e.sequence,
                    event_type: &e.event_type,
                },
                &mut e.payload,
            )
        })
        .collect();
    db.vault.open_all(&mut items).await?;
    Ok(())
}

/// A span of the global stream read for a projection that consumes only
/// some aggregate types: the events of those types, and how far the span
/// went (`to`, `scanned` events of every type).
#[derive(Debug, Default)]
pub struct Span {
    pub events: Vec<StoredEvent>,
    pub to: Checkpoint,
    pub scanned: i64,
}

/// Reads the next `limit` events after `after` as [`read_batch`] would, but
/// hands back only those of `types`: the others are skipped in the database,
/// not sent and decoded (rebuilds of the projections that follow the small
/// aggregates, issue 16). `types` are the code's own constants.
pub async fn read_span(
    db: &Db,
    after: Checkpoint,
    limit: i64,
    types: &[&str],
) -> Result<Span, DbError> {
    let listed = types
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let bound = match db.backend {
        Backend::Postgres => {
            sqlx::query(
                "SELECT tx_id::text::bigint AS tx_id, position, n FROM \
                   (SELECT tx_id, position, COUNT(*) OVER () AS n FROM \
                     (SELECT tx_id, position FROM events \
                      WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) \
                        AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                      ORDER BY tx_id, position LIMIT $3) s) t \
                 ORDER BY t.tx_id DESC, t.position DESC LIMIT 1",
            )
            .bind(after.tx_id)
            .bind(after.position)
            .bind(limit)
            .fetch_optional(&db.pool)
            .await?
        }
        Backend::Sqlite => {
            sqlx::query(
                "SELECT tx_id, position, n FROM \
                   (SELECT tx_id, position, COUNT(*) OVER () AS n FROM \
                     (SELECT tx_id, position FROM events WHERE position > $1 \
                      ORDER BY position LIMIT $2) s) t \
                 ORDER BY t.position DESC LIMIT 1",
            )
            .bind(after.position)
            .bind(limit)
            .fetch_optional(&db.pool)
            .await?
        }
    };
    let Some(bound) = bound else {
        return Ok(Span {
            to: after,
            ..Span::default()
        });
    };
    let to = Checkpoint {
        tx_id: bound.try_get("tx_id")?,
        position: bound.try_get("position")?,
    };
    // Every event up to `to` is certain (it was below the snapshot's xmin).
    let rows = match db.backend {
        Backend::Postgres => {
            let sql = format!(
                "SELECT {COLUMNS_PG} FROM events \
                 WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) \
                   AND (tx_id, position) <= (($3::bigint)::text::xid8, $4) \
                   AND aggregate_type IN ({listed}) \
                 ORDER BY events.tx_id, events.position"
            );
            sqlx::query(&sql)
                .bind(after.tx_id)
                .bind(after.position)
                .bind(to.tx_id)
                .bind(to.position)
                .fetch_all(&db.pool)
                .await?
        }
        Backend::Sqlite => {
            let sql = format!(
                "SELECT {COLUMNS_SQLITE} FROM events WHERE position > $1 AND position <= $2 \
                   AND aggregate_type IN ({listed}) ORDER BY position"
            );
            sqlx::query(&sql)
                .bind(after.position)
                .bind(to.position)
                .fetch_all(&db.pool)
                .await?
        }
    };
    Ok(Span {
        events: opened(db, rows.iter().map(decode_row).collect::<Result<_, _>>()?).await?,
        to,
        scanned: bound.try_get("n")?,
    })
}

/// The payloads (JSON text) of one aggregate's events, oldest first: the
/// least a fold needs.
pub async fn read_payloads(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<String>, DbError> {
    Ok(read_payloads_after(db, aggregate_type, aggregate_id, 0)
        .await?
        .into_iter()
        .map(|(_, payload)| payload)
        .collect())
}

/// The payloads of one aggregate's events after `after` (a sequence
/// number), oldest first, each with its sequence: what an incremental fold
/// needs.
pub async fn read_payloads_after(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let payload = db.backend.json_text("payload");
    let sql = format!(
        "SELECT sequence, {payload} AS payload FROM events WHERE aggregate_type = $1 \
         AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .fetch_all(&db.pool)
        .await?;
    let mut rows = rows
        .iter()
        .map(|row| Ok((row.try_get("sequence")?, row.try_get("payload")?)))
        .collect::<Result<Vec<(i64, String)>, DbError>>()?;
    let mut items: Vec<(i64, &mut String)> = rows.iter_mut().map(|(s, p)| (*s, p)).collect();
    db.vault
        .open_of_aggregate(aggregate_type, aggregate_id, &mut items)
        .await?;
    Ok(rows)
}

/// Every event of one aggregate type as (aggregate id, payload text), in
/// the order they were appended. For small types (studies, enrolments).
pub async fn read_type_payloads(
    db: &Db,
    aggregate_type: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let payload = db.backend.json_text("payload");
    let sql = format!(
        "SELECT aggregate_id, sequence, event_type, {payload} AS payload FROM events \
         WHERE aggregate_type = $1 ORDER BY position"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .fetch_all(&db.pool)
        .await?;
    let mut rows = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("aggregate_id")?,
                row.try_get("sequence")?,
                row.try_get("event_type")?,
                row.try_get("payload")?,
            ))
        })
        .collect::<Result<Vec<(String, i64, String, String)>, DbError>>()?;
    let mut items: Vec<(crate::vault::Ident<'_>, &mut String)> = rows
        .iter_mut()
        .map(|(id, sequence, event_type, payload)| {
            (
                crate::vault::Ident {
                    aggregate_type,
                    aggregate_id: id,
                    sequence: *sequence,
                    event_type,
                },
                payload,
            )
        })
        .collect();
    db.vault.open_all(&mut items).await?;
    Ok(rows
        .into_iter()
        .map(|(id, _, _, payload)| (id, payload))
        .collect())
}

/// Every event of one aggregate, oldest first.
pub async fn read_aggregate(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, DbError> {
    let sql = format!(
        "SELECT {} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        columns(db.backend)
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&db.pool)
        .await?;
    opened(db, rows.iter().map(decode_row).collect::<Result<_, _>>()?).await
}

/// The last `n` events of one aggregate, newest first.
pub async fn read_aggregate_tail(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    n: i64,
) -> Result<Vec<StoredEvent>, DbError> {
    let sql = format!(
        "SELECT {} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         ORDER BY sequence DESC LIMIT $3",
        columns(db.backend)
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(n)
        .fetch_all(&db.pool)
        .await?;
    opened(db, rows.iter().map(decode_row).collect::<Result<_, _>>()?).await
}

/// The event a given aggregate stored at `sequence`, if any.
pub async fn read_at_sequence(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<StoredEvent>, DbError> {
    let sql = format!(
        "SELECT {} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        columns(db.backend)
    );
    let row = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_optional(&db.pool)
        .await?;
    let Some(event) = row.as_ref().map(decode_row).transpose()? else {
        return Ok(None);
    };
    Ok(opened(db, vec![event]).await?.pop())
}

/// Where the last event readable now stands in the global order (the
/// default checkpoint when there is none): a reader that has applied every
/// event is there.
pub async fn last_checkpoint(db: &Db) -> Result<Checkpoint, DbError> {
    let row = match db.backend {
        Backend::Postgres => {
            sqlx::query(
                "SELECT tx_id::text::bigint AS tx_id, position FROM events \
                 WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY events.tx_id DESC, events.position DESC LIMIT 1",
            )
            .fetch_optional(&db.pool)
            .await?
        }
        Backend::Sqlite => {
            sqlx::query("SELECT 0 AS tx_id, position FROM events ORDER BY position DESC LIMIT 1")
                .fetch_optional(&db.pool)
                .await?
        }
    };
    Ok(match row {
        Some(row) => Checkpoint {
            tx_id: row.try_get("tx_id")?,
            position: row.try_get("position")?,
        },
        None => Checkpoint::default(),
    })
}

/// The newest position written, and how many events exist in all.
pub async fn head(db: &Db) -> Result<(i64, i64), DbError> {
    let row = sqlx::query("SELECT COALESCE(MAX(position), 0) AS head, COUNT(*) AS n FROM events")
        .fetch_one(&db.pool)
        .await?;
    Ok((row.try_get("head")?, row.try_get("n")?))
}

/// A checkpoint just before every event not yet certain to be readable: a
/// reader starting here sees what is appended from now on (and perhaps a few
/// events committed just before), without reading the whole stream.
pub async fn live_start(db: &Db) -> Result<Checkpoint, DbError> {
    Ok(match db.backend {
        Backend::Postgres => {
            let xmin: i64 =
                sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                    .fetch_one(&db.pool)
                    .await?;
            Checkpoint {
                tx_id: xmin - 1,
                position: i64::MAX,
            }
        }
        Backend::Sqlite => Checkpoint {
            tx_id: 0,
            position: head(db).await?.0,
        },
    })
}

/// How many events lie after `after` (the lag of a reader there).
pub async fn count_after(db: &Db, after: Checkpoint) -> Result<i64, DbError> {
    let row = match db.backend {
        Backend::Postgres => {
            sqlx::query(
                "SELECT COUNT(*) AS n FROM events WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2)",
            )
            .bind(after.tx_id)
            .bind(after.position)
            .fetch_one(&db.pool)
            .await?
        }
        Backend::Sqlite => {
            sqlx::query("SELECT COUNT(*) AS n FROM events WHERE position > $1")
                .bind(after.position)
                .fetch_one(&db.pool)
                .await?
        }
    };
    Ok(row.try_get("n")?)
}

fn decode_row(row: &sqlx::any::AnyRow) -> Result<StoredEvent, DbError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |reason: String| DbError::Corrupt { position, reason };
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(StoredEvent {
        checkpoint: Checkpoint {
            tx_id: row.try_get("tx_id")?,
            position,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload,
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.try_get("recorded_at")?,
    })
}
