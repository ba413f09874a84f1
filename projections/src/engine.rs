//! The projection engine: runners that tail the global stream, rebuilds into a
//! fresh slot, status and read-your-writes waits.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::{Any, Row, Transaction};
use tokio::sync::{watch, Notify};

use crate::db::{Db, DbError};
use crate::stream::{self, Checkpoint, StoredEvent};

/// A read model fed from the global stream.
///
/// `apply` must only touch the projection's own tables (with the slot suffix)
/// through the transaction it is given: the engine commits the checkpoint in
/// that same transaction, which is what makes a crash harmless.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Stable name, used in the CLI and the bookkeeping tables.
    fn name(&self) -> &'static str;
    /// Bumped whenever the tables or the way events are applied change; a
    /// stored slot built by another version is rebuilt at start-up.
    fn version(&self) -> i32;
    /// Base names of the projection's tables; each slot appends `_<slot>`.
    fn tables(&self) -> &'static [&'static str];
    /// Statements creating the tables of `slot`, with the indexes `apply`
    /// needs.
    fn create(&self, slot: &str) -> Vec<String>;
    /// Statements creating the indexes of `slot` that only reads use. A
    /// rebuild runs them once the slot is loaded: one sort per index instead
    /// of every row inserted into every index (see `docs/projections.md`).
    fn indexes(&self, _slot: &str) -> Vec<String> {
        Vec::new()
    }
    /// Applies a batch of events, in order, to the tables of `slot`.
    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        slot: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError>;
    /// For a projection that keeps evidence (the access log), the column
    /// of its tables holding the global position of the event each row came
    /// from: a rebuild that would leave out a row the live slot has, whose
    /// event is gone from the store, is refused, so a removed event cannot
    /// vanish from what people read by rebuilding. (A row the live slot
    /// applied after the rebuild caught up still has its event, and is no
    /// loss.) `None` for read models, which a rebuild may shrink.
    fn kept_on_rebuild(&self) -> Option<&'static str> {
        None
    }
    /// The aggregate types whose events `apply` reads, when it ignores all
    /// others: catching up (a rebuild) then skips the others in the
    /// database. `None`: every event.
    fn consumes(&self) -> Option<&'static [&'static str]> {
        None
    }
}

/// The two table sets each projection alternates between.
pub const SLOTS: [&str; 2] = ["a", "b"];

fn other_slot(slot: &str) -> &'static str {
    if slot == SLOTS[0] {
        SLOTS[1]
    } else {
        SLOTS[0]
    }
}

/// Smallest batch used when catching up a slot (rebuilds, slot switches).
const CATCH_UP_BATCH: i64 = 10_000;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events read and applied per transaction.
    pub batch_size: i64,
    /// How often runners look for events written by other processes.
    pub poll_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: 2_000,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// What `portal projections status` and `/readyz` report for one projection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub active_slot: String,
    pub checkpoint: Checkpoint,
    pub events_applied: i64,
    pub lag_events: i64,
    pub updated_at: String,
}

struct Runner {
    projection: Arc<dyn Projection>,
    /// The slot queries read; changes only once the new slot has caught up.
    slot: RwLock<String>,
    progress: watch::Sender<Checkpoint>,
    wake: Notify,
    /// What this runner's batches changed, for the rows readers keep.
    changes: crate::cache::Changes,
}

/// Runs every projection and answers where each one stands.
pub struct Engine {
    db: Db,
    config: EngineConfig,
    runners: Vec<Arc<Runner>>,
    /// Read-model rows kept between reads (`cache`).
    pub(crate) kept: crate::cache::Shelf,
}

fn now() -> String {
    crate::db::ts(chrono::Utc::now())
}

