//! A person's data export as a job (issue 18; GDPR art. 15 and 20).
//!
//! `requestDataExport` starts one; the person follows it with
//! `dataExport(id)` (or `myDataExports`): events read of how many, then
//! ready with a download link that works for `privacy.export_link_ttl`
//! (15 minutes; asking again gives a fresh one) until the archive itself
//! expires after `privacy.export_ttl` (24 hours) and is deleted.
//!
//! - The archive ([`super::archive`]) is gathered in the background, at
//!   most [`RUNNING_MAX`] at a time; one unfinished export per person.
//! - The reading is recorded in the access trail (section `export`) before
//!   the archive can be fetched, and every download is recorded again,
//!   before its first byte leaves (fail closed, as every read).
//! - The archive waits on disk in `<data_dir>/exports`, sealed
//!   (XChaCha20-Poly1305) under a key of its own that only this process's
//!   memory holds: a copy of the folder, or a restart, leaves nothing
//!   readable, and a start deletes what a previous run left.
//! - The link is signed with a key derived from the master key; it names
//!   the export and its expiry, and nothing else.
//! - An erasure drops the person's exports at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use domain::trail::{AccessRecord, Basis, GENESIS};
use projections::vault::MasterKey;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::archive::{self, Progress};
use crate::auth::Caller;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::BigInt;
use crate::service::Service;

/// Gatherings running at once; more wait their turn.
pub const RUNNING_MAX: usize = 2;
/// Exports remembered at once, over everyone.
pub const JOBS_MAX: usize = 10_000;
/// Downloads of one export; then the person asks for a new one.
pub const DOWNLOADS_MAX: u32 = 10;
/// Archives opened for download at once.
const LOADING_MAX: usize = 2;
/// The MAC label of download links.
const LINK_LABEL: &str = "export-link";
const NONCE_LEN: usize = 24;

/// Where an export stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DataExportState {
    /// Waiting for a turn.
    Queued,
    /// Being gathered: `eventsScanned` of `eventsTotal`.
    Running,
    /// Ready: `downloadUrl` fetches it until `expiresAt`.
    Ready,
    /// It could not be made; `error` says why.
    Failed,
}

#[derive(Debug, Clone)]
struct Job {
    id: Uuid,
    person: Uuid,
    organisation: String,
    /// The person's role when they asked (as the trail records it).
    role: String,
    requested_at: DateTime<Utc>,
    state: DataExportState,
    progress: Progress,
    finished_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    size: Option<u64>,
    records: Option<u64>,
    error: Option<String>,
    /// How many times it was fetched.
    downloads: u32,
    /// The archive's own key, only ever in memory.
    key: Option<Arc<Zeroizing<[u8; 32]>>>,
}

/// A person's exports, for one service process.
#[derive(Clone)]
pub struct Exports(Arc<Inner>);

struct Inner {
    jobs: Mutex<HashMap<Uuid, Job>>,
    /// `<data_dir>/exports`, where every process keeps a folder of its own.
    root: PathBuf,
    /// This process's folder in it.
    dir: PathBuf,
    loading: tokio::sync::Semaphore,
    ttl: chrono::Duration,
    link_ttl: chrono::Duration,
    slots: tokio::sync::Semaphore,
}

