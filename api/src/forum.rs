//! GraphQL for the peer-support forum (issue 17; `docs/forum.md`).
//!
//! Who takes part how is `domain::access::forum_part`: service users as
//! peers under a pseudonym, providers as staff under their profile's name
//! and profession, moderators under a forum name; auditors read the
//! moderation log only; researchers, admins and other organisations see
//! nothing of it. No answer to a member carries the person id of another:
//! authors are shown by name and kind. Only an admin learns who is behind a
//! name (`forumNameHolder`), with a stated reason, recorded in that person's
//! access trail.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::access::{self, ForumPart};
use domain::forum::{
    self, Forum, ForumCommand, Member, MemberKind, Reader, ReaderCommand, Topic, TopicCommand,
};
use projections::read::forum::{self as rows, NameRow, PostRow, TopicFilter, TopicRow};
use projections::read::Scope;
use uuid::Uuid;

use crate::auth::Caller;
use crate::care::Profession;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::{self, BigInt, NodeId};
use crate::paging::{connection, Page, Window};
use crate::payload::payload;
use crate::service::{CommandOutcome, Service, Stored};

/// How a member appears.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::forum::MemberKind")]
pub enum ForumMemberKind {
    /// A service user, under their pseudonym.
    Peer,
    /// A provider, under their name and profession, marked as staff.
    Staff,
    /// A moderator, marked as such.
    Moderator,
}

/// Why a post is flagged.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::forum::FlagReason")]
pub enum FlagReason {
    /// Not about the topic.
    OffTopic,
    /// Hurtful to someone.
    Hurtful,
    /// Shares someone's private information.
    PrivateInformation,
    /// Advertising or junk.
    Spam,
    /// Something else, said in the note.
    Other,
}

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

/// How someone appears in the forum: never who they are.
#[derive(SimpleObject, Clone)]
pub struct ForumAuthor {
    /// Their pseudonym (peers), forum name (moderators) or profile name (staff).
    pub name: String,
    /// Peer, staff or moderator.
    pub kind: ForumMemberKind,
    /// What a staff member does; null for others.
    pub profession: Option<Profession>,
    /// True when it is the caller.
    pub is_you: bool,
}

fn author(
    names: &HashMap<Uuid, NameRow>,
    person: Uuid,
    kind: MemberKind,
    caller: &Caller,
) -> ForumAuthor {
    let row = names.get(&person);
    let fallback = match kind {
        MemberKind::Peer => "Member",
        MemberKind::Staff => "Staff member",
        MemberKind::Moderator => "Moderator",
    };
    ForumAuthor {
        name: row.map_or_else(|| fallback.to_string(), |r| r.name.clone()),
        kind: kind.into(),
        profession: row
            .and_then(|r| r.profession.as_deref())
            .and_then(|p| {
                serde_json::from_value::<domain::care::Profession>(serde_json::Value::String(
                    p.into(),
                ))
                .ok()
            })
            .map(Profession::from),
        is_you: person == caller.subject,
    }
}

/// The caller in the forum.
#[derive(SimpleObject, Clone)]
pub struct ForumMe {
    /// Their forum name; null for a peer or moderator who has not chosen one yet (needed before the first post).
    pub name: Option<String>,
    /// How they appear.
    pub kind: ForumMemberKind,
    /// Until when they may not write, if silenced.
    pub silenced_until: Option<DateTime<Utc>>,
    /// Unread posts over the topics they follow.
    pub unread_total: i32,
}

/// A category of topics.
#[derive(SimpleObject, Clone)]
pub struct ForumCategory {
    /// Its key (`sleep`, `recovery_stories`, ...).
    pub key: String,
    /// Its title.
    pub title: String,
    /// What belongs in it.
    pub description: String,
    /// True when moderators retired it: no new topics.
    pub retired: bool,
    /// Topics in it.
    pub topic_count: i32,
}

/// A post quoted by another.
#[derive(SimpleObject, Clone)]
pub struct ForumQuote {
    /// The quoted post's global id.
    pub post_id: ID,
    /// Its number in the topic.
    pub number: i32,
    /// Who wrote it.
    pub author: ForumAuthor,
    /// Its first 300 characters; null when the caller may not read it (withdrawn or hidden).
    pub excerpt: Option<String>,
}

