//! The forum as stored: names, categories, topics with a reader's follow
//! and read marks, posts, revisions, the moderation queue, concerns and the
//! moderation log. What a reader may see of a row is the API's to decide
//! (`domain::forum::post_shown`); every reader here is scoped to one
//! organisation, but for [`concerns_due`], which the service's own watch
//! uses across organisations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::forum::MemberKind;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{int, opt_text, opt_time, opt_uuid, text, time, uuid, Scope};
use crate::db::{params, ts, Db, DbError};
use crate::engine::Engine;
use crate::forum::NAME;

fn table(engine: &Engine, name: &str) -> String {
    engine.table(NAME, name)
}

fn kind(row: &AnyRow, t: &str, column: &str) -> Result<MemberKind, DbError> {
    let value = text(row, t, column)?;
    MemberKind::parse(&value).ok_or_else(|| DbError::Malformed {
        table: t.to_string(),
        reason: format!("{column}: unknown member kind `{value}`"),
    })
}

/// How a member appears: their name, kind and (staff) profession.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRow {
    pub name: String,
    pub kind: MemberKind,
    pub profession: Option<String>,
}

/// How each of `persons` appears in the forum of `scope`; someone without a
/// name (a peer who never chose one, staff without a profile) is absent.
pub async fn names_of(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    persons: &[Uuid],
) -> Result<HashMap<Uuid, NameRow>, DbError> {
    let t = table(engine, "forum_names");
    let mut out = HashMap::new();
    for chunk in persons.chunks(500) {
        let marks = params(2, chunk.len());
        let sql = format!(
            "SELECT person, name, kind, profession FROM {t} WHERE organisation = $1 AND person IN ({})",
            marks
        );
        let mut q = sqlx::query(&sql).bind(scope.organisation);
        for p in chunk {
            q = q.bind(p.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            out.insert(
                uuid(&row, &t, "person")?,
                NameRow {
                    name: text(&row, &t, "name")?,
                    kind: kind(&row, &t, "kind")?,
                    profession: opt_text(&row, &t, "profession")?,
                },
            );
        }
    }
    Ok(out)
}

/// Who holds the forum name `name` (compared by `domain::forum::name_key`) now.
pub async fn holder_of(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    name: &str,
) -> Result<Option<Uuid>, DbError> {
    let t = table(engine, "forum_names");
    let key = domain::forum::name_key(name);
    if key.is_empty() {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT person FROM {t} WHERE organisation = $1 AND name_key = $2 AND kind <> 'staff'"
    ))
    .bind(scope.organisation)
    .bind(key)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| uuid(&r, &t, "person")).transpose()
}

/// A change of forum name, for moderators (without who it is).
#[derive(Debug, Clone, PartialEq)]
pub struct NameChange {
    pub position: i64,
    pub name: String,
    pub previous: Option<String>,
    pub kind: MemberKind,
    pub at: DateTime<Utc>,
}

/// Every change of forum name, newest first, from `before` (a position) on.
pub async fn name_history(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<NameChange>, DbError> {
    let t = table(engine, "forum_name_history");
    let rows = sqlx::query(&format!(
        "SELECT position, name, previous, kind, at FROM {t} WHERE organisation = $1 AND position < $2 \
         ORDER BY position DESC LIMIT {limit}"
    ))
    .bind(scope.organisation)
    .bind(before.unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NameChange {
                position: int(row, &t, "position")?,
                name: text(row, &t, "name")?,
                previous: opt_text(row, &t, "previous")?,
                kind: kind(row, &t, "kind")?,
                at: time(row, &t, "at")?,
            })
        })
        .collect()
}

/// A category, with how many topics it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryRow {
    pub key: String,
    pub title: String,
    pub description: String,
    pub retired: bool,
    pub topics: i64,
}