fn poisoned<T>(_: T) -> ApiError {
    ApiError::internal("the export jobs' lock was poisoned")
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Exports {
    /// The exports kept in a folder of this process's own under `root`
    /// (`<data_dir>/exports`).
    pub fn new(root: PathBuf, ttl: Duration, link_ttl: Duration) -> Self {
        Exports(Arc::new(Inner {
            jobs: Mutex::new(HashMap::new()),
            dir: root.join(Uuid::new_v4().to_string()),
            root,
            loading: tokio::sync::Semaphore::new(LOADING_MAX),
            ttl: chrono_of(ttl),
            link_ttl: chrono_of(link_ttl),
            slots: tokio::sync::Semaphore::new(RUNNING_MAX),
        }))
    }

    /// Deletes the folders earlier runs of the service left, once nothing in
    /// them can still be wanted (older than `export_ttl`: their archives'
    /// keys died with those processes, so until then they are unreadable
    /// anyway). Another instance's live folder is never that old. The
    /// serving process calls it at start.
    pub fn clear_leftovers(&self) -> Result<(), ApiError> {
        let Ok(entries) = std::fs::read_dir(&self.0.root) else {
            return Ok(());
        };
        let ttl = self.0.ttl.to_std().unwrap_or(Duration::MAX);
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > ttl);
            if path != self.0.dir && old {
                std::fs::remove_dir_all(&path).map_err(|e| {
                    ApiError::internal(format!("cannot clear {}: {e}", path.display()))
                })?;
            }
        }
        Ok(())
    }

    fn file(&self, id: Uuid) -> PathBuf {
        self.0.dir.join(format!("{id}.sealed"))
    }

    fn remove_file(&self, id: Uuid) {
        let path = self.file(id);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(error = %e, path = %path.display(), "an expired export could not be deleted");
            }
        }
    }

    /// Forgets exports past their expiry, deleting their archives.
    pub fn sweep(&self, now: DateTime<Utc>) {
        let expired: Vec<Uuid> = match self.0.jobs.lock() {
            Ok(mut jobs) => {
                let gone: Vec<Uuid> = jobs
                    .values()
                    .filter(|j| j.expires_at.is_some_and(|at| at <= now))
                    .map(|j| j.id)
                    .collect();
                for id in &gone {
                    jobs.remove(id);
                }
                gone
            }
            Err(_) => return,
        };
        for id in expired {
            self.remove_file(id);
        }
    }

    /// Forgets every export of a person (after their erasure).
    pub fn forget_person(&self, organisation: &str, person: Uuid) {
        let gone: Vec<Uuid> = match self.0.jobs.lock() {
            Ok(mut jobs) => {
                let gone: Vec<Uuid> = jobs
                    .values()
                    .filter(|j| j.person == person && j.organisation == organisation)
                    .map(|j| j.id)
                    .collect();
                for id in &gone {
                    jobs.remove(id);
                }
                gone
            }
            Err(_) => return,
        };
        for id in gone {
            self.remove_file(id);
        }
    }

    /// Whether export `id` is still kept (not dropped by an erasure or
    /// replaced).
    fn wanted(&self, id: Uuid) -> bool {
        self.get(id).ok().flatten().is_some()
    }

    fn get(&self, id: Uuid) -> Result<Option<Job>, ApiError> {
        Ok(self.0.jobs.lock().map_err(poisoned)?.get(&id).cloned())
    }

    fn update(&self, id: Uuid, change: impl FnOnce(&mut Job)) {
        if let Ok(mut jobs) = self.0.jobs.lock() {
            if let Some(job) = jobs.get_mut(&id) {
                change(job);
            }
        }
    }

    /// The person's exports, newest first.
    fn of_person(&self, organisation: &str, person: Uuid) -> Result<Vec<Job>, ApiError> {
        let mut mine: Vec<Job> = self
            .0
            .jobs
            .lock()
            .map_err(poisoned)?
            .values()
            .filter(|j| j.person == person && j.organisation == organisation)
            .cloned()
            .collect();
        mine.sort_by_key(|j| std::cmp::Reverse(j.requested_at));
        Ok(mine)
    }

    /// The person's unfinished export, or a new one queued (which replaces
    /// their finished ones). The second value is true for a new one.
    fn enqueue(&self, caller: &Caller, at: DateTime<Utc>) -> Result<(Job, bool), ApiError> {
        let (organisation, person) = (caller.organisation.as_str(), caller.subject);
        let mut jobs = self.0.jobs.lock().map_err(poisoned)?;
        let unfinished = jobs.values().find(|j| {
            j.person == person
                && j.organisation == organisation
                && matches!(j.state, DataExportState::Queued | DataExportState::Running)
        });
        if let Some(job) = unfinished {
            return Ok((job.clone(), false));
        }
        let replaced: Vec<Uuid> = jobs
            .values()
            .filter(|j| j.person == person && j.organisation == organisation)
            .map(|j| j.id)
            .collect();
        if jobs.len() - replaced.len() >= JOBS_MAX {
            return Err(ApiError::RateLimited(
                "too many data exports are waiting or kept: retry in a few minutes".into(),
            ));
        }
        for id in &replaced {
            jobs.remove(id);
        }
        let job = Job {
            id: Uuid::new_v4(),
            person,
            organisation: organisation.to_string(),
            role: caller.role.as_str().to_string(),
            requested_at: at,
            state: DataExportState::Queued,
            progress: Progress::default(),
            finished_at: None,
            expires_at: None,
            size: None,
            records: None,
            error: None,
            downloads: 0,
            key: None,
        };
        jobs.insert(job.id, job.clone());
        drop(jobs);
        for id in replaced {
            self.remove_file(id);
        }
        Ok((job, true))
    }

    /// Seals `bytes` under a fresh key and writes them; the key is returned.
    fn store(&self, id: Uuid, bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, ApiError> {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let cipher = XChaCha20Poly1305::new(&key);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: bytes,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| ApiError::internal("the archive could not be sealed"))?;
        std::fs::create_dir_all(&self.0.dir)
            .map_err(|e| ApiError::internal(format!("{}: {e}", self.0.dir.display())))?;
        let mut file = nonce.to_vec();
        file.extend_from_slice(&sealed);
        write_private(&self.file(id), &file)?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(key.as_slice());
        Ok(out)
    }

    /// The archive of a ready export, opened.
    fn load(&self, job: &Job) -> Result<Vec<u8>, ApiError> {
        let key = job
            .key
            .as_ref()
            .ok_or_else(|| ApiError::NotFound("no such export".into()))?;
        let file = std::fs::read(self.file(job.id))
            .map_err(|e| ApiError::internal(format!("the archive cannot be read: {e}")))?;
        if file.len() < NONCE_LEN {
            return Err(ApiError::internal("the archive is cut short"));
        }
        let (nonce, sealed) = file.split_at(NONCE_LEN);
        XChaCha20Poly1305::new(key.as_slice().into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: job.id.as_bytes(),
                },
            )
            .map_err(|_| ApiError::internal("the archive does not open"))
    }
}

