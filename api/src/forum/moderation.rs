//! What moderators read (the queue with concerns on top, concerns, name
//! history), the moderation log (moderators and auditors), and an admin's
//! resolution of a forum name (recorded in that person's access trail).

use std::collections::HashMap;

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::access;
use domain::forum;
use projections::read::forum as rows;
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, service};
use crate::error::ApiError;
use crate::ids::{self, BigInt, NodeId};
use crate::paging::{connection, Page, Window};
use crate::service::Service;

use super::rules::*;
use super::views::*;

/// What a moderator did about a concern.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::forum::ConcernAction")]
pub enum ConcernAction {
    /// Reached out to the person.
    ContactedPerson,
    /// Passed it to the person's care team or the crisis service.
    ContactedCareTeam,
    /// Called emergency services.
    EmergencyServices,
    /// Shared support resources.
    SharedResources,
    /// Looked, and no action was needed.
    NoActionNeeded,
}

/// A flag of a post, for moderators (who flagged stays out).
#[derive(SimpleObject, Clone)]
pub struct ForumFlag {
    /// Why.
    pub reason: FlagReason,
    /// The flagger's words (required for `OTHER`).
    pub note: String,
    /// How much it weighs: 1 for a peer, 2 for staff, 3 for a moderator.
    pub weight: i32,
    /// When.
    pub at: DateTime<Utc>,
}

/// A post whose flags await review.
#[derive(SimpleObject, Clone)]
pub struct FlaggedPost {
    /// The post, its text included.
    pub post: ForumPost,
    /// Its topic's title.
    pub topic_title: String,
    /// Its flags, oldest first.
    pub flags: Vec<ForumFlag>,
}

/// A concern for someone's safety, for moderators.
#[derive(SimpleObject, Clone)]
pub struct ForumConcern {
    /// The concern's global id.
    pub id: ID,
    /// The post it is about.
    pub post: ForumPost,
    /// Its topic's title.
    pub topic_title: String,
    /// What the member who raised it said (may be empty; who raised it stays out).
    pub note: String,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// How many times it was raised again because no moderator opened it.
    pub raised_again: i32,
    /// When a moderator opened it; null while nobody has.
    pub opened_at: Option<DateTime<Utc>>,
    /// When a moderator recorded what was done; null while open.
    pub resolved_at: Option<DateTime<Utc>>,
    /// What was done.
    pub action: Option<ConcernAction>,
    /// The moderator's note on what was done.
    pub outcome: Option<String>,
    /// The organisation's guidance for moderators handling a concern.
    pub guidance: String,
}

/// What moderators have to look at.
#[derive(SimpleObject, Clone)]
pub struct ModerationQueue {
    /// The organisation's guidance for concerns.
    pub guidance: String,
    /// Concerns for someone's safety not yet resolved, oldest first: always on top.
    pub concerns: Vec<ForumConcern>,
    /// Posts whose flags await review, highest score first (at most 100).
    pub flagged: Vec<FlaggedPost>,
}

/// One entry of the moderation log.
#[derive(SimpleObject, Clone)]
pub struct ModerationEntry {
    /// Its global position (the log's order).
    pub position: BigInt,
    /// What was done: `post_hidden`, `post_restored`, `topic_closed`, `topic_reopened`, `member_silenced`, `silence_lifted`, `category_added`, `category_retired`, `concern_resolved`.
    pub action: String,
    /// The moderator's person id, for auditors (who answer for the log);
    /// null for moderators, who see each other by forum name, and when flags
    /// hid a post.
    pub moderator_id: Option<ID>,
    /// The moderator's forum name, when they have one.
    pub moderator_name: Option<String>,
    /// `post`, `topic`, `member`, `category` or `concern`.
    pub target_kind: String,
    /// The target's id (a post's or topic's global id, a silence's uuid, a category's key, a concern's global id).
    pub target_id: ID,
    /// The target's name where it has one (a silenced member as they appeared, a category's title, a concern's action).
    pub target_name: Option<String>,
    /// The topic concerned, if any.
    pub topic_id: Option<ID>,
    /// The reason given.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
    /// True when undone since (a post restored, a topic reopened, a silence lifted).
    pub reverted: bool,
    /// When it was undone.
    pub reverted_at: Option<DateTime<Utc>>,
}

connection!(
    /// A page of the moderation log, newest first.
    ModerationEntryConnection,
    ModerationEntryEdge,
    ModerationEntry
);

/// A change of forum name, for moderators (who it is stays out).
#[derive(SimpleObject, Clone)]
pub struct ForumNameChange {
    /// The name chosen.
    pub name: String,
    /// The name it replaced; null for a first name.
    pub previous: Option<String>,
    /// Peer or moderator.
    pub kind: ForumMemberKind,
    /// When.
    pub at: DateTime<Utc>,
}