/// The forum's categories in their order (retired ones included).
pub async fn categories(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
) -> Result<Vec<CategoryRow>, DbError> {
    let (c, topics) = (
        table(engine, "forum_categories"),
        table(engine, "forum_topics"),
    );
    let rows = sqlx::query(&format!(
        "SELECT c.key, c.title, c.description, c.retired, \
         (SELECT COUNT(*) FROM {topics} t WHERE t.organisation = c.organisation AND t.category = c.key) AS topics \
         FROM {c} c WHERE c.organisation = $1 ORDER BY c.position, c.key"
    ))
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CategoryRow {
                key: text(row, &c, "key")?,
                title: text(row, &c, "title")?,
                description: text(row, &c, "description")?,
                retired: int(row, &c, "retired")? != 0,
                topics: int(row, &c, "topics")?,
            })
        })
        .collect()
}

/// A topic, with one reader's follow and read mark.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRow {
    pub topic_id: Uuid,
    pub category: String,
    pub title: String,
    pub author: Uuid,
    pub author_kind: MemberKind,
    pub first_post: Uuid,
    pub opened_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub posts: i64,
    pub closed: bool,
    pub following: bool,
    pub read_count: i64,
}

/// Which topics a list holds.
#[derive(Debug, Clone, Default)]
pub struct TopicFilter<'a> {
    pub category: Option<&'a str>,
    /// Only those the reader follows.
    pub followed: bool,
    /// After this (last activity, topic id) in newest-first order.
    pub after: Option<(String, String)>,
}

const TOPIC_COLUMNS: &str =
    "t.topic_id, t.category, t.title, t.author, t.author_kind, t.first_post, \
     t.opened_at, t.last_at, t.posts, t.closed, COALESCE(f.following, 0) AS following, \
     COALESCE(f.read_count, 0) AS read_count";

fn topic_row(row: &AnyRow, t: &str) -> Result<TopicRow, DbError> {
    Ok(TopicRow {
        topic_id: uuid(row, t, "topic_id")?,
        category: text(row, t, "category")?,
        title: text(row, t, "title")?,
        author: uuid(row, t, "author")?,
        author_kind: kind(row, t, "author_kind")?,
        first_post: uuid(row, t, "first_post")?,
        opened_at: time(row, t, "opened_at")?,
        last_at: time(row, t, "last_at")?,
        posts: int(row, t, "posts")?,
        closed: int(row, t, "closed")? != 0,
        following: int(row, t, "following")? != 0,
        read_count: int(row, t, "read_count")?,
    })
}

/// Topics newest activity first, at most `limit`, as `reader` follows and
/// has read them.
pub async fn topics(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    filter: TopicFilter<'_>,
    limit: i64,
) -> Result<Vec<TopicRow>, DbError> {
    let (t, f) = (
        table(engine, "forum_topics"),
        table(engine, "forum_follows"),
    );
    let mut conditions = vec!["t.organisation = $1".to_string()];
    let mut binds: Vec<String> = vec![scope.organisation.to_string(), reader.to_string()];
    if let Some(category) = filter.category {
        binds.push(category.to_string());
        conditions.push(format!("t.category = ${}", binds.len()));
    }
    if filter.followed {
        conditions.push("f.following = 1".to_string());
    }
    if let Some((last_at, topic)) = filter.after {
        binds.push(last_at);
        let a = binds.len();
        binds.push(topic);
        let b = binds.len();
        conditions.push(format!(
            "(t.last_at < ${a} OR (t.last_at = ${a} AND t.topic_id < ${b}))"
        ));
    }
    let sql = format!(
        "SELECT {TOPIC_COLUMNS} FROM {t} t LEFT JOIN {f} f ON f.organisation = t.organisation \
         AND f.person = $2 AND f.topic_id = t.topic_id WHERE {} \
         ORDER BY t.last_at DESC, t.topic_id DESC LIMIT {limit}",
        conditions.join(" AND ")
    );
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter().map(|row| topic_row(row, &t)).collect()
}

/// One topic, as `reader` follows and has read it.
pub async fn topic(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    topic_id: Uuid,
) -> Result<Option<TopicRow>, DbError> {
    let (t, f) = (
        table(engine, "forum_topics"),
        table(engine, "forum_follows"),
    );
    let row = sqlx::query(&format!(
        "SELECT {TOPIC_COLUMNS} FROM {t} t LEFT JOIN {f} f ON f.organisation = t.organisation \
         AND f.person = $2 AND f.topic_id = t.topic_id WHERE t.organisation = $1 AND t.topic_id = $3"
    ))
    .bind(scope.organisation)
    .bind(reader.to_string())
    .bind(topic_id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| topic_row(&r, &t)).transpose()
}

