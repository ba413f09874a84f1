//! The tamper-evident access trail: appending records to their chain.
//!
//! A record is an `AccessRecorded` event of the `AccessTrail` stream named by
//! its chain (the subject's id, or `org:<name>`). Its payload carries the seal
//! of the chain's previous record; its metadata carries its own seal, an
//! HMAC-SHA256 under the trail key of every stored field (`crate::seal`).
//! Without the key nobody can make a record that verifies, so an edited,
//! deleted or inserted row shows as the first record whose seal or link does
//! not hold (`crate::verify`). See docs/access-trail.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use domain::trail::{chain_id, AccessRecord, AGGREGATE_TYPE, EVENT_TYPE, GENESIS};
use projections::vault::{Ident, Vault};
use projections::{Backend, Db, EventMetadata};
use sqlx::AnyConnection;
use sqlx::{Connection, Executor, Row};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::seal;
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

/// Appends and verifies access-trail records with one key. A clone queues
/// on the same writer.
#[derive(Clone)]
pub struct Trail {
    key: Arc<[u8]>,
    jobs: Option<mpsc::UnboundedSender<Job>>,
}

impl std::fmt::Debug for Trail {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trail").finish_non_exhaustive()
    }
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
    pub fn start(secret: &Secret, url: &str, vault: Vault) -> Result<Self, ApiError> {
        let backend = Backend::from_url(url)?;
        // Unbounded: every job belongs to a request that waits for it. A job
        // whose request gave up (timeout, disconnect) is still written: it is
        // a look that was decided, and the queue drains at the store's pace.
        let (jobs, queue) = mpsc::unbounded_channel();
        let key: Arc<[u8]> = secret.expose().as_bytes().into();
        tokio::spawn(writer(
            Arc::clone(&key),
            url.to_string(),
            backend,
            vault,
            queue,
        ));
        Ok(Trail {
            key,
            jobs: Some(jobs),
        })
    }

    /// Checks every chain and the access log (`portal audit verify`).
    pub async fn verify(&self, db: &Db) -> Result<crate::verify::Report, ApiError> {
        crate::verify::verify(&self.key, db).await
    }

    /// True when this trail's key made at least one of the newest records
    /// (or there are none).
    pub async fn check_key(&self, db: &Db) -> Result<bool, ApiError> {
        crate::verify::made_with(&self.key, db).await
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
}