impl Engine {
    /// Prepares every projection: bookkeeping rows, tables of the active slot,
    /// and a rebuild when the stored slot was built by another version.
    pub async fn prepare(
        db: Db,
        projections: Vec<Arc<dyn Projection>>,
        config: EngineConfig,
    ) -> Result<Self, DbError> {
        let mut runners = Vec::new();
        for projection in projections {
            let name = projection.name();
            sqlx::query(
                "INSERT INTO projection_slots (name, active_slot, version, switched_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(SLOTS[0])
            .bind(projection.version())
            .bind(now())
            .execute(&db.pool)
            .await?;
            let (slot, version) = active_slot(&db, name).await?;
            // A slot built by another version may have other columns: its
            // DDL is not ours to run. The rebuild below builds a fresh slot.
            if version == projection.version() {
                create_slot(&db, projection.as_ref(), &slot, false).await?;
            }
            let (progress, _) = watch::channel(load_checkpoint(&db, name, &slot).await?.0);
            let runner = Arc::new(Runner {
                projection,
                slot: RwLock::new(slot),
                progress,
                wake: Notify::new(),
                changes: Default::default(),
            });
            runners.push(runner);
            if version != runners[runners.len() - 1].projection.version() {
                tracing::info!(projection = name, "stored version differs; rebuilding");
            }
        }
        let engine = Engine {
            db,
            config,
            runners,
            kept: Default::default(),
        };
        for runner in &engine.runners {
            let (_, version) = active_slot(&engine.db, runner.projection.name()).await?;
            if version != runner.projection.version() {
                engine.rebuild(runner.projection.name()).await?;
                engine.follow_slot(runner).await?;
            }
        }
        Ok(engine)
    }

    /// The database this engine reads and writes.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Starts one background runner per projection; they stop when `shutdown`
    /// turns true.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.runners
            .iter()
            .map(|runner| {
                let engine = Arc::clone(self);
                let runner = Arc::clone(runner);
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let name = runner.projection.name();
                    let mut backoff = Duration::from_millis(50);
                    // Events applied since the tables' statistics were last taken.
                    let mut unanalysed = 0usize;
                    loop {
                        if *shutdown.borrow() {
                            break;
                        }
                        match engine.step(&runner).await {
                            Ok(n) if n > 0 => {
                                backoff = Duration::from_millis(50);
                                unanalysed += n;
                                continue;
                            }
                            Ok(_) => {
                                // Caught up after much (a first start on a
                                // large store, a long stop): take the tables'
                                // statistics, as a rebuild does, rather than
                                // plan reads on none until autovacuum comes
                                // (PostgreSQL) or forever (SQLite).
                                if unanalysed >= ANALYSE_AFTER {
                                    unanalysed = 0;
                                    if let Err(error) = engine.analyse(&runner).await {
                                        tracing::warn!(projection = name, %error, "statistics not taken");
                                    }
                                }
                                tokio::select! {
                                    _ = runner.wake.notified() => {}
                                    _ = tokio::time::sleep(engine.config.poll_interval) => {}
                                    _ = shutdown.changed() => {}
                                }
                            }
                            Err(DbError::CheckpointMoved(_)) => {}
                            Err(error) => {
                                tracing::error!(projection = name, %error, "projection step failed; retrying");
                                tokio::select! {
                                    _ = tokio::time::sleep(backoff) => {}
                                    _ = shutdown.changed() => {}
                                }
                                backoff = (backoff * 2).min(Duration::from_secs(5));
                            }
                        }
                    }
                    tracing::info!(projection = name, "projection runner stopped");
                })
            })
            .collect()
    }

    /// Takes the statistics of the runner's tables in its current slot.
    async fn analyse(&self, runner: &Runner) -> Result<(), DbError> {
        let slot = runner
            .slot
            .read()
            .map(|s| s.clone())
            .map_err(|_| DbError::Config("slot lock poisoned".into()))?;
        analyse_tables(&self.db, runner.projection.as_ref(), &slot).await
    }

    /// Tells every runner that new events were committed.
    pub fn wake(&self) {
        for runner in &self.runners {
            runner.wake.notify_one();
        }
    }

    /// The slot whose tables queries of projection `name` should read.
    pub fn slot(&self, name: &str) -> Option<String> {
        self.runner(name)
            .and_then(|r| r.slot.read().ok().map(|s| s.clone()))
    }

    /// A table of projection `name` as queries should name it now.
    pub fn table(&self, name: &str, table: &str) -> String {
        format!(
            "{table}_{}",
            self.slot(name).unwrap_or_else(|| SLOTS[0].to_string())
        )
    }

    /// The oldest place any of the projections named stands at: every event
    /// up to it is shown by all of them.
    pub fn reached(&self, names: &[&str]) -> Checkpoint {
        names
            .iter()
            .filter_map(|n| self.runner(n))
            .map(|r| *r.progress.borrow())
            .min()
            .unwrap_or_default()
    }

    /// Waits until every projection named has applied `target`, up to `timeout`.
    /// Returns whether they all caught up.
    ///
    /// On PostgreSQL an event becomes readable only once every older writing
    /// transaction has finished, so a runner woken by our commit may still find
    /// nothing; the waiter therefore wakes the runners again every few
    /// milliseconds while it waits, instead of leaving them to their poll interval.
    pub async fn wait_for(&self, names: &[&str], target: Checkpoint, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let runners: Vec<_> = names.iter().filter_map(|n| self.runner(n)).collect();
        let mut receivers: Vec<_> = runners.iter().map(|r| r.progress.subscribe()).collect();
        loop {
            if receivers.iter().all(|rx| *rx.borrow() >= target) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            for runner in &runners {
                runner.wake.notify_one();
            }
            let tick = tokio::time::sleep(Duration::from_millis(5));
            let changed = futures_any(
                receivers
                    .iter_mut()
                    .map(|rx| Box::pin(async move { rx.changed().await.is_ok() })),
            );
            tokio::select! {
                _ = tick => {}
                _ = changed => {}
            }
        }
    }

    fn runner(&self, name: &str) -> Option<&Arc<Runner>> {
        self.runners.iter().find(|r| r.projection.name() == name)
    }

    /// Names of all projections.
    pub fn names(&self) -> Vec<&'static str> {
        self.runners.iter().map(|r| r.projection.name()).collect()
    }

    /// Applies one batch to the active slot; returns how many events it applied.
    async fn step(&self, runner: &Runner) -> Result<usize, DbError> {
        let name = runner.projection.name();
        let slot = runner.slot.read().map(|s| s.clone()).unwrap_or_default();
        // Every step first looks for a switch by another process, so a busy
        // runner never keeps serving (or writing) a slot a rebuild may drop next.
        let (active, _) = active_slot(&self.db, name).await?;
        if active != slot {
            self.follow_slot(runner).await?;
            return Ok(1);
        }
        // The runner's own published checkpoint is where it stands; the
        // conditional update in `apply_events` tells when another runner moved it.
        let checkpoint = *runner.progress.borrow();
        match self
            .apply_batch(
                runner.projection.as_ref(),
                &slot,
                checkpoint,
                self.config.batch_size,
            )
            .await
        {
            Ok(Some((next, touched))) => {
                // Kept rows learn of the change before anyone waiting for
                // this checkpoint does.
                runner.changes.touched(touched.iter().map(String::as_str));
                runner.progress.send_replace(next);
                // How far it moved in the stream: about the events applied.
                Ok((next.position - checkpoint.position).max(1) as usize)
            }
            Ok(None) => Ok(0),
            Err(DbError::CheckpointMoved(_)) => {
                let (moved, _) = load_checkpoint(&self.db, name, &slot).await?;
                // Another process applied what this one did not see.
                runner.changes.unknown();
                runner.progress.send_replace(moved);
                Ok(1)
            }
            Err(error) => Err(error),
        }
    }

    /// Catches up the newly active slot, then points queries at it.
    async fn follow_slot(&self, runner: &Runner) -> Result<(), DbError> {
        let name = runner.projection.name();
        let (active, _) = active_slot(&self.db, name).await?;
        let checkpoint = self.catch_up(runner.projection.as_ref(), &active).await?;
        if let Ok(mut slot) = runner.slot.write() {
            *slot = active.clone();
        }
        runner.changes.unknown();
        runner.progress.send_replace(checkpoint);
        tracing::info!(projection = name, slot = %active, "now serving from slot");
        Ok(())
    }

    /// Applies batches to `slot` until the stream has nothing more. Catching up
    /// is throughput work, so it uses batches of at least `CATCH_UP_BATCH`.
    async fn catch_up(
        &self,
        projection: &dyn Projection,
        slot: &str,
    ) -> Result<Checkpoint, DbError> {
        let (mut checkpoint, _) = load_checkpoint(&self.db, projection.name(), slot).await?;
        let limit = self.config.batch_size.max(CATCH_UP_BATCH);
        // Read the next span on another connection while this one is applied:
        // the read does not depend on the apply, only on the span before it.
        let types = projection.consumes();
        let read = |db: Db, after: Checkpoint| async move {
            match types {
                Some(types) => stream::read_span(&db, after, limit, types).await,
                None => stream::read_batch(&db, after, limit)
                    .await
                    .map(|events| stream::Span {
                        to: events.last().map_or(after, |e| e.checkpoint),
                        scanned: events.len() as i64,
                        events,
                    }),
            }
        };
        let mut pending = read(self.db.clone(), checkpoint).await?;
        while pending.scanned > 0 {
            let next = tokio::spawn(read(self.db.clone(), pending.to));
            let span = (checkpoint, pending.to, pending.scanned);
            self.apply_span(projection, slot, span, &pending.events)
                .await?;
            checkpoint = pending.to;
            pending = next
                .await
                .map_err(|e| DbError::Config(format!("reader task failed: {e}")))??;
        }
        Ok(checkpoint)
    }

    /// Reads one batch after `after` and applies it with the checkpoint in one
    /// transaction. Returns the new checkpoint and the aggregates the batch
    /// touched, or `None` when there was nothing.
    async fn apply_batch(
        &self,
        projection: &dyn Projection,
        slot: &str,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Option<(Checkpoint, Vec<String>)>, DbError> {
        let events = stream::read_batch(&self.db, after, limit).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let next = self.apply_events(projection, slot, after, &events).await?;
        // An erasure (`organisation/person`) changes what is kept of the
        // person's portal too: its id is the person's.
        let mut touched: Vec<String> = events
            .into_iter()
            .flat_map(|e| {
                let person = (e.aggregate_type == domain::erasure::ERASURE_TYPE)
                    .then(|| domain::erasure::person_of(&e.aggregate_id))
                    .flatten()
                    .map(|p| p.to_string());
                std::iter::once(e.aggregate_id).chain(person)
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        Ok(Some((next, touched)))
    }

    /// What the runner of projection `name` changed, for rows kept from it.
    pub fn changes(&self, name: &str) -> Option<&crate::cache::Changes> {
        self.runner(name).map(|r| &r.changes)
    }

    /// Applies `events` (read after `after`) with the checkpoint in one
    /// transaction; returns the new checkpoint.
    async fn apply_events(
        &self,
        projection: &dyn Projection,
        slot: &str,
        after: Checkpoint,
        events: &[StoredEvent],
    ) -> Result<Checkpoint, DbError> {
        let Some(last) = events.last().map(|e| e.checkpoint) else {
            return Ok(after);
        };
        let span = (after, last, events.len() as i64);
        self.apply_span(projection, slot, span, events).await?;
        Ok(last)
    }

    /// Applies `events` and moves the checkpoint over a span of the stream
    /// (from `after` to `last`, `scanned` events of every type), in one
    /// transaction.
    async fn apply_span(
        &self,
        projection: &dyn Projection,
        slot: &str,
        (after, last, scanned): (Checkpoint, Checkpoint, i64),
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let started = std::time::Instant::now();
        let name = projection.name();
        let mut tx = self.db.pool.begin().await?;
        // Moving the checkpoint first takes the row lock, so a second runner
        // (another instance, or a CLI rebuild) waits, then finds it moved.
        let moved = sqlx::query(
            "UPDATE projection_checkpoints SET tx_id = $1, position = $2, events = events + $3, updated_at = $4 \
             WHERE name = $5 AND slot = $6 AND tx_id = $7 AND position = $8",
        )
        .bind(last.tx_id)
        .bind(last.position)
        .bind(scanned)
        .bind(now())
        .bind(name)
        .bind(slot)
        .bind(after.tx_id)
        .bind(after.position)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(DbError::CheckpointMoved(name.to_string()));
        }
        projection.apply(&mut tx, slot, events).await?;
        let applied = started.elapsed();
        tx.commit().await?;
        tracing::debug!(
            projection = name,
            events = events.len(),
            apply_ms = applied.as_millis() as u64,
            commit_ms = (started.elapsed() - applied).as_millis() as u64,
            "batch applied"
        );
        Ok(())
    }

    /// Rebuilds projection `name` from position 0 into its inactive slot while
    /// the live slot keeps serving, then switches to it. Returns the events applied.
    pub async fn rebuild(&self, name: &str) -> Result<i64, DbError> {
        let runner = self
            .runner(name)
            .ok_or_else(|| DbError::Config(format!("no projection named `{name}`")))?;
        let projection = runner.projection.as_ref();
        let (active, _) = active_slot(&self.db, name).await?;
        let target = other_slot(&active);
        create_slot(&self.db, projection, target, true).await?;
        let mut checkpoint = self.catch_up(projection, target).await?;
        for statement in projection.indexes(target) {
            sqlx::query(&statement).execute(&self.db.pool).await?;
        }
        // Statistics of the loaded tables, so the planner does not take a
        // wide index for a narrow one on a slot it has never seen (both
        // stores keep them per table; PostgreSQL's autovacuum would get there
        // only later).
        analyse_tables(&self.db, projection, target).await?;
        if let Some(key) = projection.kept_on_rebuild() {
            // The live slot may have applied events after the catch-up ended:
            // catch up once more before calling a row lost.
            if !dropped_rows(&self.db, projection, key, &active, target)
                .await?
                .is_empty()
            {
                checkpoint = self.catch_up(projection, target).await?;
            }
            let dropped = dropped_rows(&self.db, projection, key, &active, target).await?;
            if !dropped.is_empty() {
                return Err(DbError::Config(format!(
                    "rebuilding `{name}` would drop rows the live slot has ({key} {}): their \
                     events are gone from the store. The live slot stays; run `portal audit verify`",
                    dropped.join(", ")
                )));
            }
        }
        let (_, events) = load_checkpoint(&self.db, name, target).await?;
        let switched = sqlx::query(
            "UPDATE projection_slots SET active_slot = $1, version = $2, switched_at = $3 \
             WHERE name = $4 AND active_slot = $5",
        )
        .bind(target)
        .bind(projection.version())
        .bind(now())
        .bind(name)
        .bind(&active)
        .execute(&self.db.pool)
        .await?;
        if switched.rows_affected() != 1 {
            return Err(DbError::Config(format!(
                "projection `{name}` switched slots during the rebuild; run it again"
            )));
        }
        tracing::info!(
            projection = name,
            slot = target,
            events,
            position = checkpoint.position,
            "rebuilt"
        );
        Ok(events)
    }

    /// Where every projection stands.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, DbError> {
        let mut out = Vec::new();
        for runner in &self.runners {
            let name = runner.projection.name();
            let (slot, version) = active_slot(&self.db, name).await?;
            let (checkpoint, events_applied) = load_checkpoint(&self.db, name, &slot).await?;
            let updated_at = sqlx::query(
                "SELECT updated_at FROM projection_checkpoints WHERE name = $1 AND slot = $2",
            )
            .bind(name)
            .bind(&slot)
            .fetch_one(&self.db.pool)
            .await?
            .try_get("updated_at")?;
            out.push(ProjectionStatus {
                name: name.to_string(),
                version,
                active_slot: slot,
                checkpoint,
                events_applied,
                lag_events: stream::count_after(&self.db, checkpoint).await?,
                updated_at,
            });
        }
        Ok(out)
    }
}