/// Unread posts over the topics `reader` follows.
pub async fn unread_total(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
) -> Result<i64, DbError> {
    let (t, f) = (
        table(engine, "forum_topics"),
        table(engine, "forum_follows"),
    );
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN t.posts > f.read_count THEN t.posts - f.read_count ELSE 0 END), 0) AS BIGINT) AS unread \
         FROM {f} f JOIN {t} t ON t.topic_id = f.topic_id \
         WHERE f.organisation = $1 AND f.person = $2 AND f.following = 1 AND t.organisation = $1"
    ))
    .bind(scope.organisation)
    .bind(reader.to_string())
    .fetch_one(&db.pool)
    .await?;
    int(&row, &f, "unread")
}

/// A post as stored, with whether `reader` supports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRow {
    pub post_id: Uuid,
    pub topic_id: Uuid,
    pub number: i64,
    pub author: Uuid,
    pub author_kind: MemberKind,
    /// Empty once withdrawn.
    pub body: String,
    pub quote_of: Option<Uuid>,
    pub posted_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub revisions: i64,
    pub withdrawn: bool,
    pub hidden: bool,
    pub hidden_reason: Option<String>,
    /// The moderator who hid it (None when flags did); never shown to members.
    pub hidden_by: Option<Uuid>,
    pub score: i64,
    pub flags: i64,
    /// Flags await a moderator's review.
    pub pending: bool,
    pub last_flag_at: Option<DateTime<Utc>>,
    pub supports: i64,
    pub supported: bool,
}

const POST_COLUMNS: &str = "p.post_id, p.topic_id, p.number, p.author, p.author_kind, p.body, \
     p.quote_of, p.posted_at, p.edited_at, p.revisions, p.withdrawn, p.hidden, p.hidden_reason, \
     p.hidden_by, p.score, p.flags, p.pending, p.last_flag_at, p.supports, \
     CASE WHEN s.person IS NULL THEN 0 ELSE 1 END AS supported";

fn post_row(row: &AnyRow, t: &str) -> Result<PostRow, DbError> {
    Ok(PostRow {
        post_id: uuid(row, t, "post_id")?,
        topic_id: uuid(row, t, "topic_id")?,
        number: int(row, t, "number")?,
        author: uuid(row, t, "author")?,
        author_kind: kind(row, t, "author_kind")?,
        body: text(row, t, "body")?,
        quote_of: opt_uuid(row, t, "quote_of")?,
        posted_at: time(row, t, "posted_at")?,
        edited_at: opt_time(row, t, "edited_at")?,
        revisions: int(row, t, "revisions")?,
        withdrawn: int(row, t, "withdrawn")? != 0,
        hidden: int(row, t, "hidden")? != 0,
        hidden_reason: opt_text(row, t, "hidden_reason")?,
        hidden_by: opt_uuid(row, t, "hidden_by")?,
        score: int(row, t, "score")?,
        flags: int(row, t, "flags")?,
        pending: int(row, t, "pending")? != 0,
        last_flag_at: opt_time(row, t, "last_flag_at")?,
        supports: int(row, t, "supports")?,
        supported: int(row, t, "supported")? != 0,
    })
}

/// A topic's posts in order, after post number `after`, at most `limit`.
pub async fn posts(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    topic_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<PostRow>, DbError> {
    let (p, s) = (
        table(engine, "forum_posts"),
        table(engine, "forum_supports"),
    );
    let rows = sqlx::query(&format!(
        "SELECT {POST_COLUMNS} FROM {p} p LEFT JOIN {s} s ON s.post_id = p.post_id AND s.person = $2 \
         WHERE p.organisation = $1 AND p.topic_id = $3 AND p.number > $4 ORDER BY p.number LIMIT {limit}"
    ))
    .bind(scope.organisation)
    .bind(reader.to_string())
    .bind(topic_id.to_string())
    .bind(after)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|row| post_row(row, &p)).collect()
}

