//! Who takes part in the forum and how, and the checks before a write:
//! the organisation's forum opened on first use, a topic or post of the
//! caller's organisation (NOT_FOUND for any other), a writer who is named,
//! registered and not silenced.

use async_graphql::{Context, ID};
use domain::access::{self, ForumPart};
use domain::forum::{Forum, ForumCommand, Member, MemberKind, Topic};
use projections::read::forum as rows;
use projections::read::Scope;
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{now, request, service};
use crate::error::ApiError;
use crate::ids;
use crate::service::Service;

pub(super) fn scope(caller: &Caller) -> Scope<'_> {
    Scope {
        organisation: &caller.organisation,
    }
}

/// How the caller takes part: as a member of a kind, or refused.
pub(super) fn member_kind(caller: &Caller) -> Result<MemberKind, ApiError> {
    match access::forum_part(&caller.actor(), &caller.organisation) {
        ForumPart::Member(kind) => Ok(kind),
        ForumPart::LogReader => Err(ApiError::Forbidden(
            "auditors read the forum's moderation log, not its posts".into(),
        )),
        ForumPart::Outside => Err(ApiError::Forbidden(
            "only service users, providers and moderators of the organisation take part in its forum".into(),
        )),
    }
}

pub(super) fn moderator_only(caller: &Caller) -> Result<(), ApiError> {
    if access::may_moderate(&caller.actor(), &caller.organisation) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the organisation's moderators do this".into(),
        ))
    }
}

/// The caller's organisation's forum, opened (with the default categories) on first use.
pub(super) async fn forum_here(ctx: &Context<'_>, caller: &Caller) -> Result<Forum, ApiError> {
    let svc = service(ctx);
    let forum: Forum = svc.folded(&caller.organisation).await?;
    if forum.organisation.is_some() {
        return Ok(forum);
    }
    let command = ForumCommand::Open {
        organisation: caller.organisation.clone(),
        at: now(ctx),
    };
    // Another request may open it at the same moment: either way it is open.
    match svc
        .run_command::<Forum>(
            caller,
            &request(ctx).request_id,
            None,
            &caller.organisation,
            command,
        )
        .await
    {
        Ok(_) | Err(ApiError::Conflict(_)) | Err(ApiError::FailedPrecondition(_)) => {}
        Err(other) => return Err(other),
    }
    svc.folded(&caller.organisation).await
}

/// A topic of the caller's organisation, as its events leave it; NOT_FOUND
/// for any other (of another organisation above all).
pub(super) async fn topic_here(
    svc: &Service,
    caller: &Caller,
    topic_id: Uuid,
) -> Result<Topic, ApiError> {
    let topic: Topic = svc.folded(&topic_id.to_string()).await?;
    if topic.id.is_none() || topic.organisation != caller.organisation {
        return Err(ApiError::NotFound("no such topic".into()));
    }
    Ok(topic)
}

/// The topic of a post named by the caller: its id, the post's, and the
/// topic as its events leave it.
pub(super) async fn post_topic(
    svc: &Service,
    caller: &Caller,
    id: &ID,
) -> Result<(Uuid, Uuid, Topic), ApiError> {
    let (topic, post) = ids::forum_post(id)?;
    let topic = match topic {
        Some(topic) => topic,
        None => rows::posts_by_id(&svc.engine, &svc.db, scope(caller), caller.subject, &[post])
            .await?
            .first()
            .map(|p| p.topic_id)
            .ok_or_else(|| ApiError::NotFound("no such post".into()))?,
    };
    let topic_state = topic_here(svc, caller, topic).await?;
    if !topic_state.posts.iter().any(|p| p.id == post) {
        return Err(ApiError::NotFound("no such post".into()));
    }
    Ok((topic, post, topic_state))
}

/// The caller as a member who may write now: named (peers and moderators),
/// registered (staff), not silenced; and the forum as its events leave it.
pub(super) async fn writer(
    ctx: &Context<'_>,
    caller: &Caller,
) -> Result<(Member, Forum), ApiError> {
    let kind = member_kind(caller)?;
    let forum = forum_here(ctx, caller).await?;
    let at = now(ctx);
    if let Some(until) = forum.silenced(caller.subject, at) {
        return Err(ApiError::Forbidden(format!(
            "a moderator silenced you in the forum until {}",
            until.to_rfc3339()
        )));
    }
    match kind {
        MemberKind::Staff => {
            let profile = service(ctx).provider(caller.subject).await?;
            if profile.organisation.as_deref() != Some(caller.organisation.as_str()) {
                return Err(ApiError::FailedPrecondition(
                    "register your provider profile first: staff take part under its name and profession".into(),
                ));
            }
        }
        MemberKind::Peer | MemberKind::Moderator => {
            if !forum.names.contains_key(&caller.subject) {
                return Err(ApiError::FailedPrecondition(
                    "choose a forum name first (`chooseForumName`)".into(),
                ));
            }
        }
    }
    Ok((
        Member {
            person: caller.subject,
            kind,
        },
        forum,
    ))
}
