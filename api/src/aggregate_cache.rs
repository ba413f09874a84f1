//! Folded aggregates kept between commands, and the append that says where
//! its events landed (issue 16).
//!
//! cqrs-es in event-store mode loads and folds every event of an aggregate
//! for every command, then appends through its repository (a transaction of
//! one INSERT per event) and cannot say where the events landed. [`Cached`]
//! is an `EventStore` for cqrs-es that instead:
//!
//! - keeps the folded aggregate and its sequence number after each command it
//!   committed, and decides the next command on it without reading the store;
//! - appends a command's events in one statement that returns their places
//!   in the global order ([`observe`] hands them to the caller).
//!
//! The event store stays the only truth. A kept aggregate is checked by the
//! append: another instance that appended since makes the (aggregate,
//! sequence) key fail, the entry is gone, and [`Appended::from_cache`] tells
//! the caller to decide again on the stored events. A command refused on a
//! kept aggregate is decided again on the stored events too, so no refusal
//! rests on a state another instance has moved past.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, EventStore};
use projections::vault::{Ident, Vault};
use projections::Checkpoint;
use sqlx::Row;

/// Aggregates kept per type; past this the cache starts over.
pub const CACHED_MAX: usize = 2_000;

/// The pool appends go through, with each store's own statement.
#[derive(Clone)]
pub enum AppendPool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// What the command running in this task loaded and appended.
#[derive(Debug, Default, Clone)]
pub struct Appended {
    /// The command was decided on a kept aggregate, not on the stored events.
    pub from_cache: bool,
    /// Where the first event landed and its payload (JSON text).
    pub first: Option<(Checkpoint, String)>,
    /// Where the last event landed and its sequence number.
    pub last: Option<(Checkpoint, i64)>,
}

tokio::task_local! {
    static APPENDED: RefCell<Appended>;
}

/// Runs `command` (a cqrs-es `execute`) and returns, beside its result, what
/// it loaded and where its events landed.
pub async fn observe<F: Future>(command: F) -> (F::Output, Appended) {
    APPENDED
        .scope(RefCell::new(Appended::default()), async move {
            let output = command.await;
            (output, APPENDED.with(|a| a.take()))
        })
        .await
}

fn note(change: impl FnOnce(&mut Appended)) {
    let _ = APPENDED.try_with(|a| change(&mut a.borrow_mut()));
}

/// One event as the events table takes it.
struct Row7 {
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
}

fn failed<E: std::error::Error>(error: sqlx::Error) -> AggregateError<E> {
    if let sqlx::Error::Database(db) = &error {
        // A unique key: another command took this sequence number first.
        if matches!(db.code().as_deref(), Some("23505" | "2067" | "1555")) {
            return AggregateError::AggregateConflict;
        }
    }
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            AggregateError::DatabaseConnectionError(Box::new(error))
        }
        other => AggregateError::UnexpectedError(Box::new(other)),
    }
}