/// Some posts by id (the quoted ones of a page, the queue's).
pub async fn posts_by_id(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    ids: &[Uuid],
) -> Result<Vec<PostRow>, DbError> {
    let (p, s) = (
        table(engine, "forum_posts"),
        table(engine, "forum_supports"),
    );
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let marks = params(3, chunk.len());
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM {p} p LEFT JOIN {s} s ON s.post_id = p.post_id AND s.person = $2 \
             WHERE p.organisation = $1 AND p.post_id IN ({})",
            marks
        );
        let mut q = sqlx::query(&sql)
            .bind(scope.organisation)
            .bind(reader.to_string());
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            out.push(post_row(&row, &p)?);
        }
    }
    Ok(out)
}

/// One revision of a post.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRow {
    pub revision: i64,
    /// Empty once the post is withdrawn.
    pub body: String,
    pub at: DateTime<Utc>,
}

/// Every revision of a post of `scope`, oldest first.
pub async fn revisions(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    post_id: Uuid,
) -> Result<Vec<RevisionRow>, DbError> {
    let (r, p) = (
        table(engine, "forum_revisions"),
        table(engine, "forum_posts"),
    );
    let rows = sqlx::query(&format!(
        "SELECT r.revision, r.body, r.at FROM {r} r JOIN {p} p ON p.post_id = r.post_id \
         WHERE p.organisation = $1 AND r.post_id = $2 ORDER BY r.revision"
    ))
    .bind(scope.organisation)
    .bind(post_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RevisionRow {
                revision: int(row, &r, "revision")?,
                body: text(row, &r, "body")?,
                at: time(row, &r, "at")?,
            })
        })
        .collect()
}

/// Posts whose flags await review, highest score first, at most `limit`.
pub async fn flagged(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    limit: i64,
) -> Result<Vec<PostRow>, DbError> {
    let (p, s) = (
        table(engine, "forum_posts"),
        table(engine, "forum_supports"),
    );
    let rows = sqlx::query(&format!(
        "SELECT {POST_COLUMNS} FROM {p} p LEFT JOIN {s} s ON s.post_id = p.post_id AND s.person = $2 \
         WHERE p.organisation = $1 AND p.pending = 1 \
         ORDER BY p.score DESC, p.last_flag_at, p.post_id LIMIT {limit}"
    ))
    .bind(scope.organisation)
    .bind(reader.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|row| post_row(row, &p)).collect()
}

/// One flag of a post (who flagged stays out: moderators see the flagger's kind).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    pub post_id: Uuid,
    pub reason: String,
    pub note: String,
    pub weight: i64,
    pub at: DateTime<Utc>,
}

/// The flags of some posts, oldest first.
pub async fn flags_of(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    posts: &[Uuid],
) -> Result<Vec<FlagRow>, DbError> {
    let f = table(engine, "forum_flags");
    let mut out = Vec::new();
    for chunk in posts.chunks(500) {
        let marks = params(2, chunk.len());
        let sql = format!(
            "SELECT post_id, reason, note, weight, at FROM {f} WHERE organisation = $1 AND post_id IN ({}) \
             ORDER BY at, flagger",
            marks
        );
        let mut q = sqlx::query(&sql).bind(scope.organisation);
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for row in q.fetch_all(&db.pool).await? {
            out.push(FlagRow {
                post_id: uuid(&row, &f, "post_id")?,
                reason: text(&row, &f, "reason")?,
                note: text(&row, &f, "note")?,
                weight: int(&row, &f, "weight")?,
                at: time(&row, &f, "at")?,
            });
        }
    }
    Ok(out)
}

/// A concern for someone's safety.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcernRow {
    pub concern_id: Uuid,
    pub organisation: String,
    pub topic_id: Uuid,
    pub post_id: Uuid,
    pub note: String,
    pub raised_at: DateTime<Utc>,
    pub last_raised_at: DateTime<Utc>,
    pub rounds: i64,
    pub opened_at: Option<DateTime<Utc>>,
    pub opened_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

const CONCERN_COLUMNS: &str = "concern_id, organisation, topic_id, post_id, note, raised_at, \
     last_raised_at, rounds, opened_at, opened_by, resolved_at, resolved_by, action, outcome";