/// Appends queued records, a batch per statement, until the service stops.
async fn writer(
    key: Arc<[u8]>,
    url: String,
    backend: Backend,
    vault: Vault,
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
            match write_batch(&key, &vault, conn, backend, &mut heads, &batch).await {
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
pub(crate) async fn connect(url: &str, backend: Backend) -> Result<AnyConnection, sqlx::Error> {
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
///
/// Positions and the recorded time are chosen here, not by the store's
/// defaults, because the seal covers them (`crate::seal`): PostgreSQL hands
/// out positions from the column's own sequence; SQLite takes the next ones
/// under its write lock, held from `BEGIN IMMEDIATE` to the commit.
async fn write_batch(
    key: &[u8],
    vault: &Vault,
    conn: &mut AnyConnection,
    backend: Backend,
    heads: &mut HashMap<String, (i64, String)>,
    batch: &[Job],
) -> Result<Vec<i64>, sqlx::Error> {
    // Keys first: sealing inside the transaction then only reads them.
    for job in batch {
        if job.record.detail.as_deref().is_some_and(|d| !d.is_empty()) {
            vault
                .prepare(&owner_key(&job.record))
                .await
                .map_err(vault_failed)?;
        }
    }
    if backend == Backend::Sqlite {
        conn.execute("BEGIN IMMEDIATE").await?;
    }
    let written = write_rows(key, vault, conn, backend, heads, batch).await;
    if backend == Backend::Sqlite {
        let end = if written.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        if let Err(e) = conn.execute(end).await {
            if written.is_ok() {
                return Err(e);
            }
            // A transaction that may still be open: this connection goes.
            return Err(sqlx::Error::Protocol(format!("rollback failed: {e}")));
        }
    }
    let (positions, written) = written?;
    heads.extend(written);
    Ok(positions)
}

/// The organisation of the person whose key seals a record's detail: the
/// subject's (the trail's own), or for a look at no one the reader's.
fn owner_organisation(record: &AccessRecord) -> &str {
    match record.subject_id {
        Some(_) => &record.organisation,
        None => &record.reader_organisation,
    }
}

/// The key id sealing a record's detail (`domain::trail::PERSONAL_DATA`).
fn owner_key(record: &AccessRecord) -> String {
    projections::vault::key_id(
        owner_organisation(record),
        record.subject_id.unwrap_or(record.reader_id),
    )
}

fn vault_failed(error: projections::vault::VaultError) -> sqlx::Error {
    sqlx::Error::Protocol(format!("sealing an access record: {error}"))
}

/// The statements of [`write_batch`]: the positions of the records in job
/// order, and the new heads of the chains written.
async fn write_rows(
    key: &[u8],
    vault: &Vault,
    conn: &mut AnyConnection,
    backend: Backend,
    heads: &HashMap<String, (i64, String)>,
    batch: &[Job],
) -> Result<(Vec<i64>, HashMap<String, (i64, String)>), sqlx::Error> {
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
    // Each chain's head before this batch, and each job's place (chain,
    // sequence) in job order.
    let mut before: HashMap<String, (i64, String)> = HashMap::new();
    let mut next: HashMap<String, i64> = HashMap::new();
    let mut places = Vec::with_capacity(batch.len());
    for job in batch {
        let chain = chain_id(job.record.subject_id, &job.record.organisation);
        if !before.contains_key(&chain) {
            let head = match heads.get(&chain) {
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
                                seal::claimed(&metadata).unwrap_or_default(),
                            )
                        }
                        None => (0, GENESIS.to_string()),
                    }
                }
            };
            next.insert(chain.clone(), head.0);
            before.insert(chain.clone(), head);
        }
        let sequence = next.get(&chain).copied().unwrap_or_default() + 1;
        next.insert(chain.clone(), sequence);
        places.push((chain, sequence));
    }
    let positions = allocate_positions(conn, backend, batch.len()).await?;
    // The same key order in every writer, so two of them wait on each other
    // as little as possible (a conflict still fails on the primary key); a
    // chain's records in sequence order, each linking to the one before.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| places[a].cmp(&places[b]));
    // Microseconds, UTC: what PostgreSQL keeps and gives back.
    let recorded_at = projections::db::ts(chrono::Utc::now());
    let mut links: HashMap<String, String> = HashMap::new();
    let mut written: HashMap<String, (i64, String)> = HashMap::new();
    let mut job_positions = vec![0i64; batch.len()];
    let mut rows = Vec::with_capacity(batch.len());
    for (&i, position) in order.iter().zip(positions) {
        let (chain, sequence) = &places[i];
        let prev = links
            .get(chain)
            .or_else(|| before.get(chain).map(|h| &h.1))
            .cloned()
            .unwrap_or_default();
        let mut record = batch[i].record.clone();
        record.prev_hash = prev;
        let mut payload =
            serde_json::to_string(&record).map_err(|e| sqlx::Error::Encode(e.into()))?;
        // A detail is sealed with the key of the person looked at before the
        // record's seal is made: the seal covers the sealed text, so the
        // chain never rests on what an erasure removes.
        if record.detail.as_deref().is_some_and(|d| !d.is_empty()) {
            let mut value =
                serde_json::to_value(&record).map_err(|e| sqlx::Error::Encode(e.into()))?;
            let ident = Ident {
                aggregate_type: AGGREGATE_TYPE,
                aggregate_id: chain,
                sequence: *sequence,
                event_type: EVENT_TYPE,
            };
            vault
                .seal(
                    ident,
                    &record.reader_id.to_string(),
                    owner_organisation(&record),
                    &mut value,
                )
                .await
                .map_err(vault_failed)?;
            payload = value.to_string();
        }
        let meta =
            serde_json::to_value(&batch[i].metadata).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let fields = seal::Stored {
            chain,
            sequence: *sequence,
            position,
            event_type: EVENT_TYPE,
            event_version: seal::VERSION,
            recorded_at: &recorded_at,
            payload: &payload,
            metadata: "",
        };
        let (metadata, own) = seal::seal(key, &fields, &meta);
        links.insert(chain.clone(), own.clone());
        written.insert(chain.clone(), (*sequence, own));
        job_positions[i] = position;
        rows.push((chain.clone(), *sequence, position, payload, metadata));
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| match backend {
            Backend::Postgres => format!(
                "($1, ${}, ${}, $2, $3, CAST(${} AS json), CAST(${} AS json), ${}, CAST($4 AS timestamptz))",
                5 * i + 5,
                5 * i + 6,
                5 * i + 7,
                5 * i + 8,
                5 * i + 9
            ),
            // SQLite binds anonymous parameters in order at no cost.
            Backend::Sqlite => "(?, ?, ?, ?, ?, ?, ?, ?, ?)".to_string(),
        })
        .collect();
    let overriding = match backend {
        Backend::Postgres => "OVERRIDING SYSTEM VALUE ",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, position, recorded_at) \
         {overriding}VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    match backend {
        Backend::Postgres => {
            query = query
                .bind(AGGREGATE_TYPE)
                .bind(EVENT_TYPE)
                .bind(seal::VERSION)
                .bind(&recorded_at);
            for (chain, sequence, position, payload, meta) in &rows {
                query = query
                    .bind(chain)
                    .bind(*sequence)
                    .bind(payload)
                    .bind(meta)
                    .bind(*position);
            }
        }
        Backend::Sqlite => {
            for (chain, sequence, position, payload, meta) in &rows {
                query = query
                    .bind(AGGREGATE_TYPE)
                    .bind(chain)
                    .bind(*sequence)
                    .bind(EVENT_TYPE)
                    .bind(seal::VERSION)
                    .bind(payload)
                    .bind(meta)
                    .bind(*position)
                    .bind(&recorded_at);
            }
        }
    }
    query.execute(&mut *conn).await?;
    Ok((job_positions, written))
}

/// `n` new global positions, in increasing order.
async fn allocate_positions(
    conn: &mut AnyConnection,
    backend: Backend,
    n: usize,
) -> Result<Vec<i64>, sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT nextval(pg_get_serial_sequence('events', 'position')) AS p \
                 FROM generate_series(1, $1) ORDER BY 1",
            )
            .bind(n as i64)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|r| r.try_get("p")).collect()
        }
        // Under the write lock: AUTOINCREMENT never hands out a position
        // once used, even one whose row is gone, and neither does this.
        Backend::Sqlite => {
            let last: i64 = sqlx::query_scalar(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
                 COALESCE((SELECT MAX(position) FROM events), 0))",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok((1..=n as i64).map(|i| last + i).collect())
        }
    }
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