/// Who is behind a forum name: for an admin, recorded in that person's access trail.
#[derive(SimpleObject, Clone)]
pub struct ForumNameHolder {
    /// The person's id.
    pub person_id: ID,
    /// The name, as held.
    pub name: String,
    /// Peer or moderator.
    pub kind: ForumMemberKind,
}

/// A silence of a member.
#[derive(SimpleObject, Clone)]
pub struct ForumSilence {
    /// The silence's id (to lift it).
    pub id: Uuid,
    /// How the member appears.
    pub member: String,
    /// Until when.
    pub until: DateTime<Utc>,
}

pub(super) async fn concern_views(
    svc: &Service,
    caller: &Caller,
    list: Vec<rows::ConcernRow>,
) -> Result<Vec<ForumConcern>, ApiError> {
    let post_ids: Vec<Uuid> = list.iter().map(|c| c.post_id).collect();
    let posts = rows::posts_by_id(
        &svc.engine,
        &svc.db,
        scope(caller),
        caller.subject,
        &post_ids,
    )
    .await?;
    let views = post_views(svc, caller, true, &posts).await?;
    let by_id: HashMap<Uuid, ForumPost> = views.into_iter().map(|p| (p.uuid, p)).collect();
    let titles = topic_titles(svc, caller, list.iter().map(|c| c.topic_id)).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            Some(ForumConcern {
                id: NodeId::ForumConcern {
                    topic: c.topic_id,
                    concern: c.concern_id,
                }
                .id(),
                post: by_id.get(&c.post_id)?.clone(),
                topic_title: titles.get(&c.topic_id).cloned().unwrap_or_default(),
                note: c.note,
                raised_at: c.raised_at,
                raised_again: c.rounds as i32,
                opened_at: c.opened_at,
                resolved_at: c.resolved_at,
                action: c
                    .action
                    .as_deref()
                    .and_then(forum::ConcernAction::parse)
                    .map(Into::into),
                outcome: c.outcome,
                guidance: svc.settings.forum.concern_guidance.clone(),
            })
        })
        .collect())
}

