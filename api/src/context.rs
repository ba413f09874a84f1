//! What every resolver takes from the request: who is asking, the service,
//! the request's facts (id, address, trail receipts), row decoding, the
//! organisation checks, idempotency fingerprints, and the one path by which
//! a portal command runs. Below every resolver module; imports none of them.

use std::sync::Arc;

use async_graphql::Context;

use domain::portal::PortalCommand;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::{CommandOutcome, Service, Stored};

pub use crate::request::{Receipts, RequestContext};

pub(crate) fn service<'a>(ctx: &Context<'a>) -> &'a Arc<Service> {
    ctx.data_unchecked::<Arc<Service>>()
}

pub(crate) fn request<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// The verified caller, or `UNAUTHENTICATED`.
pub fn caller(ctx: &Context<'_>) -> Result<Caller, ApiError> {
    request(ctx)
        .caller
        .clone()
        .map_err(ApiError::Unauthenticated)
}

/// Runs `command` on the caller's own portal after the role and tenancy checks.
pub(crate) async fn run<P: From<CommandOutcome>>(
    ctx: &Context<'_>,
    idempotency_key: Option<String>,
    command: PortalCommand,
) -> async_graphql::Result<P> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if !caller.may(domain::access::Duty::KeepPortal) {
        return Err(
            ApiError::Forbidden("only a service user can change their own portal".into()).into(),
        );
    }
    // Also for openPortal: the id may have a portal in another organisation.
    own_portal_here(svc, &caller).await?;
    Ok(svc
        .execute(
            &caller,
            &request(ctx).request_id,
            idempotency(ctx, idempotency_key),
            command,
        )
        .await?
        .into())
}

/// The item of the caller's own portal a mutation's argument names: a global
/// id of an item of another portal names nothing there (NOT_FOUND), rather
/// than its uuid being taken for one of the caller's.
pub(crate) fn own(ctx: &Context<'_>, named: (Option<Uuid>, Uuid)) -> Result<Uuid, ApiError> {
    let caller = caller(ctx)?;
    match named {
        (Some(portal), _) if portal != caller.subject => Err(ApiError::NotFound(
            "that id names nothing in your portal".into(),
        )),
        (_, item) => Ok(item),
    }
}

/// Refuses a caller whose subject id has a portal in another organisation:
/// a token of one organisation never acts on, or reads about, a portal of
/// another that happens to carry the same id.
pub(crate) async fn own_portal_here(svc: &Service, caller: &Caller) -> Result<(), ApiError> {
    let portal = svc.portal_organisation(caller.subject).await?;
    if !domain::access::same_person(&caller.actor(), portal.as_deref(), None) {
        return Err(ApiError::Forbidden(
            "this portal belongs to another organisation".into(),
        ));
    }
    Ok(())
}

/// Refuses a caller whose subject id is a person of another organisation:
/// a portal or a provider profile there (`domain::access::same_person`).
pub(crate) async fn identity_here(svc: &Service, caller: &Caller) -> Result<(), ApiError> {
    let (portal, profile) = tokio::try_join!(
        svc.portal_organisation(caller.subject),
        svc.provider(caller.subject)
    )?;
    if !domain::access::same_person(
        &caller.actor(),
        portal.as_deref(),
        profile.organisation.as_deref(),
    ) {
        return Err(ApiError::Forbidden(
            "this person belongs to another organisation".into(),
        ));
    }
    Ok(())
}

/// The client's idempotency key with the fingerprint of the mutation it came
/// with: the field's name and its arguments (variables resolved, object keys
/// sorted, the key itself left out), hashed.
pub(crate) fn idempotency(
    ctx: &Context<'_>,
    key: Option<String>,
) -> Option<crate::service::IdempotencyKey> {
    use sha2::{Digest, Sha256};
    let key = key?;
    let field = ctx.field();
    let mut arguments: Vec<(String, serde_json::Value)> = field
        .arguments()
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name.as_str() != "idempotencyKey")
        .map(|(name, value)| {
            let json = value.into_json().unwrap_or(serde_json::Value::Null);
            (name.to_string(), canonical(json))
        })
        .collect();
    arguments.sort_by(|a, b| a.0.cmp(&b.0));
    let text = serde_json::to_string(&(field.name(), arguments)).unwrap_or_default();
    Some(crate::service::IdempotencyKey {
        key,
        fingerprint: hex::encode(Sha256::digest(text.as_bytes())),
    })
}

/// The same JSON with every object's keys in sorted order.
fn canonical(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(canonical).collect())
        }
        other => other,
    }
}

/// The time now, by the request's clock.
pub fn now(ctx: &Context<'_>) -> chrono::DateTime<chrono::Utc> {
    request(ctx).clock.now()
}

/// Runs a command on aggregate `aggregate_id` of type `A` for a caller whose
/// right to it was checked, with the request's id and idempotency key, and
/// turns the outcome into the mutation's payload `P`.
pub(crate) async fn run_on<A: Stored, P: From<CommandOutcome>>(
    ctx: &Context<'_>,
    caller: &Caller,
    idempotency_key: Option<String>,
    aggregate_id: &str,
    command: A::Command,
) -> Result<P, ApiError> {
    service(ctx)
        .run_command::<A>(
            caller,
            &request(ctx).request_id,
            idempotency(ctx, idempotency_key),
            aggregate_id,
            command,
        )
        .await
        .map(P::from)
}
