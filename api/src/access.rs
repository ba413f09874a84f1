//! Reads of a portal by anyone: the decision (`domain::access::read_section`,
//! where the rules and their table-driven test live) applied to the caller,
//! and the record of every look by someone other than the owner.
//!
//! Every read by a non-owner of an existing portal, allowed or refused, is
//! queued for the access trail as soon as it is decided; the answer is built
//! meanwhile, and leaves only once the record is committed. If the record
//! cannot be written, the request fails (fail closed). Decisions fold the
//! relationship's own events, never a projection, so a revocation or an
//! expiry holds for the very next read.

use async_graphql::Context;
use domain::access::{read_section, Duty, PortalRef, ReadBasis, ReadRefusal};
use domain::care;
use domain::care::Side;
use domain::portal::Section;
use domain::trail::{AccessRecord, Basis, GENESIS};
use projections::read::portal::{locate, Located, Portal};
use projections::read::Scope;
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;

/// A read that was let through.
pub(crate) struct Reader {
    /// The portal, found within the caller's organisation: what the readers
    /// of its sections take.
    pub portal: Portal,
    /// True when the caller reads their own portal.
    pub owner: bool,
}

/// The answer to a provider about a portal they have no active
/// relationship with, whether it exists, is in another organisation, or is
/// another provider's to see: for them there is no such portal, as an
/// auditor is told of a person outside their organisation.
fn unknown() -> ApiError {
    ApiError::NotFound("no portal you may read has this id".into())
}

/// The answer to a role that never reads someone else's portal, whatever
/// the portal.
fn not_this_role() -> ApiError {
    ApiError::Forbidden("your role does not read other people's portals".into())
}

/// The answer to a refusal of `domain::access::read_section`.
fn refused(refusal: ReadRefusal, section: Section) -> ApiError {
    match refusal {
        ReadRefusal::OwnerElsewhere => {
            ApiError::Forbidden("this portal belongs to another organisation".into())
        }
        ReadRefusal::NotThisRole => not_this_role(),
        ReadRefusal::Unknown => unknown(),
        ReadRefusal::NotGranted => not_granted(section),
    }
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
        at: now(ctx),
        attempts: 1,
        first_at: None,
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
    // Anyone's read of a portal shows its owner's acknowledged writes.
    svc.marks
        .settle(svc.marks.for_portal(&caller.organisation, portal_id))
        .await;
    let owner = caller.may(Duty::KeepPortal) && caller.subject == portal_id;
    // A provider's relationship is read beside the portal, not after it.
    let relationship = async {
        match caller.care_side() {
            Some(Side::Provider) => svc
                .relationship(care::relationship_id(portal_id, caller.subject))
                .await
                .map(Some),
            _ => Ok(None),
        }
    };
    let scope = Scope {
        organisation: &caller.organisation,
    };
    let located =
        async { Ok::<_, ApiError>(locate(&svc.engine, &svc.db, scope, portal_id).await?) };
    let (located, relationship) = tokio::try_join!(located, relationship)?;
    // Marks are kept per organisation: a reader of another one may find a
    // portal just opened missing from the read model, and its first event
    // says where it is.
    let located = match located {
        Located::Nowhere => match svc.portal_organisation(portal_id).await? {
            Some(organisation) if organisation != caller.organisation => {
                Located::Elsewhere { organisation }
            }
            _ => Located::Nowhere,
        },
        located => located,
    };
    let (found, organisation) = match located {
        Located::Here(portal) => {
            let organisation = portal.organisation().to_string();
            (Some(portal), organisation)
        }
        Located::Elsewhere { organisation } => (None, organisation),
        Located::Nowhere => {
            if owner {
                return Err(ApiError::NotFound(
                    "this portal has not been opened yet".into(),
                ));
            }
            // No portal: one of no organisation, refused as the rules say.
            let nowhere = PortalRef {
                owner: portal_id,
                organisation: domain::access::NO_ORGANISATION,
            };
            let refusal = read_section(&caller.actor(), nowhere, None, section, now(ctx))
                .err()
                .unwrap_or(ReadRefusal::Unknown);
            return Err(refused_counted(ctx, &caller, refusal, section));
        }
    };
    let portal = PortalRef {
        owner: portal_id,
        organisation: &organisation,
    };
    let at = now(ctx);
    let decision = read_section(&caller.actor(), portal, relationship.as_ref(), section, at);
    // The rules refuse every reader of another organisation's portal.
    let let_through = |found: Option<Portal>, owner: bool| match found {
        Some(portal) => Ok(Reader { portal, owner }),
        None => Err(unknown()),
    };
    match decision {
        Ok(ReadBasis::Owner) => return let_through(found, true),
        Err(ReadRefusal::OwnerElsewhere) => {
            return Err(refused(ReadRefusal::OwnerElsewhere, section))
        }
        _ => {}
    }
    // Anyone but the owner: the look is recorded, allowed or refused.
    let mut record = record_of(
        ctx,
        &caller,
        Some(portal_id),
        &organisation,
        section.as_str(),
    );
    record.at = at;
    match decision {
        Ok(ReadBasis::Grant {
            relationship,
            sequence,
        }) => {
            record.basis = Basis::Grant;
            record.relationship_id = Some(relationship);
            record.basis_sequence = Some(sequence);
        }
        Ok(ReadBasis::BreakGlass {
            relationship,
            sequence,
        }) => {
            record.basis = Basis::BreakGlass;
            record.relationship_id = Some(relationship);
            record.basis_sequence = Some(sequence);
        }
        // The owner returned above; a refusal's code is set below.
        Ok(ReadBasis::Owner) | Err(_) => {}
    }
    match decision {
        Ok(_) => {
            submit(ctx, &caller, record)?;
            let_through(found, false)
        }
        Err(refusal) => {
            let answer = refused_counted(ctx, &caller, refusal, section);
            record.refusal = Some(answer.code().to_string());
            submit(ctx, &caller, record)?;
            Err(answer)
        }
    }
}

/// The answer to a refused read, counted against the reader's allowance of
/// refusals (`server.refusals_per_minute`): past it, RATE_LIMITED.
fn refused_counted(
    ctx: &Context<'_>,
    caller: &Caller,
    refusal: ReadRefusal,
    section: Section,
) -> ApiError {
    match service(ctx)
        .refusal_limit
        .take(&caller.organisation, caller.subject)
    {
        Ok(()) => refused(refusal, section),
        Err(limited) => limited,
    }
}

/// The answer to a provider in an active relationship without a grant of
/// `section`.
fn not_granted(section: Section) -> ApiError {
    ApiError::Forbidden(format!(
        "the service user has not given you access to their {} section",
        section.as_str().replace('_', " ")
    ))
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

/// Queues a record for the trail with the request's metadata (a refused
/// attempt is held and coalesced with the request's others); the HTTP layer
/// holds the answer until every one is committed.
pub(crate) fn submit(
    ctx: &Context<'_>,
    caller: &Caller,
    record: AccessRecord,
) -> Result<(), ApiError> {
    over_http(ctx)?;
    let svc = service(ctx);
    let metadata = caller.metadata(&request(ctx).request_id, &Uuid::new_v4().to_string());
    let receipts = &request(ctx).receipts;
    if record.allowed() {
        receipts.push(svc.trail.submit(record, metadata));
    } else {
        receipts.hold(&svc.trail, record, metadata);
    }
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