/// Writes a file only its owner may read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

/// The download link of export `id`, working until `expires` (Unix time).
fn link(master: &MasterKey, id: Uuid, expires: i64) -> String {
    let tag = master.mac(LINK_LABEL, format!("{id}.{expires}").as_bytes());
    format!(
        "/exports/{id}/archive?expires={expires}&signature={}",
        hex::encode(tag)
    )
}

/// Whether a link's parts are one [`link`] made and it works `now`.
fn check_link(
    master: &MasterKey,
    id: Uuid,
    expires: i64,
    signature: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let refused = || ApiError::Forbidden("this download link is not valid".into());
    let tag = hex::decode(signature).map_err(|_| refused())?;
    if !master.verify_mac(LINK_LABEL, format!("{id}.{expires}").as_bytes(), &tag) {
        return Err(refused());
    }
    if expires <= now.timestamp() {
        return Err(ApiError::FailedPrecondition(
            "this download link has expired: ask for the export again (dataExport) for a fresh one"
                .into(),
        ));
    }
    Ok(())
}

/// The record of a person's reading of their own data.
pub fn own_reading(
    person: Uuid,
    role: &str,
    organisation: &str,
    query: &str,
    request_id: &str,
    client_address: Option<String>,
    at: DateTime<Utc>,
) -> AccessRecord {
    AccessRecord {
        reader_id: person,
        reader_role: role.to_string(),
        reader_organisation: organisation.to_string(),
        subject_id: Some(person),
        organisation: organisation.to_string(),
        section: domain::trail::EXPORT.to_string(),
        query: query.to_string(),
        basis: Basis::Owner,
        relationship_id: None,
        basis_sequence: None,
        refusal: None,
        detail: None,
        request_id: request_id.to_string(),
        client_address,
        at,
        attempts: 1,
        first_at: None,
        prev_hash: GENESIS.to_string(),
    }
}

