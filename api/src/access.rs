//! Who may read what in a portal, and the record of every look by someone
//! other than its owner.
//!
//! The owner reads everything in their portal. A provider reads a section
//! while their care relationship with the owner is active and holds a grant of
//! that section that has not expired, or (the crisis plan only) while a
//! break-glass opening lasts. Nobody else reads portal content: not other
//! service users, auditors, admins, moderators or researchers.
//!
//! Every read by a non-owner of an existing portal, allowed or refused, is
//! queued for the access trail as soon as it is decided; the answer is built
//! meanwhile, and leaves only once the record is committed. If the record
//! cannot be written, the request fails (fail closed). Decisions fold the
//! relationship's own events, never a projection, so a revocation or an
//! expiry holds for the very next read.

use async_graphql::Context;
use domain::care::{self, Basis as CareBasis, CareRelationship, RelationshipState};
use domain::portal::Section;
use domain::trail::{AccessRecord, Basis, GENESIS};
use projections::control_panel;
use projections::EventMetadata;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::context::{caller, get, now, request, service};
use crate::error::ApiError;
use crate::service::Service;

/// A read that was let through.
pub(crate) struct Reader {
    /// The portal's row in the control-panel projection.
    pub row: AnyRow,
    /// True when the caller reads their own portal.
    pub owner: bool,
}

/// The organisation of an open portal, read with its row.
async fn portal_row(svc: &Service, portal_id: Uuid) -> Result<Option<AnyRow>, ApiError> {
    let table = svc.engine.table(control_panel::NAME, "cp_portals");
    sqlx::query(&format!(
        "SELECT portal_id, organisation, opened_at, updated_at, version FROM {table} WHERE portal_id = $1"
    ))
    .bind(portal_id.to_string())
    .fetch_optional(&svc.db.pool)
    .await
    .map_err(ApiError::internal)
}

/// The one answer to a non-owner who may not read a portal, whether it
/// exists, is in another organisation, or they have no relationship with its
/// owner: nobody learns which.
fn not_yours() -> ApiError {
    ApiError::Forbidden("you may not read this portal".into())
}

/// A record of `caller` reading `section` of `subject`'s portal (or trail) in
/// `organisation` now, refused until a basis is set.
pub(crate) fn record_of(
    ctx: &Context<'_>,
    caller: &Caller,
    subject: Option<Uuid>,
    organisation: &str,
    section: &str,
) -> AccessRecord {
    AccessRecord {
        reader_id: caller.subject,
        reader_role: caller.role.as_str().to_string(),
        reader_organisation: caller.organisation.clone(),
        subject_id: subject,
        organisation: organisation.to_string(),
        section: section.to_string(),
        query: ctx.field().name().to_string(),
        basis: Basis::Refused,
        relationship_id: None,
        basis_sequence: None,
        refusal: None,
        detail: None,
        request_id: request(ctx).request_id.clone(),
        client_address: request(ctx).client_address.clone(),
        at: now(),
        prev_hash: GENESIS.to_string(),
    }
}

/// Checks that the caller may read `section` of `portal_id`, records the
/// look of anyone but the owner (allowed or refused) in the access trail, and
/// returns the portal's row.
pub(crate) async fn authorize_read(
    ctx: &Context<'_>,
    portal_id: Uuid,
    section: Section,
) -> Result<Reader, ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    over_http(ctx)?;
    let owner = caller.role == Role::ServiceUser && caller.subject == portal_id;
    // A provider's relationship is read beside the portal, not after it.
    let relationship = async {
        match caller.role {
            Role::Provider => svc
                .relationship(care::relationship_id(portal_id, caller.subject))
                .await
                .map(Some),
            _ => Ok(None),
        }
    };
    let (row, relationship) = tokio::try_join!(portal_row(svc, portal_id), relationship)?;
    let Some(row) = row else {
        return Err(if owner {
            ApiError::NotFound("this portal has not been opened yet".into())
        } else {
            not_yours()
        });
    };
    let organisation: String = get(&row, "organisation")?;
    if owner {
        if organisation != caller.organisation {
            return Err(ApiError::Forbidden(
                "this portal belongs to another organisation".into(),
            ));
        }
        return Ok(Reader { row, owner });
    }
    let mut record = record_of(
        ctx,
        &caller,
        Some(portal_id),
        &organisation,
        section.as_str(),
    );
    let decision = decide(&caller, relationship, &organisation, section, record.at);
    match &decision {
        Ok((basis, relationship, sequence)) => {
            record.basis = *basis;
            record.relationship_id = Some(*relationship);
            record.basis_sequence = Some(*sequence);
        }
        Err(refusal) => record.refusal = Some(refusal.code().to_string()),
    }
    submit(ctx, &caller, record)?;
    decision.map(|_| Reader { row, owner })
}