pub(super) async fn topic_titles(
    svc: &Service,
    caller: &Caller,
    topics: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, ApiError> {
    let mut out = HashMap::new();
    for topic in topics {
        if out.contains_key(&topic) {
            continue;
        }
        if let Some(row) =
            rows::topic(&svc.engine, &svc.db, scope(caller), caller.subject, topic).await?
        {
            out.insert(topic, row.title);
        }
    }
    Ok(out)
}

/// Moderators' and auditors' reads of the forum; an admin's resolution of a name.
#[derive(Default)]
pub struct ModerationQuery;

#[Object]
impl ModerationQuery {
    /// What moderators have to look at: concerns first, then flagged posts.
    async fn moderation_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<ModerationQueue> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        let concerns = rows::concerns(&svc.engine, &svc.db, scope(&caller), true, 200).await?;
        let concerns = concern_views(svc, &caller, concerns).await?;
        let flagged_rows =
            rows::flagged(&svc.engine, &svc.db, scope(&caller), caller.subject, 100).await?;
        let ids: Vec<Uuid> = flagged_rows.iter().map(|p| p.post_id).collect();
        let flags = rows::flags_of(&svc.engine, &svc.db, scope(&caller), &ids).await?;
        let titles = topic_titles(svc, &caller, flagged_rows.iter().map(|p| p.topic_id)).await?;
        let views = post_views(svc, &caller, true, &flagged_rows).await?;
        let flagged = views
            .into_iter()
            .zip(flagged_rows.iter())
            .map(|(post, row)| FlaggedPost {
                topic_title: titles.get(&row.topic_id).cloned().unwrap_or_default(),
                flags: flags
                    .iter()
                    .filter(|f| f.post_id == row.post_id)
                    .filter_map(|f| {
                        Some(ForumFlag {
                            reason: forum::FlagReason::parse(&f.reason)?.into(),
                            note: f.note.clone(),
                            weight: f.weight as i32,
                            at: f.at,
                        })
                    })
                    .collect(),
                post,
            })
            .collect();
        Ok(ModerationQueue {
            guidance: svc.settings.forum.concern_guidance.clone(),
            concerns,
            flagged,
        })
    }

    /// Every concern for someone's safety, unresolved first (at most 200): moderators.
    async fn forum_concerns(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ForumConcern>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        let list = rows::concerns(&svc.engine, &svc.db, scope(&caller), false, 200).await?;
        Ok(concern_views(svc, &caller, list).await?)
    }

    /// Every change of forum name, newest first (at most 200), without who: moderators.
    async fn forum_name_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ForumNameChange>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        let list = rows::name_history(&svc.engine, &svc.db, scope(&caller), None, 200).await?;
        Ok(list
            .into_iter()
            .map(|c| ForumNameChange {
                name: c.name,
                previous: c.previous,
                kind: c.kind.into(),
                at: c.at,
            })
            .collect())
    }

    /// The moderation log, newest first, a page at a time: for moderators and auditors.
    #[graphql(complexity = "crate::paging::cost(first, None, 50, child_complexity)")]
    async fn moderation_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries (1-200, default 50).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<ModerationEntryConnection> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !access::may_read_moderation_log(&caller.actor(), &caller.organisation) {
            return Err(ApiError::Forbidden(
                "only moderators and auditors read the moderation log".into(),
            )
            .into());
        }
        // Moderators see one another by forum name; auditors, who answer
        // for the log, by person.
        let auditor = !access::may_moderate(&caller.actor(), &caller.organisation);
        let window = Window::forward("moderation_log", first, after.as_deref(), 50, 200)?;
        let list = rows::moderation_log(
            &svc.engine,
            &svc.db,
            scope(&caller),
            window.after_number()?,
            window.fetch(),
        )
        .await?;
        let mut people: Vec<Uuid> = list.iter().filter_map(|l| l.moderator).collect();
        people.sort_unstable();
        people.dedup();
        let names = rows::names_of(&svc.engine, &svc.db, scope(&caller), &people).await?;
        let entries: Vec<ModerationEntry> = list
            .into_iter()
            .map(|l| {
                let target_id = match (
                    l.target_kind.as_str(),
                    l.topic_id,
                    Uuid::parse_str(&l.target_id),
                ) {
                    ("post", Some(topic), Ok(post)) => NodeId::ForumPost { topic, post }.id(),
                    ("topic", _, Ok(topic)) => NodeId::ForumTopic { topic }.id(),
                    ("concern", Some(topic), Ok(concern)) => {
                        NodeId::ForumConcern { topic, concern }.id()
                    }
                    _ => ID(l.target_id.clone()),
                };
                ModerationEntry {
                    position: BigInt(l.position),
                    action: l.action,
                    moderator_id: l.moderator.filter(|_| auditor).map(ids::person_id),
                    moderator_name: l
                        .moderator
                        .and_then(|m| names.get(&m))
                        .map(|n| n.name.clone()),
                    target_kind: l.target_kind,
                    target_id,
                    target_name: l.target_name,
                    topic_id: l.topic_id.map(|topic| NodeId::ForumTopic { topic }.id()),
                    reason: l.reason,
                    at: l.at,
                    reverted: l.reverted_at.is_some(),
                    reverted_at: l.reverted_at,
                }
            })
            .collect();
        Ok(ModerationEntryConnection(Page::forward(
            &window,
            entries,
            |e| e.position.0.to_string(),
        )))
    }

    /// Who is behind a forum name: the organisation's admins only, with a
    /// stated reason. The look is recorded in that person's access trail
    /// (they see it, with the reason, in their access log) before the answer leaves.
    async fn forum_name_holder(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The forum name (any case or spelling of `-`, `_`, `.` and spaces).")]
        name: String,
        #[graphql(desc = "Why it must be known (1-500 characters): the person reads it.")]
        reason: String,
    ) -> async_graphql::Result<ForumNameHolder> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !access::may_resolve_forum_name(&caller.actor(), &caller.organisation) {
            return Err(ApiError::Forbidden(
                "only the organisation's admins learn who is behind a forum name".into(),
            )
            .into());
        }
        let reason = domain::text::required(&reason, forum::REASON_MAX)
            .map_err(|p| ApiError::BadInput(format!("field `reason` {p}")))?;
        if name.chars().count() > forum::NAME_MAX * 2 {
            return Err(
                ApiError::BadInput("field `name` is longer than any forum name".into()).into(),
            );
        }
        let person = rows::holder_of(&svc.engine, &svc.db, scope(&caller), &name)
            .await?
            .ok_or_else(|| ApiError::NotFound("nobody holds this forum name".into()))?;
        let names = rows::names_of(&svc.engine, &svc.db, scope(&caller), &[person]).await?;
        let held = names
            .get(&person)
            .ok_or_else(|| ApiError::NotFound("nobody holds this forum name".into()))?;
        let mut record = crate::access::record_of(
            ctx,
            &caller,
            Some(person),
            &caller.organisation,
            domain::trail::FORUM_IDENTITY,
        );
        record.basis = domain::trail::Basis::Admin;
        record.detail =
            Some(serde_json::json!({ "name": held.name, "reason": reason }).to_string());
        crate::access::submit(ctx, &caller, record)?;
        Ok(ForumNameHolder {
            person_id: ids::person_id(person),
            name: held.name.clone(),
            kind: held.kind.into(),
        })
    }
}

/// The concern a global id names: moderators only.
pub(crate) async fn concern_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ForumConcern>> {
    let NodeId::ForumConcern { concern, .. } = id else {
        return Ok(None);
    };
    let (svc, caller) = (service(ctx), caller(ctx)?);
    moderator_only(&caller)?;
    let Some(row) = rows::concern(&svc.engine, &svc.db, scope(&caller), concern).await? else {
        return Ok(None);
    };
    Ok(concern_views(svc, &caller, vec![row])
        .await?
        .into_iter()
        .next())
}