impl Service {
    /// Writes `record` to the trail and waits until it is committed.
    pub async fn record_reading(&self, record: AccessRecord) -> Result<(), ApiError> {
        let metadata = projections::EventMetadata {
            actor_id: record.reader_id.to_string(),
            actor_role: record.reader_role.clone(),
            organisation: record.reader_organisation.clone(),
            request_id: record.request_id.clone(),
            command_id: Uuid::new_v4().to_string(),
            idempotency_key: None,
            idempotency_fingerprint: None,
        };
        match self.trail.submit(record, metadata).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(ApiError::internal(format!(
                "the access trail could not record the export: {error}"
            ))),
            Err(_) => Err(ApiError::internal("the access-trail writer stopped")),
        }
    }

    /// Gathers a queued export, records the reading, and stores the archive.
    async fn run_export(
        self: Arc<Self>,
        id: Uuid,
        caller: Caller,
        request_id: String,
        client_address: Option<String>,
    ) {
        let exports = self.exports.clone();
        let Ok(_slot) = exports.0.slots.acquire().await else {
            return;
        };
        // Dropped while it waited (an erasure, a restart of the registry).
        if !exports.wanted(id) {
            return;
        }
        exports.update(id, |j| j.state = DataExportState::Running);
        let started = crate::clock::wall();
        let follow = {
            let exports = exports.clone();
            move |progress: Progress| exports.update(id, |j| j.progress = progress)
        };
        let outcome = async {
            let gathered = archive::gather(
                &self.db,
                caller.subject,
                &caller.organisation,
                started,
                archive::ARCHIVE_MAX_BYTES,
                &follow,
            )
            .await?;
            // Erased while it was gathered: nothing is recorded or kept.
            if !exports.wanted(id) {
                return Err(ApiError::NotFound("this export was dropped".into()));
            }
            self.record_reading(own_reading(
                caller.subject,
                caller.role.as_str(),
                &caller.organisation,
                "requestDataExport",
                &request_id,
                client_address,
                started,
            ))
            .await?;
            let bytes = archive::to_zip(&gathered)?;
            let key = exports.store(id, &bytes)?;
            Ok::<_, ApiError>((key, bytes.len() as u64, gathered.records() as u64))
        }
        .await;
        let finished = crate::clock::wall();
        let ttl = exports.0.ttl;
        let still_wanted = exports.wanted(id);
        match outcome {
            Ok(_) if !still_wanted => exports.remove_file(id),
            Ok((key, size, records)) => exports.update(id, |j| {
                j.state = DataExportState::Ready;
                j.finished_at = Some(finished);
                j.expires_at = Some(finished + ttl);
                j.size = Some(size);
                j.records = Some(records);
                j.key = Some(Arc::new(key));
            }),
            Err(error) => {
                tracing::warn!(export = %id, error = %error.message(), "a data export failed");
                exports.update(id, |j| {
                    j.state = DataExportState::Failed;
                    j.finished_at = Some(finished);
                    j.expires_at = Some(finished + ttl);
                    j.error = Some(error.message());
                })
            }
        }
    }

    /// A signed download link for a ready export, working until the
    /// earlier of `now + link_ttl` and the archive's expiry.
    fn download_link(&self, job: &Job, now: DateTime<Utc>) -> Option<String> {
        let expires = (now + self.exports.0.link_ttl).min(job.expires_at?);
        Some(link(self.db.vault.master()?, job.id, expires.timestamp()))
    }

    /// The archive a download link names, if the link is good now; its
    /// fetching recorded in the trail before it is returned.
    pub async fn download_export(
        &self,
        id: Uuid,
        expires: i64,
        signature: &str,
        request_id: &str,
        client_address: Option<String>,
    ) -> Result<(Vec<u8>, DateTime<Utc>), ApiError> {
        let now = crate::clock::wall();
        let master = self
            .db
            .vault
            .master()
            .ok_or_else(|| ApiError::internal("the vault is locked"))?;
        check_link(master, id, expires, signature, now)?;
        self.exports.sweep(now);
        let gone = || ApiError::NotFound("this export is no longer kept: request a new one".into());
        let job = self
            .exports
            .get(id)?
            .filter(|j| j.state == DataExportState::Ready)
            .ok_or_else(gone)?;
        if job.downloads >= DOWNLOADS_MAX {
            return Err(ApiError::RateLimited(format!(
                "this export was downloaded {DOWNLOADS_MAX} times: request a new one"
            )));
        }
        // Erased meanwhile (by another instance, or a replayed ledger).
        if self
            .erasure(&job.organisation, job.person)
            .await?
            .erased
            .is_some()
        {
            self.exports.forget_person(&job.organisation, job.person);
            return Err(gone());
        }
        self.record_reading(own_reading(
            job.person,
            &job.role,
            &job.organisation,
            "download",
            request_id,
            client_address,
            now,
        ))
        .await?;
        self.exports.update(id, |j| j.downloads += 1);
        let _turn = self
            .exports
            .0
            .loading
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        Ok((self.exports.load(&job)?, job.requested_at))
    }
}