/// On what basis the caller may read `section` at `at`: the basis, the
/// relationship and the sequence number of the granting event; or the refusal.
fn decide(
    caller: &Caller,
    relationship: Option<CareRelationship>,
    organisation: &str,
    section: Section,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(Basis, Uuid, i64), ApiError> {
    if organisation != caller.organisation {
        return Err(not_yours());
    }
    // Only a party to an active relationship learns more than "no".
    let Some(relationship) = relationship.filter(|r| {
        caller.role == Role::Provider
            && r.state == RelationshipState::Active
            && r.provider_id == Some(caller.subject)
    }) else {
        return Err(not_yours());
    };
    let Some(relationship_id) = relationship
        .user_id
        .map(|user| care::relationship_id(user, caller.subject))
    else {
        return Err(not_yours());
    };
    match relationship.basis(section, at) {
        Some(CareBasis::Grant(grant)) => Ok((Basis::Grant, relationship_id, grant.sequence)),
        Some(CareBasis::BreakGlass(bg)) => Ok((Basis::BreakGlass, relationship_id, bg.sequence)),
        None => Err(ApiError::Forbidden(format!(
            "the service user has not given you access to their {} section",
            section.as_str().replace('_', " ")
        ))),
    }
}

/// Refuses a read that must be recorded when it did not come over HTTP
/// (a WebSocket operation): only the HTTP layer waits for the records.
pub(crate) fn over_http(ctx: &Context<'_>) -> Result<(), ApiError> {
    if request(ctx).over_websocket {
        return Err(ApiError::BadInput(
            "portal and access-log reads go over HTTP; the WebSocket carries subscriptions".into(),
        ));
    }
    Ok(())
}

/// Queues a record for the trail with the request's metadata; the HTTP
/// layer holds the answer until it is committed.
pub(crate) fn submit(
    ctx: &Context<'_>,
    caller: &Caller,
    record: AccessRecord,
) -> Result<(), ApiError> {
    over_http(ctx)?;
    let svc = service(ctx);
    let metadata = EventMetadata {
        actor_id: caller.subject.to_string(),
        actor_role: caller.role.as_str().to_string(),
        organisation: caller.organisation.clone(),
        request_id: request(ctx).request_id.clone(),
        command_id: Uuid::new_v4().to_string(),
        idempotency_key: None,
        idempotency_fingerprint: None,
    };
    request(ctx)
        .receipts
        .push(svc.trail.submit(record, metadata));
    Ok(())
}

/// Records a read of the trail itself (a service user's own log, an
/// auditor's search) before it is answered. `subject` is whose trail it is;
/// `detail` says what was asked (never content).
pub(crate) fn record_trail_read(
    ctx: &Context<'_>,
    caller: &Caller,
    subject: Option<Uuid>,
    basis: Basis,
    detail: String,
) -> Result<(), ApiError> {
    let mut record = record_of(
        ctx,
        caller,
        subject,
        &caller.organisation,
        domain::trail::ACCESS_LOG,
    );
    record.basis = basis;
    record.detail = Some(detail);
    submit(ctx, caller, record)
}