/// Resolves when the first of `futures` does.
async fn futures_any<F>(futures: impl Iterator<Item = std::pin::Pin<Box<F>>>) -> bool
where
    F: std::future::Future<Output = bool>,
{
    let mut futures: Vec<_> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Events a runner applies in one go before it takes its tables' statistics.
const ANALYSE_AFTER: usize = 10_000;

/// `ANALYZE` of every table of `projection` in `slot` (both stores).
async fn analyse_tables(db: &Db, projection: &dyn Projection, slot: &str) -> Result<(), DbError> {
    for table in projection.tables() {
        sqlx::query(&format!("ANALYZE {table}_{slot}"))
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

async fn active_slot(db: &Db, name: &str) -> Result<(String, i32), DbError> {
    let row = sqlx::query("SELECT active_slot, version FROM projection_slots WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    let version: i32 = match row.try_get::<i32, _>("version") {
        Ok(v) => v,
        Err(_) => row.try_get::<i64, _>("version")? as i32,
    };
    Ok((row.try_get("active_slot")?, version))
}

/// Up to ten values of `key` in the live slot's tables that the rebuilt
/// slot does not have.
async fn dropped_rows(
    db: &Db,
    projection: &dyn Projection,
    key: &str,
    active: &str,
    target: &str,
) -> Result<Vec<String>, DbError> {
    let mut dropped = Vec::new();
    for table in projection.tables() {
        let rows = sqlx::query(&format!(
            "SELECT CAST(o.{key} AS TEXT) AS k FROM {table}_{active} o \
             LEFT JOIN {table}_{target} n ON n.{key} = o.{key} \
             WHERE n.{key} IS NULL \
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.position = o.{key}) \
             ORDER BY o.{key} LIMIT 10"
        ))
        .fetch_all(&db.pool)
        .await?;
        for row in rows {
            dropped.push(row.try_get("k")?);
        }
    }
    Ok(dropped)
}

async fn load_checkpoint(db: &Db, name: &str, slot: &str) -> Result<(Checkpoint, i64), DbError> {
    let row = sqlx::query(
        "SELECT tx_id, position, events FROM projection_checkpoints WHERE name = $1 AND slot = $2",
    )
    .bind(name)
    .bind(slot)
    .fetch_optional(&db.pool)
    .await?;
    Ok(match row {
        Some(row) => (
            Checkpoint {
                tx_id: row.try_get("tx_id")?,
                position: row.try_get("position")?,
            },
            row.try_get("events")?,
        ),
        None => (Checkpoint::default(), 0),
    })
}

/// Creates the tables of `slot` (dropping them first when `fresh`) and its
/// checkpoint row. A fresh slot is being rebuilt: its read-only indexes
/// ([`Projection::indexes`]) are left for after the load.
async fn create_slot(
    db: &Db,
    projection: &dyn Projection,
    slot: &str,
    fresh: bool,
) -> Result<(), DbError> {
    let mut tx = db.pool.begin().await?;
    if fresh {
        for table in projection.tables() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}_{slot}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1 AND slot = $2")
            .bind(projection.name())
            .bind(slot)
            .execute(&mut *tx)
            .await?;
    }
    for statement in projection.create(slot) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    if !fresh {
        for statement in projection.indexes(slot) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, slot, tx_id, position, events, updated_at) \
         VALUES ($1, $2, 0, 0, 0, $3) ON CONFLICT (name, slot) DO NOTHING",
    )
    .bind(projection.name())
    .bind(slot)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

impl Engine {
    /// The checkpoint each runner last published, without touching the database.
    pub fn progress(&self) -> Vec<(&'static str, Checkpoint)> {
        self.runners
            .iter()
            .map(|r| (r.projection.name(), *r.progress.borrow()))
            .collect()
    }
}