/// A person's data export, as they follow it.
#[derive(SimpleObject, Debug, Clone)]
pub struct DataExport {
    /// The export's id.
    pub id: ID,
    /// Where it stands.
    pub state: DataExportState,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// Events of the store read so far.
    pub events_scanned: BigInt,
    /// Events in the store when it started.
    pub events_total: BigInt,
    /// How far it is, from 0 to 1.
    pub progress: f64,
    /// When it was finished (ready or failed).
    pub finished_at: Option<DateTime<Utc>>,
    /// When the archive is deleted; its download links stop working then.
    pub expires_at: Option<DateTime<Utc>>,
    /// A link (a path on this service) that fetches the archive, a ZIP file,
    /// without a bearer token; it works for `privacy.export_link_ttl`
    /// (15 minutes) from this answer. Asking again gives a fresh one.
    pub download_url: Option<String>,
    /// The archive's size in bytes.
    pub size_bytes: Option<BigInt>,
    /// How many records (events) the archive holds.
    pub records: Option<BigInt>,
    /// Why it failed.
    pub error: Option<String>,
}

fn big(n: u64) -> BigInt {
    BigInt(i64::try_from(n).unwrap_or(i64::MAX))
}

impl DataExport {
    fn of(job: &Job, link: Option<String>) -> Self {
        let Progress { scanned, total } = job.progress;
        let progress = match job.state {
            DataExportState::Ready => 1.0,
            _ if total == 0 => 0.0,
            _ => (scanned as f64 / total as f64).min(1.0),
        };
        DataExport {
            id: ID(job.id.to_string()),
            state: job.state,
            requested_at: job.requested_at,
            events_scanned: big(scanned),
            events_total: big(total.max(scanned)),
            progress,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
            download_url: link,
            size_bytes: job.size.map(big),
            records: job.records.map(big),
            error: job.error.clone(),
        }
    }
}

/// The caller, if they may export their own data and are not erased.
async fn exporter(ctx: &Context<'_>) -> Result<(Arc<Service>, Caller), ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if !domain::access::may_export_own_data(&caller.actor()) {
        return Err(ApiError::Forbidden(
            "service users and providers export their own data; other roles ask the organisation's operators"
                .into(),
        ));
    }
    let erasure = svc.erasure(&caller.organisation, caller.subject).await?;
    if erasure.erased.is_some() {
        return Err(ApiError::FailedPrecondition(
            "this person was erased: there is no data of theirs to export".into(),
        ));
    }
    Ok((Arc::clone(svc), caller))
}

