//! The one-time sealing of a store written before personal data was
//! encrypted (issue 18).
//!
//! The events table is append-only, and this is its one documented
//! exception: at the first start of this release, every event whose
//! declared personal fields are stored in clear gets its payload rewritten
//! into the sealed form, in place, under the same position, sequence, type,
//! metadata and recorded time. Nothing else changes and nothing is deleted.
//!
//! 1. Outside any transaction, the key of every owner is made (so that the
//!    rewriting transaction only reads keys).
//! 2. In one transaction on a fully durable connection: the append-only
//!    trigger is lifted, each payload is sealed and written back, each
//!    written row is read back, opened and compared with the old payload
//!    (the proof), the trigger is put back, and a row of
//!    `encryption_migrations` records counts and digests. Any difference
//!    rolls everything back and the service does not start.
//! 3. The old plaintext is then purged from the store's files: SQLite
//!    overwrites freed space (`secure_delete`) and its log is truncated;
//!    PostgreSQL rewrites the table (`VACUUM FULL events`).
//!
//! Access-trail records are not rewritten: their seals (and the witness's
//! signatures) cover their payload text byte for byte. Their details stay as
//! they were written (`docs/privacy.md` says what that leaves).
//!
//! A store with a row in `encryption_migrations` is never scanned again;
//! a new store gets its row (of nothing sealed) at its first start.

use domain::personal;
use projections::vault::{self, Ident, Vault};
use projections::Backend;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Executor, Row};

use crate::error::ApiError;

/// What one run of the migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Events of the types that have personal fields.
    pub events: i64,
    /// Of those, payloads sealed now.
    pub sealed: i64,
    /// SHA-256 of the old payloads of the sealed events, in position order
    /// (canonical JSON); the same digest over the rewritten payloads opened.
    pub digest: String,
}

/// Events read per round trip.
const PAGE: i64 = 2_000;

/// The aggregate types rewritten: those with personal fields, but the trail.
fn rewritten_types() -> Vec<&'static str> {
    domain::declarations::all()
        .into_iter()
        .filter(|d| d.aggregate_type != domain::trail::AGGREGATE_TYPE)
        .filter(|d| d.events.iter().any(|e| !e.personal.is_empty()))
        .map(|d| d.aggregate_type)
        .collect()
}

/// One stored event, as the migration reads it.
struct Plain {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    payload: serde_json::Value,
    actor: String,
    organisation: String,
}

async fn page(
    conn: &mut AnyConnection,
    backend: Backend,
    after: i64,
) -> Result<Vec<Plain>, ApiError> {
    let listed = rewritten_types()
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, {payload} AS payload, \
         {metadata} AS metadata FROM events WHERE position > $1 AND aggregate_type IN ({listed}) \
         ORDER BY position LIMIT $2",
        payload = backend.json_text("payload"),
        metadata = backend.json_text("metadata"),
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let payload: String = row.try_get("payload")?;
            let metadata: String = row.try_get("metadata")?;
            let metadata: serde_json::Value = serde_json::from_str(&metadata)
                .map_err(|e| ApiError::internal(format!("event metadata: {e}")))?;
            Ok(Plain {
                position: row.try_get("position")?,
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| ApiError::internal(format!("event payload: {e}")))?,
                actor: metadata
                    .get("actor_id")
                    .and_then(|a| a.as_str())
                    .unwrap_or_default()
                    .to_string(),
                organisation: metadata
                    .get("organisation")
                    .and_then(|a| a.as_str())
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect()
}

/// True when the event holds personal data in clear.
fn holds_plain(event: &Plain) -> bool {
    let Some(declared) = domain::declarations::declared(&event.aggregate_type, &event.event_type)
    else {
        return false;
    };
    if declared.personal.is_empty() || vault::may_be_sealed(&event.payload.to_string()) {
        return false;
    }
    let mut payload = event.payload.clone();
    let Some(fields) = personal::fields_of(&mut payload, &event.event_type) else {
        return false;
    };
    // A text the service wrote itself has no owner and stays clear.
    let owned = vault::owner_of(declared, &event.aggregate_id, &event.actor, fields)
        .is_ok_and(|owner| owner.is_some());
    owned
        && declared.personal.iter().any(|p| {
            personal::take(fields, p.path).is_some_and(|v| !(v.is_null() || v.as_str() == Some("")))
        })
}

fn ident(event: &Plain) -> Ident<'_> {
    Ident {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: event.sequence,
        event_type: &event.event_type,
    }
}

