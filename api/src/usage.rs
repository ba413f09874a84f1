//! Usage records for research: every query or mutation an enrolled
//! participant makes becomes a `Used` event (who, role, module, view or
//! write, time; never content).
//!
//! Cheap by construction: the request path looks the caller up in an
//! in-memory set of enrolled participants and, if present, hands the record
//! to a channel; a background writer appends what has queued as one
//! multi-row insert into the caller-independent stream of this process
//! (`Usage/<writer id>`, sequence numbers of its own, so two instances never
//! contend). People who are not enrolled leave no usage record at all.
//!
//! Usage is not acknowledged to anyone, so records queued when the process
//! dies are lost (at most one batch interval's worth, 200 ms); see
//! docs/research.md.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::study::{EnrolmentEvent, Module, ParticipantRole, Used, USAGE_EVENT, USAGE_TYPE};
use projections::{Backend, Db, EventMetadata};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::Caller;

/// Most records in one insert.
const BATCH_MAX: usize = 2_000;
/// Most records waiting; beyond it new ones are dropped (and counted).
const QUEUE_MAX: usize = 100_000;
/// How long the writer waits after the first record for others to join it.
const LINGER: Duration = Duration::from_millis(200);
/// How often enrolments made through other instances are picked up.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

struct Record {
    used: Used,
    metadata: EventMetadata,
}

/// Records usage of enrolled participants.
#[derive(Clone)]
pub struct UsageRecorder {
    /// Records queued and not yet written (or given up on).
    pending: Arc<std::sync::atomic::AtomicUsize>,
    /// (organisation, participant) of everyone enrolled now.
    enrolled: Arc<RwLock<HashSet<(String, Uuid)>>>,
    follower: Arc<tokio::sync::Mutex<Enrolments>>,
    db: Db,
    jobs: mpsc::Sender<Record>,
}

impl UsageRecorder {
    /// Loads who is enrolled now and starts the writer on `db`.
    pub async fn start(db: Db) -> Result<Self, crate::error::ApiError> {
        let (jobs, queue) = mpsc::channel(QUEUE_MAX);
        let recorder = UsageRecorder {
            pending: Arc::default(),
            enrolled: Arc::new(RwLock::new(HashSet::new())),
            follower: Arc::new(tokio::sync::Mutex::new(Enrolments::default())),
            db: db.clone(),
            jobs,
        };
        recorder.refresh().await?;
        tokio::spawn(writer(db, queue, recorder.clone()));
        Ok(recorder)
    }

    /// Reads enrolments made since the last look (by this instance or
    /// another); called after every enrolment and withdrawal here, so the
    /// very next request of that person is recorded or not accordingly.
    pub async fn refresh(&self) -> Result<(), crate::error::ApiError> {
        let mut follower = self.follower.lock().await;
        follower.catch_up(&self.db).await?;
        if let Ok(mut set) = self.enrolled.write() {
            *set = follower.enrolled();
        }
        Ok(())
    }

    /// True when `participant` is enrolled in some study of `organisation`
    /// (as far as this instance knows): a token of another organisation that
    /// carries the same id is not them.
    pub fn is_enrolled(&self, organisation: &str, participant: Uuid) -> bool {
        self.enrolled
            .read()
            .map(|set| set.contains(&(organisation.to_string(), participant)))
            .unwrap_or(false)
    }

    /// Records one use by `caller` at `at` if they are enrolled in any study.
    pub fn record(
        &self,
        caller: &Caller,
        request_id: &str,
        module: Module,
        write: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let role = match caller.care_side() {
            Some(domain::care::Side::ServiceUser) => ParticipantRole::ServiceUser,
            Some(domain::care::Side::Provider) => ParticipantRole::Provider,
            None => return,
        };
        if !self.is_enrolled(&caller.organisation, caller.subject) {
            return;
        }
        let record = Record {
            used: Used {
                participant_id: caller.subject,
                role,
                module,
                write,
                at,
            },
            metadata: caller.metadata(request_id, ""),
        };
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.jobs.try_send(record).is_err() {
            self.pending
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!("usage queue full: a usage record was dropped");
        }
    }