fn view(svc: &Service, job: &Job, now: DateTime<Utc>) -> DataExport {
    let link = match job.state {
        DataExportState::Ready => svc.download_link(job, now),
        _ => None,
    };
    DataExport::of(job, link)
}

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// One of the caller's own data exports: where it stands and, once
    /// ready, a fresh download link.
    async fn data_export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The export's id, as `requestDataExport` gave it.")] id: ID,
    ) -> async_graphql::Result<Option<DataExport>> {
        let (svc, caller) = exporter(ctx).await?;
        let now = now(ctx);
        svc.exports.sweep(now);
        let Ok(id) = id.parse::<Uuid>() else {
            return Err(ApiError::BadInput("id: not an export id".into()).into());
        };
        let job = svc
            .exports
            .get(id)?
            .filter(|j| j.person == caller.subject && j.organisation == caller.organisation);
        Ok(job.map(|j| view(&svc, &j, now)))
    }

    /// The caller's own data exports that are kept, newest first.
    async fn my_data_exports(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DataExport>> {
        let (svc, caller) = exporter(ctx).await?;
        let now = now(ctx);
        svc.exports.sweep(now);
        Ok(svc
            .exports
            .of_person(&caller.organisation, caller.subject)?
            .iter()
            .map(|j| view(&svc, j, now))
            .collect())
    }
}

#[derive(Default)]
pub struct ExportMutation;