/// A post of a topic, as the caller may see it.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ForumPost {
    /// The post's global id.
    pub id: ID,
    /// The post's own uuid.
    pub uuid: Uuid,
    /// Its topic's global id.
    pub topic_id: ID,
    /// 1 for the topic's opening post, then in order.
    pub number: i32,
    /// Who wrote it.
    pub author: ForumAuthor,
    /// Its latest text; null once withdrawn, and while hidden for all but its author and moderators.
    pub body: Option<String>,
    /// The post it quotes, if any.
    pub quote: Option<ForumQuote>,
    /// When it was written.
    pub posted_at: DateTime<Utc>,
    /// True when its author changed it.
    pub edited: bool,
    /// When it was last changed.
    pub edited_at: Option<DateTime<Utc>>,
    /// How many versions it has had (1 when never edited).
    pub revision_count: i32,
    /// True when its author withdrew it: its text is gone from every view.
    pub withdrawn: bool,
    /// True when it is hidden (by moderators, or pending review after flags).
    pub hidden: bool,
    /// Why it is hidden, for its author and moderators (never by whom).
    pub hidden_reason: Option<String>,
    /// How many members support it.
    pub support_count: i32,
    /// True when the caller supports it.
    pub supported_by_you: bool,
    /// True when the caller wrote it.
    pub yours: bool,
    /// For moderators: the score of flags awaiting review (null for members).
    pub flag_score: Option<i32>,
    #[graphql(skip)]
    moderator: bool,
}

/// One version of a post.
#[derive(SimpleObject, Clone)]
pub struct ForumRevision {
    /// 1 for the original.
    pub revision: i32,
    /// The text of this version; null once the post is withdrawn.
    pub body: Option<String>,
    /// When it was written.
    pub at: DateTime<Utc>,
}

#[ComplexObject]
impl ForumPost {
    /// Every version of the post, oldest first: moderators only (members see
    /// the latest and that it was edited).
    async fn revisions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ForumRevision>> {
        if !self.moderator {
            return Err(ApiError::Forbidden(
                "only moderators read earlier versions of a post".into(),
            )
            .into());
        }
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let list = rows::revisions(&svc.engine, &svc.db, scope(&caller), self.uuid).await?;
        Ok(list
            .into_iter()
            .map(|r| ForumRevision {
                revision: r.revision as i32,
                body: (!self.withdrawn).then_some(r.body),
                at: r.at,
            })
            .collect())
    }
}

fn scope(caller: &Caller) -> Scope<'_> {
    Scope {
        organisation: &caller.organisation,
    }
}

/// What the caller may see of one post.
fn post_view(
    row: &PostRow,
    names: &HashMap<Uuid, NameRow>,
    quoted: &HashMap<Uuid, PostRow>,
    caller: &Caller,
    moderator: bool,
) -> ForumPost {
    let mine = row.author == caller.subject;
    let shown = forum::post_shown(row.withdrawn, row.hidden, mine, moderator);
    let quote = row.quote_of.and_then(|q| quoted.get(&q)).map(|q| {
        let seen = forum::post_shown(q.withdrawn, q.hidden, q.author == caller.subject, moderator);
        ForumQuote {
            post_id: NodeId::ForumPost {
                topic: q.topic_id,
                post: q.post_id,
            }
            .id(),
            number: q.number as i32,
            author: author(names, q.author, q.author_kind, caller),
            excerpt: seen.text.then(|| q.body.chars().take(300).collect()),
        }
    });
    ForumPost {
        id: NodeId::ForumPost {
            topic: row.topic_id,
            post: row.post_id,
        }
        .id(),
        uuid: row.post_id,
        topic_id: NodeId::ForumTopic {
            topic: row.topic_id,
        }
        .id(),
        number: row.number as i32,
        author: author(names, row.author, row.author_kind, caller),
        body: shown.text.then(|| row.body.clone()),
        quote,
        posted_at: row.posted_at,
        edited: row.revisions > 1,
        edited_at: row.edited_at,
        revision_count: row.revisions as i32,
        withdrawn: row.withdrawn,
        hidden: row.hidden,
        hidden_reason: if shown.hidden_reason {
            row.hidden_reason.clone()
        } else {
            None
        },
        support_count: row.supports as i32,
        supported_by_you: row.supported,
        yours: mine,
        flag_score: moderator.then_some(row.score as i32),
        moderator,
    }
}

