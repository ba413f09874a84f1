//! The tamper-evident access trail: appending records to their chain, and
//! checking every chain (`portal audit verify`).
//!
//! A record is an `AccessRecorded` event of the `AccessTrail` stream named by
//! its chain (the subject's id, or `org:<name>`). Its payload carries the hash of
//! the chain's previous record; its metadata carries its own hash, an
//! HMAC-SHA256 under the trail key of (chain, sequence, payload text). Without
//! the key nobody can make a record that verifies, so an edited, deleted or
//! inserted row shows as the first record whose hash or link does not match.
//! See docs/access-trail.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use domain::trail::{chain_id, AccessRecord, AGGREGATE_TYPE, EVENT_TYPE, GENESIS};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use projections::{Backend, Db, EventMetadata};
use sha2::Sha256;
use sqlx::AnyConnection;
use sqlx::{Connection, Executor, Row};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::settings::Secret;

/// How often a batch is tried again after another writer appended to one of
/// its chains first (or SQLite was busy).
const ATTEMPTS: usize = 50;
/// Most records written in one transaction.
const BATCH_MAX: usize = 512;
/// Most chain heads remembered between batches.
const HEADS_MAX: usize = 100_000;

/// Resolves once a record is committed (to its global position), or to why
/// it could not be written. The answer it guards must not leave before.
pub type Receipt = oneshot::Receiver<Result<i64, String>>;

struct Job {
    record: AccessRecord,
    metadata: EventMetadata,
    done: oneshot::Sender<Result<i64, String>>,
}

/// Appends and verifies access-trail records with one key.
pub struct Trail {
    key: Arc<[u8]>,
    jobs: Option<mpsc::UnboundedSender<Job>>,
}

/// Where a chain first stops verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The sequence number of the first record that does not verify.
    pub sequence: i64,
    /// Its global position in the event store.
    pub position: i64,
    pub reason: String,
}

/// The outcome of checking every chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub chains: u64,
    pub records: u64,
    /// The first break of each broken chain, in chain order.
    pub breaks: Vec<Break>,
}

