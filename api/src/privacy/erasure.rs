//! Erasure by destroying the key (issue 18).
//!
//! A service user asks (`requestErasure`); the request waits
//! `privacy.erasure_wait` (30 days), during which they may cancel it; then
//! the service carries it out. An admin carries out an erasure the
//! organisation ordered at once (`orderErasure`). Carrying out is, in order:
//!
//! 1. the decision (the `Erasure` aggregate accepts it, or nothing happens);
//! 2. a signed line in the erasure ledger, on disk, outside the database;
//! 3. the person's key destroyed (their sealed data never opens again);
//! 4. `PersonErased` appended: every projection blanks what it held of them;
//! 5. once the projections have passed it, SQLite's log is checkpointed and
//!    truncated, so the blanked rows' old pages leave the files.
//!
//! A crash between 2 and 4 loses nothing: every start (and every check of
//! due erasures) replays the ledger, destroying keys and recording erasures
//! the store lacks.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::erasure::{Basis, Erasure, ErasureCommand};
use uuid::Uuid;

use super::ledger::{Entry, Ledger};
use crate::auth::{Caller, Role};
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::{self, BigInt};
use crate::service::{CommandOutcome, Service};

/// Where a person's erasure stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ErasureState {
    /// Nothing asked.
    None,
    /// Asked for, waiting: it can be cancelled until `dueAt`.
    Requested,
    /// Carried out: the person's personal data cannot be read any more.
    Erased,
}

/// Why a person was erased.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ErasureBasis {
    /// The person asked, and the waiting period passed.
    PersonRequest,
    /// An admin carried out an order of the organisation.
    OrganisationOrder,
}

impl From<Basis> for ErasureBasis {
    fn from(basis: Basis) -> Self {
        match basis {
            Basis::PersonRequest => ErasureBasis::PersonRequest,
            Basis::OrganisationOrder => ErasureBasis::OrganisationOrder,
        }
    }
}

/// A person's erasure: asked for, waiting, or carried out. It holds no
/// personal data.
#[derive(SimpleObject, Debug, Clone)]
pub struct ErasureStatus {
    /// The person.
    pub person_id: ID,
    /// Where it stands.
    pub state: ErasureState,
    /// When it falls due, while it waits.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was carried out.
    pub erased_at: Option<DateTime<Utc>>,
    /// Why it was carried out.
    pub basis: Option<ErasureBasis>,
}

impl ErasureStatus {
    fn of(person: Uuid, erasure: &Erasure) -> Self {
        let (state, erased_at, basis) = match (erasure.erased, erasure.due) {
            (Some((at, basis)), _) => (ErasureState::Erased, Some(at), Some(basis.into())),
            (None, Some(_)) => (ErasureState::Requested, None, None),
            (None, None) => (ErasureState::None, None, None),
        };
        ErasureStatus {
            person_id: ids::person_id(person),
            state,
            due_at: erasure.due,
            erased_at,
            basis,
        }
    }
}

/// What an erasure mutation returns.
pub struct ErasurePayload {
    outcome: CommandOutcome,
    status: ErasureStatus,
}

/// What an erasure mutation returns.
#[Object]
impl ErasurePayload {
    /// The erasure as the mutation left it.
    async fn erasure(&self) -> &ErasureStatus {
        &self.status
    }

    /// Global position of the mutation's event in the event stream.
    async fn position(&self) -> BigInt {
        BigInt(self.outcome.position)
    }

    /// True when this is the stored result of an earlier request with the same idempotency key.
    async fn replayed(&self) -> bool {
        self.outcome.replayed
    }
}

/// The system acting for a person's own request that fell due, or replaying
/// the ledger: the metadata names the person (or the admin of an order).
fn acting(person: Uuid, organisation: &str, basis: Basis, by: Option<Uuid>) -> Caller {
    match (basis, by) {
        (Basis::OrganisationOrder, Some(admin)) => {
            Caller::acting(admin, Role::Admin, organisation, 0)
        }
        _ => Caller::acting(person, Role::ServiceUser, organisation, 0),
    }
}