/// Builds the views of some posts: their authors' names and quoted posts
/// looked up once for all.
async fn post_views(
    svc: &Service,
    caller: &Caller,
    moderator: bool,
    posts: &[PostRow],
) -> Result<Vec<ForumPost>, ApiError> {
    let quoted_ids: Vec<Uuid> = posts.iter().filter_map(|p| p.quote_of).collect();
    let quoted: HashMap<Uuid, PostRow> = if quoted_ids.is_empty() {
        HashMap::new()
    } else {
        rows::posts_by_id(
            &svc.engine,
            &svc.db,
            scope(caller),
            caller.subject,
            &quoted_ids,
        )
        .await?
        .into_iter()
        .map(|p| (p.post_id, p))
        .collect()
    };
    let mut people: Vec<Uuid> = posts
        .iter()
        .map(|p| p.author)
        .chain(quoted.values().map(|q| q.author))
        .collect();
    people.sort_unstable();
    people.dedup();
    let names = rows::names_of(&svc.engine, &svc.db, scope(caller), &people).await?;
    Ok(posts
        .iter()
        .map(|p| post_view(p, &names, &quoted, caller, moderator))
        .collect())
}

connection!(
    /// A page of a topic's posts, in order.
    ForumPostConnection,
    ForumPostEdge,
    ForumPost
);

connection!(
    /// A page of topics, newest activity first.
    ForumTopicConnection,
    ForumTopicEdge,
    ForumTopicView
);

/// Posts on a page, at most and by default.
pub const POSTS_PAGE_MAX: usize = 100;
pub const POSTS_PAGE_DEFAULT: usize = 30;
/// Topics on a page, at most and by default.
pub const TOPICS_PAGE_MAX: usize = 100;
pub const TOPICS_PAGE_DEFAULT: usize = 30;

/// A topic, as the caller sees it.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ForumTopic", complex)]
pub struct ForumTopicView {
    /// The topic's global id.
    pub id: ID,
    /// The topic's own uuid.
    pub uuid: Uuid,
    /// Its category's key.
    pub category: String,
    /// Its title.
    pub title: String,
    /// Who opened it.
    pub author: ForumAuthor,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// When its latest post was written.
    pub last_post_at: DateTime<Utc>,
    /// Posts in it, the opening post included (withdrawn and hidden ones too).
    pub post_count: i32,
    /// True when moderators closed it: only moderators reply.
    pub closed: bool,
    /// True when the caller follows it (they do once they post in it).
    pub following: bool,
    /// Posts the caller has not read (0 for a topic they do not follow).
    pub unread: i32,
    #[graphql(skip)]
    moderator: bool,
}

#[ComplexObject]
impl ForumTopicView {
    /// The topic's posts in order, a page at a time (`first` 1-100, default 30, after a cursor).
    #[graphql(
        complexity = "crate::paging::cost(first, None, POSTS_PAGE_DEFAULT, child_complexity)"
    )]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many posts (1-100, default 30).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<ForumPostConnection> {
        let window = Window::forward(
            "forum_posts",
            first,
            after.as_deref(),
            POSTS_PAGE_DEFAULT,
            POSTS_PAGE_MAX,
        )?;
        let from = window.after_number()?.unwrap_or(0);
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let list = rows::posts(
            &svc.engine,
            &svc.db,
            scope(&caller),
            caller.subject,
            self.uuid,
            from,
            window.fetch(),
        )
        .await?;
        let views = post_views(svc, &caller, self.moderator, &list).await?;
        Ok(ForumPostConnection(Page::forward(&window, views, |p| {
            p.number.to_string()
        })))
    }
}

fn topic_view(
    row: TopicRow,
    names: &HashMap<Uuid, NameRow>,
    caller: &Caller,
    moderator: bool,
) -> ForumTopicView {
    ForumTopicView {
        id: NodeId::ForumTopic {
            topic: row.topic_id,
        }
        .id(),
        uuid: row.topic_id,
        author: author(names, row.author, row.author_kind, caller),
        category: row.category,
        title: row.title,
        opened_at: row.opened_at,
        last_post_at: row.last_at,
        post_count: row.posts as i32,
        closed: row.closed,
        following: row.following,
        unread: if row.following {
            (row.posts - row.read_count).max(0) as i32
        } else {
            0
        },
        moderator,
    }
}