fn concern_row(row: &AnyRow, t: &str) -> Result<ConcernRow, DbError> {
    Ok(ConcernRow {
        concern_id: uuid(row, t, "concern_id")?,
        organisation: text(row, t, "organisation")?,
        topic_id: uuid(row, t, "topic_id")?,
        post_id: uuid(row, t, "post_id")?,
        note: text(row, t, "note")?,
        raised_at: time(row, t, "raised_at")?,
        last_raised_at: time(row, t, "last_raised_at")?,
        rounds: int(row, t, "rounds")?,
        opened_at: opt_time(row, t, "opened_at")?,
        opened_by: opt_uuid(row, t, "opened_by")?,
        resolved_at: opt_time(row, t, "resolved_at")?,
        resolved_by: opt_uuid(row, t, "resolved_by")?,
        action: opt_text(row, t, "action")?,
        outcome: opt_text(row, t, "outcome")?,
    })
}

/// Concerns, unresolved first (oldest first), then resolved (newest first),
/// at most `limit`; `open_only` leaves the resolved out.
pub async fn concerns(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    open_only: bool,
    limit: i64,
) -> Result<Vec<ConcernRow>, DbError> {
    let c = table(engine, "forum_concerns");
    let only = if open_only {
        " AND resolved_at IS NULL"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT {CONCERN_COLUMNS} FROM {c} WHERE organisation = $1{only} \
         ORDER BY CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END, \
         CASE WHEN resolved_at IS NULL THEN raised_at ELSE '' END, resolved_at DESC, concern_id LIMIT {limit}"
    ))
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|row| concern_row(row, &c)).collect()
}

/// One concern of `scope`.
pub async fn concern(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    concern_id: Uuid,
) -> Result<Option<ConcernRow>, DbError> {
    let c = table(engine, "forum_concerns");
    let row = sqlx::query(&format!(
        "SELECT {CONCERN_COLUMNS} FROM {c} WHERE organisation = $1 AND concern_id = $2"
    ))
    .bind(scope.organisation)
    .bind(concern_id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| concern_row(&r, &c)).transpose()
}

/// Unopened concerns of every organisation last raised before `before`, at
/// most `limit`: for the service's watch, which raises them again.
pub async fn concerns_due(
    engine: &Engine,
    db: &Db,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ConcernRow>, DbError> {
    let c = table(engine, "forum_concerns");
    let rows = sqlx::query(&format!(
        "SELECT {CONCERN_COLUMNS} FROM {c} WHERE opened_at IS NULL AND resolved_at IS NULL \
         AND last_raised_at <= $1 ORDER BY last_raised_at, concern_id LIMIT {limit}"
    ))
    .bind(ts(before))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|row| concern_row(row, &c)).collect()
}

/// An entry of the moderation log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub position: i64,
    pub action: String,
    /// None for a post hidden by flags.
    pub moderator: Option<Uuid>,
    pub target_kind: String,
    pub target_id: String,
    pub target_name: Option<String>,
    pub topic_id: Option<Uuid>,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub reverted_at: Option<DateTime<Utc>>,
}

/// The moderation log, newest first, before position `before`, at most `limit`.
pub async fn moderation_log(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LogRow>, DbError> {
    let l = table(engine, "forum_log");
    let rows = sqlx::query(&format!(
        "SELECT position, action, moderator, target_kind, target_id, target_name, topic_id, reason, at, \
         reverted_at FROM {l} WHERE organisation = $1 AND position < $2 ORDER BY position DESC LIMIT {limit}"
    ))
    .bind(scope.organisation)
    .bind(before.unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LogRow {
                position: int(row, &l, "position")?,
                action: text(row, &l, "action")?,
                moderator: opt_uuid(row, &l, "moderator")?,
                target_kind: text(row, &l, "target_kind")?,
                target_id: text(row, &l, "target_id")?,
                target_name: opt_text(row, &l, "target_name")?,
                topic_id: opt_uuid(row, &l, "topic_id")?,
                reason: text(row, &l, "reason")?,
                at: time(row, &l, "at")?,
                reverted_at: opt_time(row, &l, "reverted_at")?,
            })
        })
        .collect()
}