/// Seals every plain personal field of a store written before encryption,
/// once (see the module's documentation). `None` when it ran before.
pub async fn seal_existing(
    url: &str,
    backend: Backend,
    vault: &Vault,
) -> Result<Option<Outcome>, ApiError> {
    let mut conn = crate::trail::connect(url, backend).await?;
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA secure_delete = ON").await?;
    }
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM encryption_migrations")
        .fetch_one(&mut conn)
        .await?;
    if done > 0 {
        return Ok(None);
    }
    let started = projections::db::ts(chrono::Utc::now());
    // 1. Every owner's key, outside the transaction.
    let (mut after, mut plain) = (0, 0i64);
    loop {
        let events = page(&mut conn, backend, after).await?;
        let Some(last) = events.last() else { break };
        after = last.position;
        for event in events.iter().filter(|e| holds_plain(e)) {
            plain += 1;
            let mut payload = event.payload.clone();
            let declared = domain::declarations::declared(&event.aggregate_type, &event.event_type)
                .ok_or_else(|| ApiError::internal("undeclared event"))?;
            let fields = personal::fields_of(&mut payload, &event.event_type)
                .ok_or_else(|| ApiError::internal("a payload that is not an object"))?;
            let owner = vault::owner_of(declared, &event.aggregate_id, &event.actor, fields)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some(owner) = owner {
                vault
                    .prepare(&vault::key_id(&event.organisation, owner))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
        }
    }
    if plain > 0 {
        tracing::warn!(
            events = plain,
            "sealing personal data written before encryption (one-time migration, docs/privacy.md)"
        );
    }
    // 2. One transaction: rewrite, prove, record.
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    conn.execute(begin).await?;
    let outcome = rewrite(&mut conn, backend, vault, &started).await;
    match outcome {
        Ok(outcome) => {
            conn.execute("COMMIT").await?;
            // 3. The old plaintext out of the files.
            if outcome.sealed > 0 {
                match backend {
                    Backend::Sqlite => {
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
                    }
                    Backend::Postgres => {
                        conn.execute("VACUUM FULL events").await?;
                    }
                }
                tracing::warn!(
                    events = outcome.events,
                    sealed = outcome.sealed,
                    digest = %outcome.digest,
                    "sealed the store's personal data; every rewritten event opened to its old payload"
                );
            }
            Ok(Some(outcome))
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn rewrite(
    conn: &mut AnyConnection,
    backend: Backend,
    vault: &Vault,
    started: &str,
) -> Result<Outcome, ApiError> {
    // The one exception to append-only, inside this transaction.
    let trigger: Option<String> = match backend {
        Backend::Sqlite => {
            let sql: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'",
            )
            .fetch_one(&mut *conn)
            .await?;
            conn.execute("DROP TRIGGER events_no_update").await?;
            Some(sql)
        }
        Backend::Postgres => {
            conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
                .await?;
            None
        }
    };
    let update = match backend {
        Backend::Postgres => "UPDATE events SET payload = CAST($1 AS json) WHERE position = $2",
        Backend::Sqlite => "UPDATE events SET payload = $1 WHERE position = $2",
    };
    let read_back = format!(
        "SELECT {} AS payload FROM events WHERE position = $1",
        backend.json_text("payload")
    );
    let (mut before, mut opened_digest) = (Sha256::new(), Sha256::new());
    let (mut after, mut events, mut sealed) = (0, 0i64, 0i64);
    loop {
        let page = page(conn, backend, after).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        events += page.len() as i64;
        for event in page.iter().filter(|e| holds_plain(e)) {
            let mut payload = event.payload.clone();
            vault
                .seal(
                    ident(event),
                    &event.actor,
                    &event.organisation,
                    &mut payload,
                )
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            sqlx::query(update)
                .bind(payload.to_string())
                .bind(event.position)
                .execute(&mut *conn)
                .await?;
            // The proof: what is stored now opens to what was stored.
            let mut stored: String = sqlx::query_scalar(&read_back)
                .bind(event.position)
                .fetch_one(&mut *conn)
                .await?;
            if !vault::may_be_sealed(&stored) {
                return Err(ApiError::internal(format!(
                    "event {} was not sealed by the migration",
                    event.position
                )));
            }
            vault
                .open_all(&mut [(ident(event), &mut stored)])
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let opened: serde_json::Value = serde_json::from_str(&stored)
                .map_err(|e| ApiError::internal(format!("event {}: {e}", event.position)))?;
            if opened != event.payload {
                return Err(ApiError::internal(format!(
                    "event {} does not open to its old payload; nothing was changed",
                    event.position
                )));
            }
            before.update(event.payload.to_string().as_bytes());
            opened_digest.update(opened.to_string().as_bytes());
            sealed += 1;
        }
    }
    let (before, opened) = (
        hex::encode(before.finalize()),
        hex::encode(opened_digest.finalize()),
    );
    if before != opened {
        return Err(ApiError::internal(
            "the sealed events do not open to the old payloads; nothing was changed",
        ));
    }
    match trigger {
        Some(sql) => {
            conn.execute(sql.as_str()).await?;
        }
        None => {
            conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")
                .await?;
        }
    }
    let proof = serde_json::json!({
        "rewritten_types": rewritten_types(),
        "events_read": events,
        "sealed": sealed,
        "sha256_of_old_payloads": before,
        "sha256_of_sealed_payloads_opened": opened,
        "trail_records": "not rewritten (their seals cover their text)",
    })
    .to_string();
    sqlx::query(
        "INSERT INTO encryption_migrations (started_at, finished_at, events, sealed, proof) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(started)
    .bind(projections::db::ts(chrono::Utc::now()))
    .bind(events)
    .bind(sealed)
    .bind(proof)
    .execute(&mut *conn)
    .await?;
    Ok(Outcome {
        events,
        sealed,
        digest: before,
    })
}
