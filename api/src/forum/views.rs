//! What a member reads: the `forum` field with the caller, categories,
//! topics and their posts as the caller may see them (`domain::forum::post_shown`),
//! authors by name and kind only, and the parts of live updates.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::access::{self, ForumPart};
use domain::forum::{self, Forum, MemberKind};
use projections::read::forum::{self as rows, NameRow, PostRow, TopicFilter, TopicRow};
use uuid::Uuid;

use crate::auth::Caller;
use crate::care::Profession;
use crate::context::{caller, now, service};
use crate::error::ApiError;
use crate::ids::{self, NodeId};
use crate::paging::{connection, Page, Window};
use crate::service::Service;

use super::rules::*;

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

pub(super) fn author(
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
    /// True when its author was erased: their words and their name are gone;
    /// the post keeps its place in the topic.
    pub erased: bool,
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

/// What the caller may see of one post.
pub(super) fn post_view(
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
        erased: false,
        moderator,
    }
}

/// Builds the views of some posts: their authors' names and quoted posts
/// looked up once for all.
pub(super) async fn post_views(
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
    let erased = projections::read::erasure::erased_among(
        &svc.engine,
        &svc.db,
        &caller.organisation,
        &people,
    )
    .await?;
    Ok(posts
        .iter()
        .map(|p| ForumPost {
            erased: erased.contains(&p.author),
            ..post_view(p, &names, &quoted, caller, moderator)
        })
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

pub(super) fn topic_view(
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

pub(super) async fn topic_views(
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
        Ok(categories(service(ctx), &self.caller).await?)
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
        if category
            .as_deref()
            .is_some_and(|c| c.chars().count() > forum::CATEGORY_KEY_MAX)
        {
            return Err(ApiError::BadInput(format!(
                "field `category` is a category's key of at most {} characters",
                forum::CATEGORY_KEY_MAX
            ))
            .into());
        }
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

/// The forum's categories in their order; a forum nobody has used yet has
/// the default ones.
pub(super) async fn categories(
    svc: &Service,
    caller: &Caller,
) -> Result<Vec<ForumCategory>, ApiError> {
    let list = rows::categories(&svc.engine, &svc.db, scope(caller)).await?;
    if list.is_empty() {
        return Ok(forum::DEFAULT_CATEGORIES
            .iter()
            .map(|(key, title, description)| ForumCategory {
                key: key.to_string(),
                title: title.to_string(),
                description: description.to_string(),
                retired: false,
                topic_count: 0,
            })
            .collect());
    }
    Ok(list
        .into_iter()
        .map(|c| ForumCategory {
            key: c.key,
            title: c.title,
            description: c.description,
            retired: c.retired,
            topic_count: c.topics as i32,
        })
        .collect())
}

pub(super) async fn topic_for(
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