/// The HMAC-SHA256 of (chain, sequence, payload text) under `key`, in hex.
fn hash(key: &[u8], chain: &str, sequence: i64, payload: &str) -> String {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(chain.as_bytes());
    mac.update(&[0]);
    mac.update(sequence.to_string().as_bytes());
    mac.update(&[0]);
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Trail {
    /// A trail keyed with `secret` that can verify but not append.
    pub fn new(secret: &Secret) -> Self {
        Trail {
            key: secret.expose().as_bytes().into(),
            jobs: None,
        }
    }

    /// A trail keyed with `secret` whose records a background writer appends
    /// to the store at `url`, over a connection of its own with full
    /// durability (the read-model pool's relaxed commits would not do: a
    /// record must survive a crash once the answer it guards has left).
    /// Concurrent records share one statement and one disk flush.
    /// The searchable trail (the access projection) follows within the
    /// projections' poll interval: waking them for every batch would cost a
    /// projection transaction per read.
    pub fn start(secret: &Secret, url: &str) -> Result<Self, ApiError> {
        let backend = Backend::from_url(url)?;
        // Unbounded: every job belongs to a request that waits for it. A job
        // whose request gave up (timeout, disconnect) is still written: it is
        // a look that was decided, and the queue drains at the store's pace.
        let (jobs, queue) = mpsc::unbounded_channel();
        let key: Arc<[u8]> = secret.expose().as_bytes().into();
        tokio::spawn(writer(Arc::clone(&key), url.to_string(), backend, queue));
        Ok(Trail {
            key,
            jobs: Some(jobs),
        })
    }

    #[cfg(test)]
    fn hash(&self, chain: &str, sequence: i64, payload: &str) -> String {
        hash(&self.key, chain, sequence, payload)
    }

    /// Queues `record` for its chain. Await the receipt before anything the
    /// record guards leaves the service.
    pub fn submit(&self, record: AccessRecord, metadata: EventMetadata) -> Receipt {
        let (done, receipt) = oneshot::channel();
        match &self.jobs {
            Some(jobs) => {
                let job = Job {
                    record,
                    metadata,
                    done,
                };
                if let Err(mpsc::error::SendError(job)) = jobs.send(job) {
                    let _ = job.done.send(Err("the access-trail writer stopped".into()));
                }
            }
            None => {
                let _ = done.send(Err("this trail only verifies".into()));
            }
        }
        receipt
    }

    /// Checks that this trail's key made at least one of the newest records
    /// (if there are any): with another key every record from now on would fail
    /// verification. One forged record does not make it refuse; a wrong key does.
    pub async fn check_key(&self, db: &Db) -> Result<bool, ApiError> {
        let sql = match db.backend {
            Backend::Postgres => {
                "SELECT aggregate_id, sequence, payload::text AS payload, metadata::text AS metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY position DESC LIMIT 20"
            }
            Backend::Sqlite => {
                "SELECT aggregate_id, sequence, payload, metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY position DESC LIMIT 20"
            }
        };
        let rows = sqlx::query(sql)
            .bind(AGGREGATE_TYPE)
            .fetch_all(&db.pool)
            .await?;
        for row in &rows {
            let get = |c: &str| row.try_get::<String, _>(c).map_err(ApiError::internal);
            let sequence: i64 = row.try_get("sequence")?;
            let own = hash(&self.key, &get("aggregate_id")?, sequence, &get("payload")?);
            if stored_hash(&get("metadata")?).as_deref() == Some(own.as_str()) {
                return Ok(true);
            }
        }
        Ok(rows.is_empty())
    }

    /// Checks every chain: sequence numbers without gaps from 1, each record's
    /// link to the previous one, and each record's own hash.
    pub async fn verify(&self, db: &Db) -> Result<Report, ApiError> {
        let sql = match db.backend {
            Backend::Postgres => {
                "SELECT aggregate_id, sequence, position, event_type, payload::text AS payload, metadata::text AS metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
            }
            Backend::Sqlite => {
                "SELECT aggregate_id, sequence, position, event_type, payload, metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
            }
        };
        let lost = lost_records(db).await?;
        let mut rows = sqlx::query(sql).bind(AGGREGATE_TYPE).fetch(&db.pool);
        let mut report = Report::default();
        let mut chain = String::new();
        let (mut expected, mut prev, mut broken) = (1i64, GENESIS.to_string(), false);
        while let Some(row) = rows.try_next().await? {
            let id: String = row.try_get("aggregate_id")?;
            let sequence: i64 = row.try_get("sequence")?;
            let position: i64 = row.try_get("position")?;
            let event_type: String = row.try_get("event_type")?;
            let payload: String = row.try_get("payload")?;
            let metadata: String = row.try_get("metadata")?;
            report.records += 1;
            if id != chain {
                report.chains += 1;
                chain = id;
                (expected, prev, broken) = (1, GENESIS.to_string(), false);
            }
            if broken {
                continue;
            }
            let own = hash(&self.key, &chain, sequence, &payload);
            let linked = serde_json::from_str::<AccessRecord>(&payload)
                .ok()
                .map(|r| r.prev_hash);
            let reason = if sequence != expected {
                Some(if sequence > expected {
                    format!(
                        "records {expected} to {} are missing: the chain jumps to {sequence}",
                        sequence - 1
                    )
                } else {
                    format!("sequence {sequence} where {expected} was expected")
                })
            } else if event_type != EVENT_TYPE {
                Some(format!("unexpected event type `{event_type}`"))
            } else if stored_hash(&metadata).as_deref() != Some(own.as_str()) {
                Some("the record was altered: its hash does not match its content".to_string())
            } else if linked.as_deref() != Some(prev.as_str()) {
                Some("the record does not link to the one before it".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                broken = true;
                report.breaks.push(Break {
                    chain: chain.clone(),
                    sequence,
                    position,
                    reason,
                });
                continue;
            }
            (expected, prev) = (sequence + 1, own);
        }
        drop(rows);
        // A chain cannot show its newest records deleted: nothing follows
        // them, and new records may since have taken their sequence numbers.
        // The searchable trail (the access projection) kept a row for each
        // record as it was appended, under its global position: a row whose
        // record is gone from the store is a deleted record.
        for (chain, sequence, position) in lost {
            let earlier = |b: &Break| b.chain == chain && b.sequence <= sequence;
            if report.breaks.iter().any(earlier) {
                continue;
            }
            report.breaks.retain(|b| b.chain != chain);
            report.breaks.push(Break {
                chain,
                sequence,
                position,
                reason: format!(
                    "record {sequence} (position {position}) is missing: the access log had it, the store does not"
                ),
            });
        }
        report.breaks.sort_by(|a, b| a.chain.cmp(&b.chain));
        Ok(report)
    }
}

/// Appends queued records, a batch per statement, until the service stops.
async fn writer(
    key: Arc<[u8]>,
    url: String,
    backend: Backend,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let mut connection: Option<AnyConnection> = None;
    // The last (sequence, hash) of chains written before, so a batch reads a
    // tail only for chains it has not seen; a conflict clears them.
    let mut heads: HashMap<String, (i64, String)> = HashMap::new();
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = Err("not written".to_string());
        for _ in 0..ATTEMPTS {
            if connection.is_none() {
                match connect(&url, backend).await {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        outcome = Err(format!("cannot connect: {e}"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            let Some(conn) = connection.as_mut() else {
                continue;
            };
            match write_batch(&key, conn, backend, &mut heads, &batch).await {
                Ok(positions) => {
                    outcome = Ok(positions);
                    break;
                }
                Err(e) => {
                    heads.clear();
                    outcome = Err(e.to_string());
                    if !retryable(&e) {
                        connection = None;
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        match outcome {
            Ok(positions) => {
                for (job, position) in batch.into_iter().zip(positions) {
                    let _ = job.done.send(Ok(position));
                }
            }
            Err(error) => {
                tracing::error!(%error, records = batch.len(), "access trail records could not be written");
                for job in batch {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
        }
        if heads.len() > HEADS_MAX {
            heads.clear();
        }
    }
}

/// A connection of the writer's own, with every commit flushed to disk.
async fn connect(url: &str, backend: Backend) -> Result<AnyConnection, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await?;
    let settings: &[&str] = match backend {
        Backend::Postgres => &["SET synchronous_commit = on"],
        Backend::Sqlite => &["PRAGMA busy_timeout = 10000", "PRAGMA synchronous = FULL"],
    };
    for statement in settings {
        conn.execute(*statement).await?;
    }
    Ok(conn)
}

/// Writes one batch as one multi-row insert (one statement, so all or none,
/// and one round trip and one disk flush); the global position of each record.
/// Tails are read first only for chains not written before; a head that went
/// stale (another process appended) makes the insert fail on the primary key,
/// and the caller retries with fresh tails.
async fn write_batch(
    key: &[u8],
    conn: &mut AnyConnection,
    backend: Backend,
    heads: &mut HashMap<String, (i64, String)>,
    batch: &[Job],
) -> Result<Vec<i64>, sqlx::Error> {
    let tail_sql = match backend {
        // PostgreSQL hands json back as json: ask for its text.
        Backend::Postgres => {
            "SELECT sequence, metadata::text AS metadata FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
        }
        Backend::Sqlite => {
            "SELECT sequence, metadata FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
        }
    };
    let mut written: HashMap<String, (i64, String)> = HashMap::new();
    let mut rows = Vec::with_capacity(batch.len());
    for job in batch {
        let chain = chain_id(job.record.subject_id, &job.record.organisation);
        let head = match written.get(&chain).or_else(|| heads.get(&chain)) {
            Some(head) => head.clone(),
            None => {
                let row = sqlx::query(tail_sql)
                    .bind(AGGREGATE_TYPE)
                    .bind(&chain)
                    .fetch_optional(&mut *conn)
                    .await?;
                match row {
                    Some(row) => {
                        let metadata: String = row.try_get("metadata")?;
                        (
                            row.try_get("sequence")?,
                            stored_hash(&metadata).unwrap_or_default(),
                        )
                    }
                    None => (0, GENESIS.to_string()),
                }
            }
        };
        let sequence = head.0 + 1;
        let mut record = job.record.clone();
        record.prev_hash = head.1;
        let payload = serde_json::to_string(&record).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let own = hash(key, &chain, sequence, &payload);
        let mut meta =
            serde_json::to_value(&job.metadata).map_err(|e| sqlx::Error::Encode(e.into()))?;
        meta["hash"] = serde_json::Value::String(own.clone());
        rows.push((chain.clone(), sequence, payload, meta.to_string()));
        written.insert(chain, (sequence, own));
    }
    // The same key order in every writer, so two of them wait on each other
    // as little as possible (a conflict still fails on the primary key).
    let in_job_order: Vec<(String, i64)> = rows.iter().map(|r| (r.0.clone(), r.1)).collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let values: Vec<String> = (0..rows.len())
        .map(|i| match backend {
            Backend::Postgres => format!(
                "($1, ${}, ${}, $2, '1', CAST(${} AS json), CAST(${} AS json))",
                4 * i + 3,
                4 * i + 4,
                4 * i + 5,
                4 * i + 6
            ),
            // SQLite binds anonymous parameters in order at no cost.
            Backend::Sqlite => "(?, ?, ?, ?, '1', ?, ?)".to_string(),
        })
        .collect();
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES {} RETURNING aggregate_id, sequence, position",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    match backend {
        Backend::Postgres => {
            query = query.bind(AGGREGATE_TYPE).bind(EVENT_TYPE);
            for (chain, sequence, payload, meta) in &rows {
                query = query.bind(chain).bind(*sequence).bind(payload).bind(meta);
            }
        }
        Backend::Sqlite => {
            for (chain, sequence, payload, meta) in &rows {
                query = query
                    .bind(AGGREGATE_TYPE)
                    .bind(chain)
                    .bind(*sequence)
                    .bind(EVENT_TYPE)
                    .bind(payload)
                    .bind(meta);
            }
        }
    }
    let returned = query.fetch_all(&mut *conn).await?;
    let mut positions: HashMap<(String, i64), i64> = HashMap::with_capacity(returned.len());
    for row in &returned {
        positions.insert(
            (row.try_get("aggregate_id")?, row.try_get("sequence")?),
            row.try_get("position")?,
        );
    }
    let positions = in_job_order
        .iter()
        .map(|(chain, sequence)| {
            positions
                .get(&(chain.clone(), *sequence))
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol("a written record was not returned".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    heads.extend(written);
    Ok(positions)
}

/// Records the access projection's live slot holds whose event is gone
/// from the store, earliest first per chain: (chain, sequence, position).
async fn lost_records(db: &Db) -> Result<Vec<(String, i64, i64)>, ApiError> {
    let slot: Option<String> =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = $1")
            .bind(projections::access::NAME)
            .fetch_optional(&db.pool)
            .await?;
    let Some(slot) = slot else {
        return Ok(Vec::new());
    };
    if !projections::engine::SLOTS.contains(&slot.as_str()) {
        return Err(ApiError::internal(format!("unknown slot {slot}")));
    }
    let rows = sqlx::query(&format!(
        "SELECT a.chain, a.sequence, a.position FROM access_log_{slot} a \
         LEFT JOIN events e ON e.position = a.position AND e.aggregate_type = $1 \
         WHERE e.position IS NULL ORDER BY a.chain, a.sequence"
    ))
    .bind(AGGREGATE_TYPE)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("chain")?,
                row.try_get("sequence")?,
                row.try_get("position")?,
            ))
        })
        .collect()
}

/// The hash a record's metadata claims.
fn stored_hash(metadata: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()?
        .get("hash")?
        .as_str()
        .map(str::to_string)
}

/// True when another append to the same chain got there first (or SQLite
/// was busy): read the new tail and try again.
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            let message = e.message().to_ascii_lowercase();
            e.is_unique_violation()
                || message.contains("unique")
                || message.contains("duplicate key")
                || message.contains("locked")
                || message.contains("busy")
                // Two writers inserting into the same chains can wait on each
                // other's uncommitted keys; PostgreSQL aborts one.
                || message.contains("deadlock")
                || message.contains("could not serialize")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_key_chain_sequence_and_payload() {
        let a = Trail::new(&Secret::new("k".repeat(32)));
        let b = Trail::new(&Secret::new("j".repeat(32)));
        let h = a.hash("c", 1, "{}");
        assert_eq!(h.len(), 64);
        assert_eq!(h, a.hash("c", 1, "{}"));
        assert_ne!(h, b.hash("c", 1, "{}"));
        assert_ne!(h, a.hash("d", 1, "{}"));
        assert_ne!(h, a.hash("c", 2, "{}"));
        assert_ne!(h, a.hash("c", 1, "{ }"));
    }
}
