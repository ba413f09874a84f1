//! People's data export jobs, for one service process (issue 18): the
//! registry, the archives sealed on disk, the download links. Below the
//! service, which holds them; `crate::privacy::export` runs the jobs and
//! answers GraphQL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Enum;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use projections::vault::MasterKey;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::error::ApiError;

/// How far a gathering is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub scanned: u64,
    /// The events in the store when it started.
    pub total: u64,
}

/// Gatherings running at once; more wait their turn.
pub const RUNNING_MAX: usize = 2;
/// Exports remembered at once, over everyone.
pub const JOBS_MAX: usize = 10_000;
/// Downloads of one export; then the person asks for a new one.
pub const DOWNLOADS_MAX: u32 = 10;
/// Archives opened for download at once.
const LOADING_MAX: usize = 2;
/// The MAC label of download links.
pub const LINK_LABEL: &str = "export-link";
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
pub struct Job {
    pub id: Uuid,
    pub person: Uuid,
    pub organisation: String,
    /// The person's role when they asked (as the trail records it).
    pub role: String,
    pub requested_at: DateTime<Utc>,
    pub state: DataExportState,
    pub progress: Progress,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub size: Option<u64>,
    pub records: Option<u64>,
    pub error: Option<String>,
    /// How many times it was fetched.
    pub downloads: u32,
    /// The archive's own key, only ever in memory.
    pub key: Option<Arc<Zeroizing<[u8; 32]>>>,
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

    /// How long a finished export is kept.
    pub fn ttl(&self) -> chrono::Duration {
        self.0.ttl
    }

    /// How long a download link works.
    pub fn link_ttl(&self) -> chrono::Duration {
        self.0.link_ttl
    }

    /// A turn to gather an export ([`RUNNING_MAX`] at a time).
    pub async fn turn_to_gather(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.slots.acquire().await.ok()
    }

    /// A turn to open an archive for download.
    pub async fn turn_to_load(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.loading.acquire().await.ok()
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
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let old = metadata
                .modified()
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > ttl);
            if path == self.0.dir || !old {
                continue;
            }
            let removed = if metadata.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(error = %e, path = %path.display(), "an expired data export could not be deleted");
            }
        }
        Ok(())
    }

    /// The ready export `id` for one more download, counted; refused past
    /// [`DOWNLOADS_MAX`].
    pub fn reserve_download(&self, id: Uuid) -> Result<Job, ApiError> {
        let mut jobs = self.0.jobs.lock().map_err(poisoned)?;
        let job = jobs
            .get_mut(&id)
            .filter(|j| j.state == DataExportState::Ready)
            .ok_or_else(|| {
                ApiError::NotFound("this export is no longer kept: request a new one".into())
            })?;
        if job.downloads >= DOWNLOADS_MAX {
            return Err(ApiError::RateLimited(format!(
                "this export was downloaded {DOWNLOADS_MAX} times: request a new one"
            )));
        }
        job.downloads += 1;
        Ok(job.clone())
    }

    pub fn file(&self, id: Uuid) -> PathBuf {
        self.0.dir.join(format!("{id}.sealed"))
    }

    pub fn remove_file(&self, id: Uuid) {
        let path = self.file(id);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(error = %e, path = %path.display(), "an expired export could not be deleted");
            }
        }
    }

    /// Forgets exports past their expiry, deleting their archives.
    pub fn sweep(&self, now: DateTime<Utc>) {
        self.drop_where(|j| j.expires_at.is_some_and(|at| at <= now));
    }

    /// Forgets every export of a person (after their erasure).
    pub fn forget_person(&self, organisation: &str, person: Uuid) {
        self.drop_where(|j| j.person == person && j.organisation == organisation);
    }

    /// Forgets the exports `which` picks, deleting their archives.
    fn drop_where(&self, which: impl Fn(&Job) -> bool) {
        let gone: Vec<Uuid> = match self.0.jobs.lock() {
            Ok(mut jobs) => {
                let gone: Vec<Uuid> = jobs.values().filter(|j| which(j)).map(|j| j.id).collect();
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
    pub fn wanted(&self, id: Uuid) -> bool {
        self.get(id).ok().flatten().is_some()
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Job>, ApiError> {
        Ok(self.0.jobs.lock().map_err(poisoned)?.get(&id).cloned())
    }

    pub fn update(&self, id: Uuid, change: impl FnOnce(&mut Job)) {
        if let Ok(mut jobs) = self.0.jobs.lock() {
            if let Some(job) = jobs.get_mut(&id) {
                change(job);
            }
        }
    }

    /// The person's exports, newest first.
    pub fn of_person(&self, organisation: &str, person: Uuid) -> Result<Vec<Job>, ApiError> {
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
    pub fn enqueue(&self, caller: &Caller, at: DateTime<Utc>) -> Result<(Job, bool), ApiError> {
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
    pub fn store(&self, id: Uuid, bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, ApiError> {
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
        let path = self.file(id);
        crate::settings::write_private(&path, &file)
            .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(key.as_slice());
        Ok(out)
    }

    /// The archive of a ready export, opened.
    pub fn load(&self, job: &Job) -> Result<Vec<u8>, ApiError> {
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

/// The download link of export `id`, working until `expires` (Unix time).
pub fn link(master: &MasterKey, id: Uuid, expires: i64) -> String {
    let tag = master.mac(LINK_LABEL, format!("{id}.{expires}").as_bytes());
    format!(
        "/exports/{id}/archive?expires={expires}&signature={}",
        hex::encode(tag)
    )
}

/// Whether a link's parts are one [`link`] made and it works `now`.
pub fn check_link(
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
        Caller::acting(person, Role::ServiceUser, organisation, 0)
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
        // Downloads are counted under the lock, and bounded.
        for _ in 0..DOWNLOADS_MAX {
            exports.reserve_download(first.id).unwrap();
        }
        assert_eq!(
            exports.reserve_download(first.id).unwrap_err().code(),
            "RATE_LIMITED"
        );
        assert_eq!(
            exports.reserve_download(Uuid::new_v4()).unwrap_err().code(),
            "NOT_FOUND"
        );
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
        // A stray file is deleted as well, never stopping the start.
        std::fs::write(dir.join("stray.sealed"), b"x").unwrap();
        let stale = Exports::new(dir.clone(), Duration::ZERO, Duration::from_secs(900));
        std::thread::sleep(Duration::from_millis(20));
        stale.clear_leftovers().unwrap();
        assert!(!exports.0.dir.exists());
        assert!(!dir.join("stray.sealed").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
