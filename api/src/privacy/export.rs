//! A person's data export as a job (issue 18; GDPR art. 15 and 20).
//!
//! `requestDataExport` starts one; the person follows it with
//! `dataExport(id)` (or `myDataExports`): events read of how many, then
//! ready with a download link that works for `privacy.export_link_ttl`
//! (15 minutes; asking again gives a fresh one) until the archive itself
//! expires after `privacy.export_ttl` (24 hours) and is deleted.
//!
//! - The archive ([`super::archive`]) is gathered in the background, at
//!   most [`crate::export_jobs::RUNNING_MAX`] at a time; one unfinished
//!   export per person (the registry: [`crate::export_jobs`]).
//! - The reading is recorded in the access trail (section `export`) before
//!   the archive can be fetched, and every download is recorded again,
//!   before its first byte leaves (fail closed, as every read).
//! - The archive waits on disk in `<data_dir>/exports/<process>`, sealed
//!   (XChaCha20-Poly1305) under a key of its own that only this process's
//!   memory holds: a copy of the folder, or a restart, leaves nothing
//!   readable, and a start deletes what earlier runs left, once expired.
//! - The link is signed with a key derived from the master key; it names
//!   the export and its expiry, and nothing else.
//! - An erasure drops the person's exports at once.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::trail::{AccessRecord, Basis, GENESIS};
use uuid::Uuid;

use super::archive::{self, Progress};
use crate::auth::Caller;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::export_jobs::{check_link, link, DOWNLOADS_MAX};
pub use crate::export_jobs::{DataExportState, Exports, Job};
use crate::ids::BigInt;
use crate::service::Service;

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
        let Some(_slot) = exports.turn_to_gather().await else {
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
            // Erased while it was gathered (here, by another instance or
            // by a replayed ledger): nothing is recorded or kept.
            let erased = self
                .erasure(&caller.organisation, caller.subject)
                .await?
                .erased
                .is_some();
            if erased || !exports.wanted(id) {
                exports.forget_person(&caller.organisation, caller.subject);
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
        let ttl = exports.ttl();
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
        let expires = (now + self.exports.link_ttl()).min(job.expires_at?);
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
        let job = self.exports.reserve_download(id)?;
        // Erased meanwhile (by another instance, or a replayed ledger).
        if self
            .erasure(&job.organisation, job.person)
            .await?
            .erased
            .is_some()
        {
            self.exports.forget_person(&job.organisation, job.person);
            return Err(ApiError::NotFound(
                "this export is no longer kept: request a new one".into(),
            ));
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
        let _turn = self
            .exports
            .turn_to_load()
            .await
            .ok_or_else(|| ApiError::internal("the export registry is closed"))?;
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
        svc.exports
            .forget_person(&caller.organisation, caller.subject);
        return Err(ApiError::FailedPrecondition(
            "this person was erased: there is no data of theirs to export".into(),
        ));
    }
    Ok((Arc::clone(svc), caller))
}

fn view(svc: &Service, job: &Job, now: DateTime<Utc>) -> DataExport {
    let link = match job.state {
        DataExportState::Ready if job.downloads < DOWNLOADS_MAX => svc.download_link(job, now),
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
                        j.expires_at = Some(crate::clock::wall() + exports.ttl());
                        j.error = Some("internal error".into());
                    });
                }
            });
        }
        Ok(view(&svc, &job, now))
    }
}