impl Service {
    /// The erasure ledger this service keeps.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(&self.settings.privacy.ledger(&self.settings.store.data_dir))
    }

    /// A person's erasure, from its own stream.
    pub async fn erasure(&self, organisation: &str, person: Uuid) -> Result<Erasure, ApiError> {
        self.folded::<Erasure>(&domain::erasure::stream_id(organisation, person))
            .await
    }

    /// Carries out an erasure (the steps of the module's documentation).
    pub async fn carry_out_erasure(
        &self,
        person: Uuid,
        organisation: &str,
        basis: Basis,
        by: Option<Uuid>,
        at: DateTime<Utc>,
        request_id: &str,
    ) -> Result<CommandOutcome, ApiError> {
        let command = ErasureCommand::CarryOut {
            person,
            organisation: organisation.to_string(),
            basis,
            by,
            at,
        };
        // 1. Decided first: a refused erasure destroys nothing.
        let current = self.erasure(organisation, person).await?;
        current
            .decide(command.clone())
            .map_err(|e| ApiError::FailedPrecondition(e.to_string()))?;
        let master = self
            .db
            .vault
            .master()
            .ok_or_else(|| ApiError::internal("no master key"))?;
        // Their data exports go first: a job that looks again before it
        // records or keeps anything finds itself dropped.
        self.exports.forget_person(organisation, person);
        // 2. The ledger, on disk.
        self.ledger()
            .append(
                master,
                &Entry {
                    person,
                    organisation: organisation.to_string(),
                    basis,
                    by,
                    at,
                },
            )
            .map_err(ApiError::internal)?;
        // 3. The key.
        self.db
            .vault
            .destroy(
                &projections::vault::key_id(organisation, person),
                &projections::db::ts(at),
            )
            .await
            .map_err(ApiError::internal)?;
        // 4. The event.
        let caller = acting(person, organisation, basis, by);
        let outcome = self
            .run_command::<Erasure>(
                &caller,
                request_id,
                None,
                &domain::erasure::stream_id(organisation, person),
                command,
            )
            .await?;
        self.purge_after(outcome.checkpoint).await;
        tracing::info!(
            person = %person,
            basis = basis.as_str(),
            "a person was erased: their key is destroyed and every read model blanked"
        );
        Ok(outcome)
    }

    /// Step 5: once the projections passed the erasure, SQLite's log is
    /// checkpointed and truncated (old pages of blanked rows leave it).
    async fn purge_after(&self, checkpoint: projections::Checkpoint) {
        let names = self.engine.names();
        let timeout = self.settings.projections.read_your_writes_timeout;
        if !self.engine.wait_for(&names, checkpoint, timeout).await {
            tracing::warn!("the projections had not passed an erasure in time; its log is truncated at the next checkpoint");
        }
        if self.db.backend == projections::Backend::Sqlite {
            // `(busy, log frames, checkpointed)`: busy when a reader held the log.
            let answer: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.db.pool)
                    .await;
            match answer {
                Ok((0, _, _)) => {}
                Ok(_) => tracing::warn!(
                    "a reader held SQLite's log: its old pages are overwritten at the next checkpoint"
                ),
                Err(e) => tracing::warn!(error = %e, "the log could not be truncated after an erasure"),
            }
        }
    }

    /// Replays the erasure ledger: every key it names destroyed, every
    /// erasure it holds recorded (a restored backup brings none back).
    /// Returns how many erasures had to be recorded again.
    pub async fn replay_erasures(&self) -> Result<usize, ApiError> {
        let Some(master) = self.db.vault.master() else {
            return Ok(0);
        };
        let entries = self.ledger().read(master).map_err(ApiError::internal)?;
        let mut again = 0;
        for entry in entries {
            if !self
                .db
                .vault
                .is_erased(&projections::vault::key_id(
                    &entry.organisation,
                    entry.person,
                ))
                .await
                .map_err(ApiError::internal)?
            {
                self.exports
                    .forget_person(&entry.organisation, entry.person);
                self.db
                    .vault
                    .destroy(
                        &projections::vault::key_id(&entry.organisation, entry.person),
                        &projections::db::ts(entry.at),
                    )
                    .await
                    .map_err(ApiError::internal)?;
            }
            if self
                .erasure(&entry.organisation, entry.person)
                .await?
                .erased
                .is_some()
            {
                continue;
            }
            let caller = acting(entry.person, &entry.organisation, entry.basis, entry.by);
            let outcome = self
                .run_command::<Erasure>(
                    &caller,
                    "erasure-ledger",
                    None,
                    &domain::erasure::stream_id(&entry.organisation, entry.person),
                    ErasureCommand::Reapply {
                        person: entry.person,
                        organisation: entry.organisation.clone(),
                        basis: entry.basis,
                        by: entry.by,
                        at: entry.at,
                    },
                )
                .await?;
            self.purge_after(outcome.checkpoint).await;
            tracing::warn!(
                person = %entry.person,
                "the erasure ledger holds an erasure the store did not (a restored backup?): \
                 recorded again"
            );
            again += 1;
        }
        Ok(again)
    }

    /// Carries out every request that fell due.
    pub async fn erase_due(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let due = projections::read::erasure::due(&self.engine, &self.db, now).await?;
        let mut done = 0;
        for (person, organisation) in due {
            match self
                .carry_out_erasure(
                    person,
                    &organisation,
                    Basis::PersonRequest,
                    None,
                    now,
                    "erasure-due",
                )
                .await
            {
                Ok(_) => done += 1,
                // Cancelled or carried out meanwhile: the read model lagged.
                Err(ApiError::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Carries out due erasures and replays the ledger, every
/// `privacy.erasure_check`, until the service stops.
pub async fn watch_erasures(svc: Arc<Service>) {
    let every = svc
        .settings
        .privacy
        .erasure_check
        .max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        svc.exports.sweep(Utc::now());
        if let Err(e) = svc.exports.clear_leftovers() {
            tracing::warn!(error = ?e, "earlier runs' data exports could not be cleared");
        }
        if let Err(e) = svc.erase_due(Utc::now()).await {
            tracing::error!(error = ?e, "due erasures could not be carried out");
        }
        if let Err(e) = svc.replay_erasures().await {
            tracing::error!(error = ?e, "the erasure ledger could not be replayed");
        }
    }
}

/// A person's erasure, read.
#[derive(Default)]
pub struct ErasureQuery;

#[Object]
impl ErasureQuery {
    /// Where the caller's own erasure stands: nothing asked, waiting (and
    /// until when it can be cancelled), or carried out.
    async fn my_erasure(&self, ctx: &Context<'_>) -> async_graphql::Result<ErasureStatus> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let erasure = svc.erasure(&caller.organisation, caller.subject).await?;
        Ok(ErasureStatus::of(caller.subject, &erasure))
    }
}

/// Runs a command on the caller's own erasure stream (a service user's
/// request or its cancellation) and answers with where it stands.
async fn own_erasure(
    ctx: &Context<'_>,
    idempotency_key: Option<String>,
    command: impl FnOnce(&Caller, DateTime<Utc>) -> ErasureCommand,
) -> async_graphql::Result<ErasurePayload> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if !domain::access::may_request_erasure(&caller.actor()) {
        return Err(ApiError::Forbidden(
            "only a service user asks for (or cancels) their own erasure; an admin carries out \
             the organisation's orders"
                .into(),
        )
        .into());
    }
    let outcome = svc
        .run_command::<Erasure>(
            &caller,
            &request(ctx).request_id,
            crate::context::idempotency(ctx, idempotency_key),
            &domain::erasure::stream_id(&caller.organisation, caller.subject),
            command(&caller, now(ctx)),
        )
        .await?;
    let erasure = svc.erasure(&caller.organisation, caller.subject).await?;
    Ok(ErasurePayload {
        outcome,
        status: ErasureStatus::of(caller.subject, &erasure),
    })
}

/// Asking for, cancelling and ordering erasures.
#[derive(Default)]
pub struct ErasureMutation;

#[Object]
impl ErasureMutation {
    /// A service user asks for their personal data to be erased. It is
    /// carried out after the organisation's waiting period
    /// (`privacy.erasure_wait`, 30 days by default), during which
    /// `cancelErasure` takes it back. Then their key is destroyed: nothing
    /// they wrote can be read again, by anyone, from the store or its
    /// backups (`docs/privacy.md`).
    async fn request_erasure(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ErasurePayload> {
        let wait = service(ctx).settings.privacy.erasure_wait_chrono();
        own_erasure(ctx, idempotency_key, |caller, at| ErasureCommand::Request {
            person: caller.subject,
            organisation: caller.organisation.clone(),
            wait,
            at,
        })
        .await
    }

    /// Takes back the caller's request to be erased, while it waits.
    async fn cancel_erasure(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ErasurePayload> {
        own_erasure(ctx, idempotency_key, |_, at| ErasureCommand::Cancel { at }).await
    }

    /// An admin carries out, at once, an erasure their organisation ordered,
    /// of a service user or a provider of the organisation. What the
    /// organisation must keep by law is out of scope (the portal is the
    /// person's; `docs/privacy.md`).
    async fn order_erasure(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The person to erase: their person id, or the global id of their provider profile or control panel."
        )]
        person_id: ID,
    ) -> async_graphql::Result<ErasurePayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let person = ids::person(&person_id)?;
        let organisation = caller.organisation.clone();
        if !domain::access::may_order_erasure(&caller.actor(), &organisation) {
            return Err(ApiError::Forbidden(
                "only an admin of the organisation carries out its erasure orders".into(),
            )
            .into());
        }
        // A person of the admin's organisation: a portal or a provider profile here.
        let here = svc.portal_organisation(person).await?.as_deref() == Some(organisation.as_str())
            || svc.provider(person).await?.organisation.as_deref() == Some(organisation.as_str());
        if !here {
            return Err(
                ApiError::NotFound(format!("no person {person} in your organisation")).into(),
            );
        }
        let outcome = svc
            .carry_out_erasure(
                person,
                &organisation,
                Basis::OrganisationOrder,
                Some(caller.subject),
                now(ctx),
                &request(ctx).request_id,
            )
            .await?;
        let erasure = svc.erasure(&organisation, person).await?;
        Ok(ErasurePayload {
            outcome,
            status: ErasureStatus::of(person, &erasure),
        })
    }
}