#[Object]
impl ExportMutation {
    /// Starts gathering everything the service holds about the caller
    /// (service users and providers): every part of their portal with its
    /// full history, relationships, consent, agreements, messages, the access
    /// log, studies and enrolments, forum activity, in one ZIP archive (a JSON
    /// document following `docs/person-export.schema.json`, and a CSV file per
    /// part). Follow it with `dataExport`. While one is unfinished, asking
    /// again returns it; a new one replaces the finished ones. The reading is
    /// recorded in the access trail.
    async fn request_data_export(&self, ctx: &Context<'_>) -> async_graphql::Result<DataExport> {
        let (svc, caller) = exporter(ctx).await?;
        let now = now(ctx);
        svc.exports.sweep(now);
        svc.write_limit.take(&caller.organisation, caller.subject)?;
        let (job, new) = svc.exports.enqueue(&caller, now)?;
        if new {
            let runner = Arc::clone(&svc);
            let request = request(ctx);
            let work = tokio::spawn(runner.run_export(
                job.id,
                caller.clone(),
                request.request_id.clone(),
                request.client_address.clone(),
            ));
            // A panic in the job must not leave it running for good.
            let exports = svc.exports.clone();
            let id = job.id;
            tokio::spawn(async move {
                if work.await.is_err() {
                    tracing::error!(export = %id, "a data export stopped unexpectedly");
                    exports.update(id, |j| {
                        j.state = DataExportState::Failed;
                        j.finished_at = Some(crate::clock::wall());
                        j.expires_at = Some(crate::clock::wall() + exports.0.ttl);
                        j.error = Some("internal error".into());
                    });
                }
            });
        }
        Ok(view(&svc, &job, now))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn parts(url: &str) -> (Uuid, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let id = path.split('/').nth(2).unwrap().parse().unwrap();
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("signature", v) => signature = v.to_string(),
                _ => panic!("{pair}"),
            }
        }
        (id, expires, signature)
    }

    #[test]
    fn a_link_works_until_it_expires_and_only_as_made() {
        let master = MasterKey::derive("a master secret of at least thirty-two characters");
        let now = Utc::now();
        let id = Uuid::new_v4();
        let expires = now.timestamp() + 900;
        let (got_id, got_expires, signature) = parts(&link(&master, id, expires));
        assert_eq!((got_id, got_expires), (id, expires));
        assert!(check_link(&master, id, expires, &signature, now).is_ok());
        let code = |r: Result<(), ApiError>| r.unwrap_err().code();
        // Expired: said so, apart from a forged link.
        let later = now + chrono::Duration::seconds(901);
        assert_eq!(
            code(check_link(&master, id, expires, &signature, later)),
            "FAILED_PRECONDITION"
        );
        // Another export, a later expiry, another signature, another key.
        assert_eq!(
            code(check_link(
                &master,
                Uuid::new_v4(),
                expires,
                &signature,
                now
            )),
            "FORBIDDEN"
        );
        assert_eq!(
            code(check_link(&master, id, expires + 1, &signature, now)),
            "FORBIDDEN"
        );
        assert_eq!(
            code(check_link(&master, id, expires, &signature[2..], now)),
            "FORBIDDEN"
        );
        assert_eq!(
            code(check_link(&master, id, expires, "zz", now)),
            "FORBIDDEN"
        );
        let other = MasterKey::derive("another master secret of thirty-two characters");
        assert_eq!(
            code(check_link(&other, id, expires, &signature, now)),
            "FORBIDDEN"
        );
    }

    fn caller(person: Uuid, organisation: &str) -> Caller {
        Caller {
            subject: person,
            role: Role::ServiceUser,
            organisation: organisation.to_string(),
            expires_at: 0,
        }
    }

    #[test]
    fn jobs_are_one_unfinished_per_person_sealed_on_disk_and_gone_when_expired_or_erased() {
        let dir = std::env::temp_dir().join(format!("portal-exports-{}", Uuid::new_v4()));
        let exports = Exports::new(
            dir.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(900),
        );
        let now = Utc::now();
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (first, new) = exports.enqueue(&caller(me, "a"), now).unwrap();
        assert!(new);
        let (again, new) = exports.enqueue(&caller(me, "a"), now).unwrap();
        assert!(!new);
        assert_eq!(again.id, first.id, "the unfinished one is given back");
        // The same id in another organisation is someone else.
        let (elsewhere, new) = exports.enqueue(&caller(me, "b"), now).unwrap();
        assert!(new);
        assert_ne!(elsewhere.id, first.id);
        // Ready: sealed on disk; the file alone says nothing.
        let archive = b"PK archive with Avocet words".to_vec();
        let key = exports.store(first.id, &archive).unwrap();
        let on_disk = std::fs::read(exports.file(first.id)).unwrap();
        assert!(!on_disk.windows(6).any(|w| w == b"Avocet"));
        exports.update(first.id, |j| {
            j.state = DataExportState::Ready;
            j.expires_at = Some(now + chrono::Duration::hours(1));
            j.key = Some(Arc::new(key));
        });
        let job = exports.get(first.id).unwrap().unwrap();
        assert_eq!(exports.load(&job).unwrap(), archive);
        // A new request replaces the finished one, and deletes its file.
        let (second, new) = exports.enqueue(&caller(me, "a"), now).unwrap();
        assert!(new);
        assert!(exports.get(first.id).unwrap().is_none());
        assert!(!exports.file(first.id).exists());
        // Expiry.
        let key = exports.store(second.id, &archive).unwrap();
        exports.update(second.id, |j| {
            j.state = DataExportState::Ready;
            j.expires_at = Some(now + chrono::Duration::hours(1));
            j.key = Some(Arc::new(key));
        });
        exports.sweep(now);
        assert!(exports.get(second.id).unwrap().is_some());
        exports.sweep(now + chrono::Duration::hours(2));
        assert!(exports.get(second.id).unwrap().is_none());
        assert!(!exports.file(second.id).exists());
        // Erasure of one person leaves the others', and the same id's in
        // another organisation.
        let (theirs, _) = exports.enqueue(&caller(other, "a"), now).unwrap();
        let (mine_here, _) = exports.enqueue(&caller(me, "a"), now).unwrap();
        exports.forget_person("b", me);
        assert!(exports.get(elsewhere.id).unwrap().is_none());
        assert!(exports.get(theirs.id).unwrap().is_some());
        assert!(exports.get(mine_here.id).unwrap().is_some());
        // A start leaves a recent folder of another process, and deletes
        // this one's own only by expiry (here: never).
        let again = Exports::new(
            dir.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(900),
        );
        again.clear_leftovers().unwrap();
        assert!(exports.0.dir.exists());
        let stale = Exports::new(dir.clone(), Duration::ZERO, Duration::from_secs(900));
        std::thread::sleep(Duration::from_millis(20));
        stale.clear_leftovers().unwrap();
        assert!(!exports.0.dir.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