async fn topic_views(
    svc: &Service,
    caller: &Caller,
    moderator: bool,
    list: Vec<TopicRow>,
) -> Result<Vec<ForumTopicView>, ApiError> {
    let mut people: Vec<Uuid> = list.iter().map(|t| t.author).collect();
    people.sort_unstable();
    people.dedup();
    let names = rows::names_of(&svc.engine, &svc.db, scope(caller), &people).await?;
    Ok(list
        .into_iter()
        .map(|t| topic_view(t, &names, caller, moderator))
        .collect())
}

/// How the caller takes part: as a member of a kind, or refused.
fn member_kind(caller: &Caller) -> Result<MemberKind, ApiError> {
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

fn moderator_only(caller: &Caller) -> Result<(), ApiError> {
    if access::may_moderate(&caller.actor(), &caller.organisation) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the organisation's moderators do this".into(),
        ))
    }
}

/// The caller's organisation's forum, opened (with the default categories) on first use.
async fn forum_here(ctx: &Context<'_>, caller: &Caller) -> Result<Forum, ApiError> {
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
async fn topic_here(svc: &Service, caller: &Caller, topic_id: Uuid) -> Result<Topic, ApiError> {
    let topic: Topic = svc.folded(&topic_id.to_string()).await?;
    if topic.id.is_none() || topic.organisation != caller.organisation {
        return Err(ApiError::NotFound("no such topic".into()));
    }
    Ok(topic)
}

/// The topic of a post named by the caller.
async fn post_topic(svc: &Service, caller: &Caller, id: &ID) -> Result<(Uuid, Uuid), ApiError> {
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
    Ok((topic, post))
}

/// The caller as a member who may write now: named (peers and moderators),
/// registered (staff), not silenced.
async fn writer(ctx: &Context<'_>, caller: &Caller) -> Result<Member, ApiError> {
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
    Ok(Member {
        person: caller.subject,
        kind,
    })
}

/// The forum's categories and topics, for its members.
pub struct ForumView {
    caller: Caller,
    kind: MemberKind,
}

/// The organisation's peer-support forum, as a member sees it.
#[Object(name = "Forum")]
impl ForumView {
    /// The caller in the forum: their name, kind, silence and unread total.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<ForumMe> {
        let svc = service(ctx);
        let names = rows::names_of(
            &svc.engine,
            &svc.db,
            scope(&self.caller),
            &[self.caller.subject],
        )
        .await?;
        let forum: Forum = svc.folded(&self.caller.organisation).await?;
        let unread = rows::unread_total(
            &svc.engine,
            &svc.db,
            scope(&self.caller),
            self.caller.subject,
        )
        .await?;
        Ok(ForumMe {
            name: names
                .get(&self.caller.subject)
                .map(|n| n.name.clone())
                .or_else(|| {
                    forum
                        .names
                        .get(&self.caller.subject)
                        .map(|(n, _)| n.clone())
                }),
            kind: self.kind.into(),
            silenced_until: forum.silenced(self.caller.subject, now(ctx)),
            unread_total: unread as i32,
        })
    }

    /// The categories, in their order (retired ones too, marked).
    async fn categories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ForumCategory>> {
        let svc = service(ctx);
        let list = rows::categories(&svc.engine, &svc.db, scope(&self.caller)).await?;
        let list = if list.is_empty() {
            // A forum nobody has used yet has the default categories.
            forum::DEFAULT_CATEGORIES
                .iter()
                .map(|(key, title, description)| ForumCategory {
                    key: key.to_string(),
                    title: title.to_string(),
                    description: description.to_string(),
                    retired: false,
                    topic_count: 0,
                })
                .collect()
        } else {
            list.into_iter()
                .map(|c| ForumCategory {
                    key: c.key,
                    title: c.title,
                    description: c.description,
                    retired: c.retired,
                    topic_count: c.topics as i32,
                })
                .collect()
        };
        Ok(list)
    }

    /// Topics, newest activity first, a page at a time (`first` 1-100, default 30).
    #[graphql(
        complexity = "crate::paging::cost(first, None, TOPICS_PAGE_DEFAULT, child_complexity)"
    )]
    async fn topics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only topics of this category (its key).")] category: Option<String>,
        #[graphql(default, desc = "Only topics the caller follows.")] followed: bool,
        #[graphql(desc = "How many topics (1-100, default 30).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<ForumTopicConnection> {
        let window = Window::forward(
            "forum_topics",
            first,
            after.as_deref(),
            TOPICS_PAGE_DEFAULT,
            TOPICS_PAGE_MAX,
        )?;
        let after = match &window.after {
            Some(key) => Some(
                key.split_once('|')
                    .map(|(at, id)| (at.to_string(), id.to_string()))
                    .ok_or_else(|| ApiError::BadInput("not a cursor of this list".into()))?,
            ),
            None => None,
        };
        let svc = service(ctx);
        let list = rows::topics(
            &svc.engine,
            &svc.db,
            scope(&self.caller),
            self.caller.subject,
            TopicFilter {
                category: category.as_deref(),
                followed,
                after,
            },
            window.fetch(),
        )
        .await?;
        let moderator = self.kind == MemberKind::Moderator;
        let views = topic_views(svc, &self.caller, moderator, list).await?;
        Ok(ForumTopicConnection(Page::forward(&window, views, |t| {
            format!("{}|{}", projections::db::ts(t.last_post_at), t.uuid)
        })))
    }

    /// One topic.
    async fn topic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The topic: its global id, or its uuid.")] id: ID,
    ) -> async_graphql::Result<ForumTopicView> {
        let topic = ids::forum_topic(&id)?;
        Ok(topic_for(service(ctx), &self.caller, self.kind, topic).await?)
    }
}