    /// Waits until every record queued so far is written (or given up on).
    pub async fn flush(&self) {
        while self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Who is enrolled in what, from the enrolment events.
#[derive(Default)]
struct Enrolments {
    open: HashMap<(Uuid, Uuid), bool>,
    /// The organisation of each study.
    studies: HashMap<Uuid, String>,
}

impl Enrolments {
    /// Reads every enrolment event again. They are few (two per person and
    /// study at most, usually), and reading from a position could miss one
    /// that committed after a later one on PostgreSQL.
    async fn catch_up(&mut self, db: &Db) -> Result<(), crate::error::ApiError> {
        let events = projections::stream::read_type_payloads(db, domain::study::ENROLMENT_TYPE)
            .await?
            .iter()
            .map(|(_, payload)| serde_json::from_str::<EnrolmentEvent>(payload))
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::error::ApiError::internal)?;
        // Each pair's events are one stream, appended in order, so its last
        // one by position is its latest.
        self.open = domain::study::enrolled_now(&events);
        for (_, payload) in projections::stream::read_type_payloads(db, domain::study::STUDY_TYPE)
            .await?
            .iter()
        {
            let domain::study::StudyEvent::StudyRegistered { info, .. } =
                serde_json::from_str(payload).map_err(crate::error::ApiError::internal)?;
            self.studies.insert(info.study_id, info.organisation);
        }
        Ok(())
    }

    fn enrolled(&self) -> HashSet<(String, Uuid)> {
        self.open
            .iter()
            .filter(|(_, open)| **open)
            .filter_map(|((study, participant), _)| {
                Some((self.studies.get(study)?.clone(), *participant))
            })
            .collect()
    }
}

async fn writer(db: Db, mut queue: mpsc::Receiver<Record>, recorder: UsageRecorder) {
    let stream = Uuid::new_v4().to_string();
    let mut sequence = 0i64;
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH_MAX);
    let mut refreshed_at = std::time::Instant::now();
    let mut resync = false;
    loop {
        tokio::select! {
            received = queue.recv_many(&mut batch, BATCH_MAX) => {
                if received == 0 {
                    return;
                }
                // Let more gather, until the batch is full or the interval
                // ends: one insert (and one wake-up of every stream reader)
                // per interval instead of one per request.
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < BATCH_MAX {
                    let room = BATCH_MAX - batch.len();
                    match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
        };
        if refreshed_at.elapsed() >= REFRESH_EVERY {
            // Enrolments made through other instances.
            if let Err(error) = recorder.refresh().await {
                tracing::warn!(?error, "usage: cannot read enrolments");
            }
            refreshed_at = std::time::Instant::now();
        }
        if batch.is_empty() {
            continue;
        }
        for attempt in 0..5 {
            if resync {
                // A failure left us unsure where the stream stands.
                match stored_sequence(&db, &stream).await {
                    Ok(stored) => {
                        sequence = stored;
                        resync = false;
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            match write_batch(&db, &stream, sequence, &batch).await {
                Ok(()) => {
                    sequence += batch.len() as i64;
                    break;
                }
                Err(error) => {
                    // The insert may have committed although we heard an
                    // error: ask the store where the stream stands.
                    match stored_sequence(&db, &stream).await {
                        Ok(stored) if stored >= sequence + batch.len() as i64 => {
                            sequence = stored;
                            break;
                        }
                        Ok(stored) => sequence = stored,
                        Err(_) => resync = true,
                    }
                    if attempt == 4 {
                        tracing::error!(%error, records = batch.len(), "usage records could not be written");
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
        recorder
            .pending
            .fetch_sub(batch.len(), std::sync::atomic::Ordering::SeqCst);
        batch.clear();
    }
}

/// The last sequence number of the usage stream `stream` (0 when empty).
async fn stored_sequence(db: &Db, stream: &str) -> Result<i64, sqlx::Error> {
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(USAGE_TYPE)
    .bind(stream)
    .fetch_one(&db.pool)
    .await?;
    Ok(stored.unwrap_or(0))
}

async fn write_batch(
    db: &Db,
    stream: &str,
    after: i64,
    batch: &[Record],
) -> Result<(), sqlx::Error> {
    let values: Vec<String> = (0..batch.len())
        .map(|i| match db.backend {
            Backend::Postgres => format!(
                "($1, $2, ${}, $3, '1', CAST(${} AS json), CAST(${} AS json))",
                3 * i + 4,
                3 * i + 5,
                3 * i + 6
            ),
            Backend::Sqlite => format!(
                "($1, $2, ${}, $3, '1', ${}, ${})",
                3 * i + 4,
                3 * i + 5,
                3 * i + 6
            ),
        })
        .collect();
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(USAGE_TYPE)
        .bind(stream)
        .bind(USAGE_EVENT);
    for (i, record) in batch.iter().enumerate() {
        let payload =
            serde_json::to_string(&record.used).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let metadata =
            serde_json::to_string(&record.metadata).map_err(|e| sqlx::Error::Encode(e.into()))?;
        query = query
            .bind(after + 1 + i as i64)
            .bind(payload)
            .bind(metadata);
    }
    query.execute(&db.pool).await?;
    Ok(())
}
