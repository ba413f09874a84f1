//! Every change to the forum: names, topics, posts, support, flags,
//! concerns, follows and read marks, and moderators' actions.

use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use domain::forum::{
    self, Forum, ForumCommand, Member, MemberKind, Reader, ReaderCommand, Topic, TopicCommand,
};
use projections::read::forum as rows;
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, now, run_on, service};
use crate::error::ApiError;
use crate::ids;
use crate::payload::payload;
use crate::service::CommandOutcome;

use super::moderation::*;
use super::rules::*;
use super::views::*;

payload!(
    /// What a change to a post returns.
    ForumPostPayload { post: ForumPost = post_node, "The post after the change." } settles FORUM_READS
);
payload!(
    /// What a change to a topic (or to following and reading it) returns.
    ForumTopicPayload { topic: ForumTopicView = topic_node, "The topic after the change." } settles FORUM_READS
);
payload!(
    /// What a moderator's handling of a concern returns.
    ForumConcernPayload { concern: ForumConcern = concern_node, "The concern after the change." } settles FORUM_READS
);

/// What a forum payload reads: the forum's read model alone.
const FORUM_READS: &[&str] = &[projections::forum::NAME];

/// Changes to the forum.
#[derive(Default)]
pub struct ForumMutation;

#[Object]
impl ForumMutation {
    /// Chooses (or changes) the caller's forum name: service users (their
    /// pseudonym) and moderators, before their first post. 3-30 letters,
    /// digits, spaces, `-`, `_` and `.`, unique in the organisation whatever
    /// the case; earlier names stay in the history moderators read.
    async fn choose_forum_name(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name (3-30 characters).")] name: String,
    ) -> async_graphql::Result<ForumMe> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let kind = member_kind(&caller)?;
        forum_here(ctx, &caller).await?;
        let command = ForumCommand::ChooseName {
            person: caller.subject,
            kind,
            name,
            at: now(ctx),
        };
        let outcome: CommandOutcome =
            run_on::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command)
                .await?;
        svc.marks.settle(outcome.checkpoint).await;
        let forum: Forum = svc.folded(&caller.organisation).await?;
        let unread =
            rows::unread_total(&svc.engine, &svc.db, scope(&caller), caller.subject).await?;
        Ok(ForumMe {
            name: forum.names.get(&caller.subject).map(|(n, _)| n.clone()),
            kind: kind.into(),
            silenced_until: forum.silenced(caller.subject, now(ctx)),
            unread_total: unread as i32,
        })
    }

    /// Opens a topic with its first post, in a category that is not retired.
    async fn open_topic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category's key.")] category: String,
        #[graphql(desc = "The title (1-150 characters).")] title: String,
        #[graphql(desc = "The first post (1-10,000 characters).")] body: String,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ForumPostPayload> {
        let caller = caller(ctx)?;
        let (by, forum) = writer(ctx, &caller).await?;
        if forum.open_category(&category).is_none() {
            return Err(
                ApiError::NotFound(format!("no open category `{}`", ids::clip(&category))).into(),
            );
        }
        let topic_id = Uuid::new_v4();
        let command = TopicCommand::Open {
            topic_id,
            organisation: caller.organisation.clone(),
            category,
            title,
            post_id: Uuid::new_v4(),
            body,
            by,
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(
            ctx,
            &caller,
            idempotency_key,
            &topic_id.to_string(),
            command,
        )
        .await?)
    }

    /// Replies in a topic, optionally quoting one of its posts. A closed
    /// topic takes replies from moderators only.
    async fn reply_to_topic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The topic: its global id, or its uuid.")] topic_id: ID,
        #[graphql(desc = "The reply (1-10,000 characters).")] body: String,
        #[graphql(desc = "A post of the topic this reply quotes: its global id or uuid.")]
        quote_post_id: Option<ID>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ForumPostPayload> {
        let topic = ids::forum_topic(&topic_id)?;
        let quote_of = quote_post_id
            .as_ref()
            .map(ids::forum_post)
            .transpose()?
            .map(|(_, p)| p);
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let (by, _) = writer(ctx, &caller).await?;
        topic_here(svc, &caller, topic).await?;
        let command = TopicCommand::Reply {
            post_id: Uuid::new_v4(),
            body,
            quote_of,
            by,
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, idempotency_key, &topic.to_string(), command).await?)
    }

    /// Changes the caller's own post (and, for a topic's first post, its
    /// title); members see the latest version and that it was edited.
    async fn edit_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(desc = "The new text (1-10,000 characters).")] body: String,
        #[graphql(desc = "A new title, for the topic's first post only (1-150 characters).")] title: Option<String>,
    ) -> async_graphql::Result<ForumPostPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
        let (by, _) = writer(ctx, &caller).await?;
        let command = TopicCommand::Edit {
            post_id: post,
            body,
            title,
            by,
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Withdraws the caller's own post: its text leaves every view (the
    /// history keeps that it was written and withdrawn).
    async fn withdraw_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
    ) -> async_graphql::Result<ForumPostPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let kind = member_kind(&caller)?;
        let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
        // Withdrawing one's words is allowed even while silenced.
        let command = TopicCommand::Withdraw {
            post_id: post,
            by: Member {
                person: caller.subject,
                kind,
            },
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Gives (or, with `support: false`, takes back) the caller's support of
    /// a post: one per member per post, not for one's own.
    async fn support_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(default = true, desc = "False to take the support back.")] support: bool,
    ) -> async_graphql::Result<ForumPostPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
        let (by, _) = writer(ctx, &caller).await?;
        let at = now(ctx);
        let command = if support {
            TopicCommand::Support {
                post_id: post,
                by,
                at,
            }
        } else {
            TopicCommand::Unsupport {
                post_id: post,
                by,
                at,
            }
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Flags a post for moderators, once per member per post. Flags add up
    /// by weight (peer 1, staff 2, moderator 3); at the organisation's
    /// threshold the post is hidden pending review.
    async fn flag_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(desc = "Why.")] reason: FlagReason,
        #[graphql(
            default,
            desc = "In the flagger's words (0-500 characters; required for `OTHER`)."
        )]
        note: String,
    ) -> async_graphql::Result<ForumPostPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
        let (by, _) = writer(ctx, &caller).await?;
        let command = TopicCommand::Flag {
            post_id: post,
            by,
            reason: reason.into(),
            note,
            threshold: svc.settings.forum.hide_score,
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// "I am worried about this person": hides nothing; it goes to the top of
    /// the moderators' queue and reaches every moderator online at once, and
    /// is raised again until a moderator opens it. Allowed while silenced.
    async fn raise_concern(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(default, desc = "What worries you (0-500 characters).")] note: String,
    ) -> async_graphql::Result<ForumPostPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let kind = member_kind(&caller)?;
        let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
        let command = TopicCommand::RaiseConcern {
            concern_id: Uuid::new_v4(),
            post_id: post,
            note,
            by: Member {
                person: caller.subject,
                kind,
            },
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Follows a topic (or, with `follow: false`, stops): new posts in it
    /// count as unread and arrive live.
    async fn follow_topic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The topic: its global id, or its uuid.")] topic_id: ID,
        #[graphql(default = true, desc = "False to stop following.")] follow: bool,
    ) -> async_graphql::Result<ForumTopicPayload> {
        let topic = ids::forum_topic(&topic_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        member_kind(&caller)?;
        topic_here(svc, &caller, topic).await?;
        let following = rows::topic(&svc.engine, &svc.db, scope(&caller), caller.subject, topic)
            .await?
            .is_some_and(|t| t.following);
        let at = now(ctx);
        let command = if follow {
            ReaderCommand::Follow {
                topic_id: topic,
                following,
                at,
            }
        } else {
            ReaderCommand::Unfollow {
                topic_id: topic,
                following,
                at,
            }
        };
        let id = forum::reader_id(&caller.organisation, caller.subject);
        Ok(run_on::<Reader, _>(ctx, &caller, None, &id, command).await?)
    }

    /// Marks a topic read up to post number `upTo` (by default, to its last post).
    async fn mark_topic_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The topic: its global id, or its uuid.")] topic_id: ID,
        #[graphql(desc = "The number of the last post read (default: the topic's last).")]
        up_to: Option<i32>,
    ) -> async_graphql::Result<ForumTopicPayload> {
        let topic = ids::forum_topic(&topic_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        member_kind(&caller)?;
        let state = topic_here(svc, &caller, topic).await?;
        let posts = state.posts.len() as u32;
        let count = match up_to {
            Some(n) if n < 1 => {
                return Err(ApiError::BadInput("field `upTo` must be 1 or more".into()).into())
            }
            Some(n) => (n as u32).min(posts),
            None => posts,
        };
        let command = ReaderCommand::MarkRead {
            topic_id: topic,
            count,
            posts,
            at: now(ctx),
        };
        let id = forum::reader_id(&caller.organisation, caller.subject);
        Ok(run_on::<Reader, _>(ctx, &caller, None, &id, command).await?)
    }

    /// Moderators: hides a post, with a reason its author reads (never who hid it).
    async fn hide_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(desc = "Why (1-500 characters): its author reads it.")] reason: String,
    ) -> async_graphql::Result<ForumPostPayload> {
        moderate_post(ctx, post_id, |post_id, by, at| TopicCommand::Hide {
            post_id,
            reason,
            by,
            at,
        })
        .await
    }

    /// Moderators: restores a hidden post; flags so far count as reviewed.
    async fn restore_post(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The post: its global id, or its uuid.")] post_id: ID,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
    ) -> async_graphql::Result<ForumPostPayload> {
        moderate_post(ctx, post_id, |post_id, by, at| TopicCommand::Restore {
            post_id,
            reason,
            by,
            at,
        })
        .await
    }

    /// Moderators: closes a topic (only moderators reply), or with `closed: false` reopens it.
    async fn close_topic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The topic: its global id, or its uuid.")] topic_id: ID,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
        #[graphql(default = true, desc = "False to reopen it.")] closed: bool,
    ) -> async_graphql::Result<ForumTopicPayload> {
        let topic = ids::forum_topic(&topic_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        topic_here(svc, &caller, topic).await?;
        let by = moderator_member(&caller);
        let at = now(ctx);
        let command = if closed {
            TopicCommand::Close { reason, by, at }
        } else {
            TopicCommand::Reopen { reason, by, at }
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Moderators: silences the author of a post for 1-365 days (they read,
    /// and cannot write). Who they are stays unknown to the moderator.
    async fn silence_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A post of the member: its global id, or its uuid.")] post_id: ID,
        #[graphql(desc = "For how many days (1-365).")] days: i32,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
    ) -> async_graphql::Result<ForumSilence> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        if !(1..=forum::SILENCE_MAX_DAYS as i32).contains(&days) {
            return Err(ApiError::BadInput(format!(
                "field `days` must be between 1 and {}, got {days}",
                forum::SILENCE_MAX_DAYS
            ))
            .into());
        }
        let (_, post, state) = post_topic(svc, &caller, &post_id).await?;
        let person = state
            .posts
            .iter()
            .find(|p| p.id == post)
            .map(|p| p.author)
            .ok_or_else(|| ApiError::NotFound("no such post".into()))?;
        let rows_ = rows::posts_by_id(
            &svc.engine,
            &svc.db,
            scope(&caller),
            caller.subject,
            &[post],
        )
        .await?;
        let kind = rows_.first().map_or(MemberKind::Peer, |p| p.author_kind);
        let names = rows::names_of(&svc.engine, &svc.db, scope(&caller), &[person]).await?;
        let shown_as = author(&names, person, kind, &caller).name;
        forum_here(ctx, &caller).await?;
        let at = now(ctx);
        let until = at + chrono::Duration::days(i64::from(days));
        let silence_id = Uuid::new_v4();
        let command = ForumCommand::Silence {
            silence_id,
            person,
            shown_as: shown_as.clone(),
            until,
            reason,
            by: caller.subject,
            at,
        };
        run_on::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
        Ok(ForumSilence {
            id: silence_id,
            member: shown_as,
            until,
        })
    }

    /// Moderators: lifts a silence before it ends.
    async fn lift_silence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The silence's id.")] silence_id: Uuid,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
    ) -> async_graphql::Result<bool> {
        moderate_forum(ctx, |by, at| ForumCommand::LiftSilence {
            silence_id,
            reason,
            by,
            at,
        })
        .await?;
        Ok(true)
    }

    /// Moderators: adds a category; returns the categories after the change.
    async fn add_forum_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its key: 1-40 of a-z, 0-9 and _, starting with a letter.")] key: String,
        #[graphql(desc = "Its title (1-60 characters).")] title: String,
        #[graphql(default, desc = "What belongs in it (0-300 characters).")] description: String,
    ) -> async_graphql::Result<Vec<ForumCategory>> {
        let caller = moderate_forum(ctx, |by, at| ForumCommand::AddCategory {
            key,
            title,
            description,
            by,
            at,
        })
        .await?;
        Ok(categories(service(ctx), &caller).await?)
    }

    /// Moderators: retires a category (its topics stay; no new ones);
    /// returns the categories after the change.
    async fn retire_forum_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its key.")] key: String,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
    ) -> async_graphql::Result<Vec<ForumCategory>> {
        let caller = moderate_forum(ctx, |by, at| ForumCommand::RetireCategory {
            key,
            reason,
            by,
            at,
        })
        .await?;
        Ok(categories(service(ctx), &caller).await?)
    }

    /// Moderators: opens a concern (it stops being raised again).
    async fn open_concern(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The concern's global id.")] concern_id: ID,
    ) -> async_graphql::Result<ForumConcernPayload> {
        let (topic, concern) = ids::forum_concern(&concern_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        topic_here(svc, &caller, topic).await?;
        let command = TopicCommand::OpenConcern {
            concern_id: concern,
            by: moderator_member(&caller),
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }

    /// Moderators: records what was done about a concern.
    async fn resolve_concern(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The concern's global id.")] concern_id: ID,
        #[graphql(desc = "What was done.")] action: ConcernAction,
        #[graphql(default, desc = "A note on it (0-500 characters).")] note: String,
    ) -> async_graphql::Result<ForumConcernPayload> {
        let (topic, concern) = ids::forum_concern(&concern_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        moderator_only(&caller)?;
        topic_here(svc, &caller, topic).await?;
        let command = TopicCommand::ResolveConcern {
            concern_id: concern,
            action: action.into(),
            note,
            by: moderator_member(&caller),
            at: now(ctx),
        };
        Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }
}

pub(super) fn moderator_member(caller: &Caller) -> Member {
    Member {
        person: caller.subject,
        kind: MemberKind::Moderator,
    }
}

pub(super) async fn moderate_post(
    ctx: &Context<'_>,
    post_id: ID,
    command: impl FnOnce(Uuid, Member, DateTime<Utc>) -> TopicCommand,
) -> async_graphql::Result<ForumPostPayload> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    moderator_only(&caller)?;
    let (topic, post, _) = post_topic(svc, &caller, &post_id).await?;
    let command = command(post, moderator_member(&caller), now(ctx));
    Ok(run_on::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
}

/// Runs a moderator's change of the organisation's forum (`command` given
/// the moderator and the time) and waits until the read models show it.
pub(super) async fn moderate_forum(
    ctx: &Context<'_>,
    command: impl FnOnce(Uuid, DateTime<Utc>) -> ForumCommand,
) -> Result<Caller, ApiError> {
    let caller = caller(ctx)?;
    moderator_only(&caller)?;
    forum_here(ctx, &caller).await?;
    let command = command(caller.subject, now(ctx));
    let outcome: CommandOutcome =
        run_on::<Forum, _>(ctx, &caller, None, &caller.organisation, command).await?;
    service(ctx).marks.settle(outcome.checkpoint).await;
    Ok(caller)
}