async fn topic_for(
    svc: &Service,
    caller: &Caller,
    kind: MemberKind,
    topic: Uuid,
) -> Result<ForumTopicView, ApiError> {
    let row = rows::topic(&svc.engine, &svc.db, scope(caller), caller.subject, topic)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such topic".into()))?;
    Ok(
        topic_views(svc, caller, kind == MemberKind::Moderator, vec![row])
            .await?
            .remove(0),
    )
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
    /// The moderator's person id; null when flags hid a post.
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

async fn concern_views(
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

async fn topic_titles(
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

/// Reads of the forum.
#[derive(Default)]
pub struct ForumQuery;

#[Object]
impl ForumQuery {
    /// The organisation's forum: for its service users, providers and moderators.
    async fn forum(&self, ctx: &Context<'_>) -> async_graphql::Result<ForumView> {
        let caller = caller(ctx)?;
        let kind = member_kind(&caller)?;
        Ok(ForumView { caller, kind })
    }

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
                    moderator_id: l.moderator.map(ids::person_id),
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

/// The post a global id names, as the caller may see it.
pub(crate) async fn post_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ForumPost>> {
    let NodeId::ForumPost { topic, post } = id else {
        return Ok(None);
    };
    let (svc, caller) = (service(ctx), caller(ctx)?);
    let kind = member_kind(&caller)?;
    let list = rows::posts_by_id(
        &svc.engine,
        &svc.db,
        scope(&caller),
        caller.subject,
        &[post],
    )
    .await?;
    let list: Vec<PostRow> = list.into_iter().filter(|p| p.topic_id == topic).collect();
    Ok(
        post_views(svc, &caller, kind == MemberKind::Moderator, &list)
            .await?
            .into_iter()
            .next(),
    )
}

/// The topic a global id names.
pub(crate) async fn topic_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ForumTopicView>> {
    let NodeId::ForumTopic { topic } = id else {
        return Ok(None);
    };
    let (svc, caller) = (service(ctx), caller(ctx)?);
    let kind = member_kind(&caller)?;
    Ok(Some(topic_for(svc, &caller, kind, topic).await?))
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

payload!(
    /// What a change to a post returns.
    ForumPostPayload { post: ForumPost = post_node, "The post after the change." }
);
payload!(
    /// What a change to a topic (or to following and reading it) returns.
    ForumTopicPayload { topic: ForumTopicView = topic_node, "The topic after the change." }
);
payload!(
    /// What a moderator's handling of a concern returns.
    ForumConcernPayload { concern: ForumConcern = concern_node, "The concern after the change." }
);

/// Runs a command whose caller was checked to be allowed it.
async fn run<A: Stored, P: From<CommandOutcome>>(
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
            crate::context::idempotency(ctx, idempotency_key),
            aggregate_id,
            command,
        )
        .await
        .map(P::from)
}

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
            run::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
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
        let by = writer(ctx, &caller).await?;
        let forum = forum_here(ctx, &caller).await?;
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
        Ok(run::<Topic, _>(
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
        let by = writer(ctx, &caller).await?;
        topic_here(svc, &caller, topic).await?;
        let command = TopicCommand::Reply {
            post_id: Uuid::new_v4(),
            body,
            quote_of,
            by,
            at: now(ctx),
        };
        Ok(run::<Topic, _>(ctx, &caller, idempotency_key, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
        let by = writer(ctx, &caller).await?;
        let command = TopicCommand::Edit {
            post_id: post,
            body,
            title,
            by,
            at: now(ctx),
        };
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
        // Withdrawing one's words is allowed even while silenced.
        let command = TopicCommand::Withdraw {
            post_id: post,
            by: Member {
                person: caller.subject,
                kind,
            },
            at: now(ctx),
        };
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
        let by = writer(ctx, &caller).await?;
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
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
        let by = writer(ctx, &caller).await?;
        let command = TopicCommand::Flag {
            post_id: post,
            by,
            reason: reason.into(),
            note,
            threshold: svc.settings.forum.hide_score,
            at: now(ctx),
        };
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
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
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        Ok(run::<Reader, _>(ctx, &caller, None, &id, command).await?)
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
        Ok(run::<Reader, _>(ctx, &caller, None, &id, command).await?)
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
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        let (topic, post) = post_topic(svc, &caller, &post_id).await?;
        let state = topic_here(svc, &caller, topic).await?;
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
        run::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
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
        let caller = caller(ctx)?;
        moderator_only(&caller)?;
        forum_here(ctx, &caller).await?;
        let command = ForumCommand::LiftSilence {
            silence_id,
            reason,
            by: caller.subject,
            at: now(ctx),
        };
        run::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
        Ok(true)
    }

    /// Moderators: adds a category.
    async fn add_forum_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its key: 1-40 of a-z, 0-9 and _, starting with a letter.")] key: String,
        #[graphql(desc = "Its title (1-60 characters).")] title: String,
        #[graphql(default, desc = "What belongs in it (0-300 characters).")] description: String,
    ) -> async_graphql::Result<bool> {
        let caller = caller(ctx)?;
        moderator_only(&caller)?;
        forum_here(ctx, &caller).await?;
        let command = ForumCommand::AddCategory {
            key,
            title,
            description,
            by: caller.subject,
            at: now(ctx),
        };
        let outcome =
            run::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
        service(ctx).marks.settle(outcome.checkpoint).await;
        Ok(true)
    }

    /// Moderators: retires a category (its topics stay; no new ones).
    async fn retire_forum_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its key.")] key: String,
        #[graphql(desc = "Why (1-500 characters).")] reason: String,
    ) -> async_graphql::Result<bool> {
        let caller = caller(ctx)?;
        moderator_only(&caller)?;
        forum_here(ctx, &caller).await?;
        let command = ForumCommand::RetireCategory {
            key,
            reason,
            by: caller.subject,
            at: now(ctx),
        };
        let outcome =
            run::<Forum, CommandOutcome>(ctx, &caller, None, &caller.organisation, command).await?;
        service(ctx).marks.settle(outcome.checkpoint).await;
        Ok(true)
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
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
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
        Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
    }
}

fn moderator_member(caller: &Caller) -> Member {
    Member {
        person: caller.subject,
        kind: MemberKind::Moderator,
    }
}

async fn moderate_post(
    ctx: &Context<'_>,
    post_id: ID,
    command: impl FnOnce(Uuid, Member, DateTime<Utc>) -> TopicCommand,
) -> async_graphql::Result<ForumPostPayload> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    moderator_only(&caller)?;
    let (topic, post) = post_topic(svc, &caller, &post_id).await?;
    let command = command(post, moderator_member(&caller), now(ctx));
    Ok(run::<Topic, _>(ctx, &caller, None, &topic.to_string(), command).await?)
}

/// Raises again every concern no moderator has opened within
/// `forum.concern_reraise_after`, every tenth of that interval (at most
/// every 30 s), until the service stops. Each raising is an event (live to
/// moderators online), an ERROR log line, a metric, and a run of
/// `forum.concern_command` if set.
pub async fn watch_concerns(svc: std::sync::Arc<Service>) {
    let every = svc.settings.forum.concern_reraise_after;
    let tick = (every / 10).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(30),
    );
    loop {
        tokio::time::sleep(tick).await;
        if let Err(error) = reraise_due(&svc).await {
            tracing::warn!(error = ?error, "cannot look for unopened forum concerns");
        }
    }
}

async fn reraise_due(svc: &std::sync::Arc<Service>) -> Result<(), ApiError> {
    let now = Utc::now();
    let before = now - svc.settings.forum.reraise_after();
    let due = rows::concerns_due(&svc.engine, &svc.db, before, 100).await?;
    for concern in due {
        // The service acts as nobody in particular, within the concern's organisation.
        let caller = Caller {
            subject: Uuid::nil(),
            role: crate::auth::Role::Moderator,
            organisation: concern.organisation.clone(),
            expires_at: i64::MAX,
        };
        let command = TopicCommand::RaiseConcernAgain {
            concern_id: concern.concern_id,
            at: now,
        };
        let request_id = format!("concern-watch-{}", Uuid::new_v4());
        match svc
            .run_command::<Topic>(
                &caller,
                &request_id,
                None,
                &concern.topic_id.to_string(),
                command,
            )
            .await
        {
            Ok(outcome) => {
                let round = concern.rounds + 1;
                svc.metrics.command("forum_concern_raised_again");
                tracing::error!(
                    target: "portal::forum::concern",
                    organisation = %concern.organisation,
                    concern = %concern.concern_id,
                    round,
                    raised_at = %concern.raised_at,
                    "a concern for someone's safety has not been opened by any moderator"
                );
                svc.marks.settle(outcome.checkpoint).await;
                if let Some(program) = &svc.settings.forum.concern_command {
                    run_hook(program, &concern, round).await;
                }
            }
            // Opened or resolved meanwhile: nothing to raise.
            Err(ApiError::FailedPrecondition(_)) | Err(ApiError::Conflict(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Runs the organisation's hook with the concern (no text, no name) as JSON
/// on standard input; waits at most 30 s for it.
async fn run_hook(program: &std::path::Path, concern: &rows::ConcernRow, round: i64) {
    use tokio::io::AsyncWriteExt;
    let json = serde_json::json!({
        "organisation": concern.organisation,
        "concern_id": concern.concern_id,
        "topic_id": concern.topic_id,
        "post_id": concern.post_id,
        "raised_at": concern.raised_at,
        "round": round,
    })
    .to_string();
    let child = tokio::process::Command::new(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(%error, program = %program.display(), "cannot run forum.concern_command");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(json.as_bytes()).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::error!(%status, "forum.concern_command failed"),
        Ok(Err(error)) => tracing::error!(%error, "forum.concern_command failed"),
        Err(_) => tracing::error!("forum.concern_command took longer than 30 s"),
    }
}

/// Whether the caller, receiving live updates, hears of a new post in
/// `topic`: members who follow it (not its author).
pub(crate) async fn follows(svc: &Service, caller: &Caller, topic: Uuid) -> bool {
    matches!(
        access::forum_part(&caller.actor(), &caller.organisation),
        ForumPart::Member(_)
    ) && rows::topic(&svc.engine, &svc.db, scope(caller), caller.subject, topic)
        .await
        .ok()
        .flatten()
        .is_some_and(|t| t.following)
}

/// How a post's author appears to `caller`, for live updates.
pub(crate) async fn shown_author(
    svc: &Service,
    caller: &Caller,
    person: Uuid,
    kind: MemberKind,
) -> String {
    let names = rows::names_of(&svc.engine, &svc.db, scope(caller), &[person])
        .await
        .unwrap_or_default();
    author(&names, person, kind, caller).name
}