impl AppendPool {
    /// Appends `rows` in one statement; returns each one's place, in order.
    async fn append<E: std::error::Error>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        rows: &[Row7],
    ) -> Result<Vec<Checkpoint>, AggregateError<E>> {
        let values: Vec<String> = (0..rows.len())
            .map(|i| {
                let n = i * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                )
            })
            .collect();
        let head = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                    event_version, payload, metadata) VALUES ";
        macro_rules! bound {
            ($sql:expr) => {{
                let mut query = sqlx::query($sql);
                for row in rows {
                    query = query
                        .bind(aggregate_type)
                        .bind(aggregate_id)
                        .bind(row.sequence)
                        .bind(&row.event_type)
                        .bind(&row.event_version)
                        .bind(&row.payload)
                        .bind(&row.metadata);
                }
                query
            }};
        }
        // SQLite has no transaction ids: its order is `position` alone.
        let returning = match self {
            AppendPool::Postgres(_) => "RETURNING position, tx_id::text::bigint AS tx_id",
            AppendPool::Sqlite(_) => "RETURNING position, 0 AS tx_id",
        };
        let sql = format!("{head}{} {returning}", values.join(", "));
        macro_rules! placed {
            ($pool:expr) => {
                bound!(&sql)
                    .fetch_all($pool)
                    .await
                    .map_err(failed)?
                    .iter()
                    .map(|r| {
                        Ok(Checkpoint {
                            tx_id: r.try_get("tx_id")?,
                            position: r.try_get("position")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(failed)?
            };
        }
        let mut placed = match self {
            AppendPool::Postgres(pool) => placed!(pool),
            AppendPool::Sqlite(pool) => placed!(pool),
        };
        // One transaction's rows: their positions follow the rows' order.
        placed.sort();
        Ok(placed)
    }
}

/// A cqrs-es event store that keeps folded aggregates between commands and
/// appends in one statement, sealing personal data on the way in and
/// opening it on the way out (`projections::vault`).
pub struct Cached<R: PersistedEventRepository, A: Aggregate> {
    repo: R,
    pool: AppendPool,
    vault: Vault,
    folded: Mutex<HashMap<String, (A, usize)>>,
    /// The erasures seen when `folded` was last emptied for one.
    erasures: std::sync::atomic::AtomicU64,
}

fn sealing<E: std::error::Error>(error: projections::vault::VaultError) -> AggregateError<E> {
    AggregateError::UnexpectedError(Box::new(error))
}

impl<R: PersistedEventRepository, A: Aggregate> Cached<R, A> {
    /// Event-store mode over `repo` (for loading), appending through `pool`
    /// (the same database), with personal data sealed by `vault`.
    pub fn new(repo: R, pool: AppendPool, vault: Vault) -> Self {
        Cached {
            repo,
            pool,
            vault,
            folded: Mutex::new(HashMap::new()),
            erasures: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn take(&self, id: &str) -> Option<(A, usize)> {
        let mut folded = self.folded.lock().ok()?;
        // A kept aggregate may hold an erased person's texts: after any
        // erasure this process learns of, every one is folded afresh.
        let erasures = self.vault.erasures_seen();
        if self
            .erasures
            .swap(erasures, std::sync::atomic::Ordering::SeqCst)
            != erasures
        {
            folded.clear();
        }
        folded.remove(id)
    }

    fn keep(&self, id: &str, aggregate: A, sequence: usize) {
        if let Ok(mut folded) = self.folded.lock() {
            if folded.len() >= CACHED_MAX {
                folded.clear();
            }
            folded.insert(id.to_string(), (aggregate, sequence));
        }
    }
}

impl<R, A> EventStore<A> for Cached<R, A>
where
    R: PersistedEventRepository,
    A: Aggregate + Clone + Send + Sync,
{
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let mut stored: Vec<SerializedEvent> = self.repo.get_events::<A>(aggregate_id).await?;
        let mut texts: Vec<String> = stored.iter().map(|e| e.payload.to_string()).collect();
        let sealed: Vec<bool> = texts
            .iter()
            .map(|t| projections::vault::may_be_sealed(t))
            .collect();
        let mut items: Vec<(Ident<'_>, &mut String)> = stored
            .iter()
            .zip(texts.iter_mut())
            .map(|(e, text)| {
                (
                    Ident {
                        aggregate_type: A::TYPE,
                        aggregate_id,
                        sequence: e.sequence as i64,
                        event_type: &e.event_type,
                    },
                    text,
                )
            })
            .collect();
        self.vault.open_all(&mut items).await.map_err(sealing)?;
        for ((event, text), sealed) in stored.iter_mut().zip(texts).zip(sealed) {
            if sealed {
                event.payload = serde_json::from_str(&text)?;
            }
        }
        stored
            .into_iter()
            .map(|e| EventEnvelope::<A>::try_from(e).map_err(AggregateError::from))
            .collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<EventStoreAggregateContext<A>, AggregateError<A::Error>> {
        // Taken out while the command runs: two commands on one aggregate at
        // once, the second folds from the store (and one of them conflicts).
        let Some((aggregate, sequence)) = self.take(aggregate_id) else {
            note(|a| a.from_cache = false);
            let mut aggregate = A::default();
            let mut sequence = 0;
            for envelope in self.load_events(aggregate_id).await? {
                sequence = envelope.sequence;
                aggregate.apply(envelope.payload);
            }
            return Ok(EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_string(),
                aggregate,
                current_sequence: sequence,
                current_snapshot: None,
            });
        };
        note(|a| a.from_cache = true);
        Ok(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: EventStoreAggregateContext<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let id = context.aggregate_id;
        // cqrs-es 0.5 applies each event to the aggregate as the command
        // writes it (`EventSink::write`): the context already holds the state
        // after `events`, the one the next command starts from.
        let (next, sequence) = (context.aggregate, context.current_sequence);
        let envelopes: Vec<EventEnvelope<A>> = events
            .into_iter()
            .zip(sequence + 1..)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: id.clone(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        if envelopes.is_empty() {
            self.keep(&id, next, sequence);
            return Ok(envelopes);
        }
        let actor = metadata.get("actor_id").cloned().unwrap_or_default();
        let organisation = metadata.get("organisation").cloned().unwrap_or_default();
        let metadata = serde_json::to_value(&metadata)?;
        let mut rows = envelopes
            .iter()
            .map(|e| {
                Ok(Row7 {
                    sequence: e.sequence as i64,
                    event_type: e.payload.event_type(),
                    event_version: e.payload.event_version(),
                    payload: serde_json::to_value(&e.payload)?,
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        // The caller gets the first payload as written, in clear.
        let first_payload = rows.first().map(|row| row.payload.to_string());
        for row in &mut rows {
            let ident = Ident {
                aggregate_type: A::TYPE,
                aggregate_id: &id,
                sequence: row.sequence,
                event_type: &row.event_type,
            };
            self.vault
                .seal(ident, &actor, &organisation, &mut row.payload)
                .await
                .map_err(sealing)?;
        }
        // (A failed append returns here, and the entry stays out.)
        let placed = self.pool.append(A::TYPE, &id, &rows).await?;
        if let (Some(first), Some(last), Some(payload)) =
            (placed.first(), placed.last(), first_payload)
        {
            let (first, last) = (*first, *last);
            let last_sequence = sequence as i64 + envelopes.len() as i64;
            note(|a| {
                a.first = Some((first, payload));
                a.last = Some((last, last_sequence));
            });
        }
        self.keep(&id, next, sequence + envelopes.len());
        Ok(envelopes)
    }
}
