//! The forum's read model: names, categories, topics, posts (their latest
//! text, or none once withdrawn), revisions, support, flags, concerns, the
//! moderation log, and each member's follows and read marks.
//!
//! What a reader may see of it is decided in the API by `domain::forum`'s
//! rules; this only keeps the facts. A withdrawn post's text is blanked here
//! and in its revisions, so no view can show it (the event keeps it).

use domain::care::{ProviderEvent, PROVIDER_TYPE};
use domain::forum::{ForumEvent, ReaderEvent, TopicEvent, FORUM_TYPE, READER_TYPE, TOPIC_TYPE};
use sqlx::{Any, Transaction};
use uuid::Uuid;

use crate::db::{execute as exec, insert_rows, ts, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The forum projection.
pub struct Forum;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "forum";

#[async_trait::async_trait]
impl Projection for Forum {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        // 3: erasures (issue 18): the log names the member a silence is of.
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "forum_names",
            "forum_name_history",
            "forum_categories",
            "forum_topics",
            "forum_posts",
            "forum_revisions",
            "forum_supports",
            "forum_flags",
            "forum_concerns",
            "forum_log",
            "forum_follows",
        ]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS forum_names_{s} (organisation TEXT NOT NULL, \
                 person TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL, kind TEXT NOT NULL, \
                 profession TEXT, since TEXT NOT NULL, PRIMARY KEY (organisation, person))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_name_history_{s} (position BIGINT PRIMARY KEY, \
                 organisation TEXT NOT NULL, person TEXT NOT NULL, name TEXT NOT NULL, \
                 previous TEXT, kind TEXT NOT NULL, at TEXT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_categories_{s} (organisation TEXT NOT NULL, \
                 key TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, \
                 position BIGINT NOT NULL, retired BIGINT NOT NULL, PRIMARY KEY (organisation, key))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_topics_{s} (topic_id TEXT PRIMARY KEY, \
                 organisation TEXT NOT NULL, category TEXT NOT NULL, title TEXT NOT NULL, \
                 author TEXT NOT NULL, author_kind TEXT NOT NULL, first_post TEXT NOT NULL, \
                 opened_at TEXT NOT NULL, last_at TEXT NOT NULL, posts BIGINT NOT NULL, \
                 closed BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_posts_{s} (post_id TEXT PRIMARY KEY, \
                 topic_id TEXT NOT NULL, organisation TEXT NOT NULL, number BIGINT NOT NULL, \
                 author TEXT NOT NULL, author_kind TEXT NOT NULL, body TEXT NOT NULL, quote_of TEXT, \
                 posted_at TEXT NOT NULL, edited_at TEXT, revisions BIGINT NOT NULL, \
                 withdrawn BIGINT NOT NULL, hidden BIGINT NOT NULL, hidden_reason TEXT, \
                 hidden_by TEXT, score BIGINT NOT NULL, flags BIGINT NOT NULL, pending BIGINT NOT NULL, \
                 last_flag_at TEXT, supports BIGINT NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS forum_posts_{s}_topic ON forum_posts_{s} (topic_id, number)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_revisions_{s} (post_id TEXT NOT NULL, \
                 revision BIGINT NOT NULL, body TEXT NOT NULL, at TEXT NOT NULL, \
                 PRIMARY KEY (post_id, revision))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_supports_{s} (post_id TEXT NOT NULL, \
                 person TEXT NOT NULL, PRIMARY KEY (post_id, person))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_flags_{s} (post_id TEXT NOT NULL, \
                 flagger TEXT NOT NULL, organisation TEXT NOT NULL, reason TEXT NOT NULL, \
                 note TEXT NOT NULL, weight BIGINT NOT NULL, at TEXT NOT NULL, \
                 PRIMARY KEY (post_id, flagger))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_concerns_{s} (concern_id TEXT PRIMARY KEY, \
                 organisation TEXT NOT NULL, topic_id TEXT NOT NULL, post_id TEXT NOT NULL, \
                 raised_by TEXT NOT NULL, note TEXT NOT NULL, raised_at TEXT NOT NULL, \
                 last_raised_at TEXT NOT NULL, rounds BIGINT NOT NULL, opened_at TEXT, opened_by TEXT, \
                 resolved_at TEXT, resolved_by TEXT, action TEXT, outcome TEXT)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_log_{s} (position BIGINT PRIMARY KEY, \
                 organisation TEXT NOT NULL, action TEXT NOT NULL, moderator TEXT, \
                 target_kind TEXT NOT NULL, target_id TEXT NOT NULL, target_name TEXT, \
                 target_person TEXT, topic_id TEXT, reason TEXT NOT NULL, at TEXT NOT NULL, reverted_at TEXT)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS forum_follows_{s} (organisation TEXT NOT NULL, \
                 person TEXT NOT NULL, topic_id TEXT NOT NULL, following BIGINT NOT NULL, \
                 read_count BIGINT NOT NULL, PRIMARY KEY (organisation, person, topic_id))"
            ),
        ]
    }

    fn indexes(&self, s: &str) -> Vec<String> {
        vec![
            // The topic list, newest activity first, by a backward scan.
            format!(
                "CREATE INDEX IF NOT EXISTS forum_topics_{s}_recent ON forum_topics_{s} (organisation, last_at, topic_id)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS forum_topics_{s}_category ON forum_topics_{s} (organisation, category, last_at, topic_id)"
            ),
            // Partial: only what awaits review, so no other read can take it.
            format!(
                "CREATE INDEX IF NOT EXISTS forum_posts_{s}_pending ON forum_posts_{s} (organisation, score) WHERE pending = 1"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS forum_concerns_{s}_open ON forum_concerns_{s} (organisation, resolved_at)"
            ),
            // What the service's watch looks for, across organisations, often.
            format!(
                "CREATE INDEX IF NOT EXISTS forum_concerns_{s}_due ON forum_concerns_{s} (last_raised_at) \
                 WHERE opened_at IS NULL AND resolved_at IS NULL"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS forum_log_{s}_org ON forum_log_{s} (organisation, position)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS forum_names_{s}_key ON forum_names_{s} (organisation, name_key)"
            ),
        ]
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&[
            FORUM_TYPE,
            TOPIC_TYPE,
            READER_TYPE,
            PROVIDER_TYPE,
            domain::erasure::ERASURE_TYPE,
        ])
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        // Openings and replies, most of a forum's events, go in bulk; any
        // other event first writes what is pending, so order holds.
        let mut posts = Posts::default();
        for stored in events {
            if let Some(erased) = crate::erasure::erased_by(stored) {
                posts.write(tx, s).await?;
                erase(tx, s, &erased).await?;
                continue;
            }
            if stored.aggregate_type == TOPIC_TYPE {
                let event = stored.decode::<TopicEvent>()?;
                if !posts.take(stored, &event) {
                    posts.write(tx, s).await?;
                    topic_event(tx, s, stored, event).await?;
                }
                continue;
            }
            match stored.aggregate_type.as_str() {
                FORUM_TYPE => {
                    posts.write(tx, s).await?;
                    forum_event(tx, s, stored).await?
                }
                READER_TYPE => {
                    posts.write(tx, s).await?;
                    reader_event(tx, s, stored).await?
                }
                PROVIDER_TYPE => {
                    posts.write(tx, s).await?;
                    staff_name(tx, s, stored).await?
                }
                _ => {}
            }
        }
        posts.write(tx, s).await
    }
}

/// A row of the moderation log.
struct LogRow<'a> {
    action: &'a str,
    moderator: Option<Uuid>,
    target_kind: &'a str,
    target_id: String,
    target_name: Option<String>,
    /// The member a silence is of (their erasure blanks its row's words).
    target_person: Option<Uuid>,
    topic_id: Option<&'a str>,
    reason: &'a str,
    at: String,
}

async fn log(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
    organisation: &str,
    row: LogRow<'_>,
) -> Result<(), DbError> {
    exec(
        tx,
        &format!(
            "INSERT INTO forum_log_{s} (position, organisation, action, moderator, target_kind, \
             target_id, target_name, target_person, topic_id, reason, at, reverted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL) ON CONFLICT (position) DO NOTHING"
        ),
        vec![
            stored.checkpoint.position.into(),
            organisation.into(),
            row.action.into(),
            row.moderator.map(|m| m.to_string()).into(),
            row.target_kind.into(),
            row.target_id.into(),
            row.target_name.into(),
            row.target_person.map(|p| p.to_string()).into(),
            row.topic_id.map(str::to_string).into(),
            row.reason.into(),
            row.at.into(),
        ],
    )
    .await
}

/// Blanks what `person` wrote or is named by, to exactly what a rebuild
/// reads once their key is gone (`crate::erasure`): their posts, titles,
/// revisions, flags' notes, concerns' notes, reasons given as a moderator,
/// the words of silences of them, and their forum name.
async fn erase(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    erased: &crate::erasure::Erased,
) -> Result<(), DbError> {
    // `$1` the person, `$2` their organisation (whose forum it is).
    let statements = [
        format!("UPDATE forum_topics_{s} SET title = '' WHERE author = $1 AND organisation = $2"),
        format!(
            "UPDATE forum_revisions_{s} SET body = '' WHERE post_id IN \
             (SELECT post_id FROM forum_posts_{s} WHERE author = $1 AND organisation = $2)"
        ),
        format!("UPDATE forum_posts_{s} SET body = '' WHERE author = $1 AND organisation = $2"),
        format!(
            "UPDATE forum_posts_{s} SET hidden_reason = '' WHERE hidden_by = $1 AND organisation = $2"
        ),
        format!("UPDATE forum_flags_{s} SET note = '' WHERE flagger = $1 AND organisation = $2"),
        format!(
            "UPDATE forum_concerns_{s} SET note = '' WHERE raised_by = $1 AND organisation = $2"
        ),
        format!(
            "UPDATE forum_concerns_{s} SET outcome = '' WHERE resolved_by = $1 AND organisation = $2 \
             AND outcome IS NOT NULL"
        ),
        format!(
            "UPDATE forum_log_{s} SET reason = '' WHERE moderator = $1 AND organisation = $2 \
             AND action <> 'member_silenced'"
        ),
        format!(
            "UPDATE forum_log_{s} SET reason = '', target_name = NULL \
             WHERE action = 'member_silenced' AND target_person = $1 AND organisation = $2"
        ),
        format!("DELETE FROM forum_names_{s} WHERE person = $1 AND organisation = $2"),
        format!(
            "UPDATE forum_name_history_{s} SET name = '', previous = NULL \
             WHERE person = $1 AND organisation = $2"
        ),
    ];
    for sql in statements {
        exec(
            tx,
            &sql,
            vec![
                erased.person.to_string().into(),
                erased.organisation.as_str().into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Marks the latest unreverted `action` on `target_id` as reverted at `at`.
async fn revert(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    action: &str,
    target_id: &str,
    at: &str,
) -> Result<(), DbError> {
    exec(
        tx,
        &format!(
            "UPDATE forum_log_{s} SET reverted_at = $1 WHERE position = (SELECT MAX(position) \
             FROM forum_log_{s} WHERE action = $2 AND target_id = $3 AND reverted_at IS NULL)"
        ),
        vec![at.into(), action.into(), target_id.into()],
    )
    .await
}

async fn forum_event(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    let organisation = stored.aggregate_id.as_str();
    match stored.decode::<ForumEvent>()? {
        ForumEvent::ForumOpened { categories, .. } => {
            for (i, c) in categories.into_iter().enumerate() {
                add_category(tx, s, organisation, c, i as i64).await?;
            }
        }
        ForumEvent::NameChosen {
            person,
            kind,
            name,
            previous,
            at,
        } => {
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_names_{s} (organisation, person, name, name_key, kind, since) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (organisation, person) DO UPDATE SET \
                     name = excluded.name, name_key = excluded.name_key, kind = excluded.kind, since = excluded.since"
                ),
                vec![
                    organisation.into(),
                    person.to_string().into(),
                    name.as_str().into(),
                    domain::forum::name_key(&name).into(),
                    kind.as_str().into(),
                    ts(at).into(),
                ],
            )
            .await?;
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_name_history_{s} (position, organisation, person, name, previous, kind, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (position) DO NOTHING"
                ),
                vec![
                    stored.checkpoint.position.into(),
                    organisation.into(),
                    person.to_string().into(),
                    name.into(),
                    previous.into(),
                    kind.as_str().into(),
                    ts(at).into(),
                ],
            )
            .await?;
        }
        ForumEvent::CategoryAdded { category, by, at } => {
            let key = category.key.clone();
            let title = category.title.clone();
            add_category(tx, s, organisation, category, stored.checkpoint.position).await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "category_added",
                    moderator: Some(by),
                    target_kind: "category",
                    target_id: key,
                    target_name: Some(title),
                    target_person: None,
                    topic_id: None,
                    reason: "",
                    at: ts(at),
                },
            )
            .await?;
        }
        ForumEvent::CategoryRetired {
            key,
            reason,
            by,
            at,
        } => {
            exec(
                tx,
                &format!(
                    "UPDATE forum_categories_{s} SET retired = 1 WHERE organisation = $1 AND key = $2"
                ),
                vec![organisation.into(), key.as_str().into()],
            )
            .await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "category_retired",
                    moderator: Some(by),
                    target_kind: "category",
                    target_id: key,
                    target_name: None,
                    target_person: None,
                    topic_id: None,
                    reason: &reason,
                    at: ts(at),
                },
            )
            .await?;
        }
        ForumEvent::MemberSilenced {
            silence_id,
            person,
            shown_as,
            until,
            reason,
            by,
            at,
        } => {
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "member_silenced",
                    moderator: Some(by),
                    target_kind: "member",
                    target_id: silence_id.to_string(),
                    // An erased member's name reads as empty: none shown.
                    target_name: (!shown_as.is_empty())
                        .then(|| format!("{shown_as} (until {})", ts(until))),
                    target_person: Some(person),
                    topic_id: None,
                    reason: &reason,
                    at: ts(at),
                },
            )
            .await?;
        }
        ForumEvent::SilenceLifted {
            silence_id,
            reason,
            by,
            at,
        } => {
            revert(tx, s, "member_silenced", &silence_id.to_string(), &ts(at)).await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "silence_lifted",
                    moderator: Some(by),
                    target_kind: "member",
                    target_id: silence_id.to_string(),
                    target_name: None,
                    target_person: None,
                    topic_id: None,
                    reason: &reason,
                    at: ts(at),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Staff appear under their profile's name and profession (not unique:
/// their key is empty, so it reserves no forum name).
async fn staff_name(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    let (display_name, profession, at) = match stored.decode::<ProviderEvent>()? {
        ProviderEvent::ProviderRegistered {
            display_name,
            profession,
            at,
            ..
        }
        | ProviderEvent::ProviderProfileChanged {
            display_name,
            profession,
            at,
        } => (display_name, profession, at),
    };
    let profession = serde_json::to_value(profession)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    exec(
        tx,
        &format!(
            "INSERT INTO forum_names_{s} (organisation, person, name, name_key, kind, profession, since) \
             VALUES ($1, $2, $3, '', 'staff', $4, $5) ON CONFLICT (organisation, person) DO UPDATE SET \
             name = excluded.name, profession = excluded.profession, since = excluded.since"
        ),
        vec![
            stored.metadata.organisation.as_str().into(),
            stored.aggregate_id.as_str().into(),
            display_name.into(),
            profession.into(),
            ts(at).into(),
        ],
    )
    .await
}

async fn add_category(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    organisation: &str,
    c: domain::forum::Category,
    position: i64,
) -> Result<(), DbError> {
    exec(
        tx,
        &format!(
            "INSERT INTO forum_categories_{s} (organisation, key, title, description, position, retired) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (organisation, key) DO NOTHING"
        ),
        vec![
            organisation.into(),
            c.key.into(),
            c.title.into(),
            c.description.into(),
            position.into(),
            i64::from(c.retired).into(),
        ],
    )
    .await
}

/// Openings and replies held to be written in bulk: topics, posts, first
/// revisions, each topic's latest count and time, and authors' follows.
#[derive(Default)]
struct Posts {
    topics: Vec<Vec<Val>>,
    posts: Vec<Vec<Val>>,
    revisions: Vec<Vec<Val>>,
    /// Per topic: posts it has and the time of the latest, after the batch.
    counts: std::collections::BTreeMap<String, (i64, String)>,
    /// (organisation, author, topic) -> posts read (they read up to their own post).
    follows: std::collections::BTreeMap<(String, String, String), i64>,
}

impl Posts {
    /// Holds `event` if it is an opening or a reply; false for any other.
    fn take(&mut self, stored: &StoredEvent, event: &TopicEvent) -> bool {
        let topic = stored.aggregate_id.as_str();
        let (organisation, post_id, author, kind, body, quote_of, number, at) = match event {
            TopicEvent::TopicOpened {
                organisation,
                category,
                title,
                post_id,
                author,
                kind,
                body,
                at,
                ..
            } => {
                self.topics.push(vec![
                    topic.into(),
                    organisation.as_str().into(),
                    category.as_str().into(),
                    title.as_str().into(),
                    author.to_string().into(),
                    kind.as_str().into(),
                    post_id.to_string().into(),
                    ts(*at).into(),
                    ts(*at).into(),
                    1.into(),
                    0.into(),
                ]);
                (
                    organisation.as_str(),
                    post_id,
                    author,
                    kind,
                    body,
                    None,
                    1,
                    at,
                )
            }
            TopicEvent::ReplyPosted {
                post_id,
                author,
                kind,
                body,
                quote_of,
                number,
                at,
            } => (
                stored.metadata.organisation.as_str(),
                post_id,
                author,
                kind,
                body,
                *quote_of,
                i64::from(*number),
                at,
            ),
            _ => return false,
        };
        let at = ts(*at);
        self.posts.push(vec![
            post_id.to_string().into(),
            topic.into(),
            organisation.into(),
            number.into(),
            author.to_string().into(),
            kind.as_str().into(),
            body.as_str().into(),
            quote_of.map(|q| q.to_string()).into(),
            at.as_str().into(),
        ]);
        self.revisions.push(vec![
            post_id.to_string().into(),
            1.into(),
            body.as_str().into(),
            at.as_str().into(),
        ]);
        if number > 1 {
            self.counts.insert(topic.to_string(), (number, at));
        }
        let read = self
            .follows
            .entry((
                organisation.to_string(),
                author.to_string(),
                topic.to_string(),
            ))
            .or_default();
        *read = (*read).max(number);
        true
    }

    /// Writes what is held, in a few statements.
    async fn write(&mut self, tx: &mut Transaction<'_, Any>, s: &str) -> Result<(), DbError> {
        let held = std::mem::take(self);
        insert_rows(
            tx,
            &format!("forum_topics_{s}"),
            &[
                "topic_id",
                "organisation",
                "category",
                "title",
                "author",
                "author_kind",
                "first_post",
                "opened_at",
                "last_at",
                "posts",
                "closed",
            ],
            held.topics,
            "ON CONFLICT (topic_id) DO NOTHING",
        )
        .await?;
        for (topic, (posts, at)) in held.counts {
            exec(
                tx,
                &format!(
                    "UPDATE forum_topics_{s} SET posts = $1, last_at = $2 WHERE topic_id = $3"
                ),
                vec![posts.into(), at.into(), topic.into()],
            )
            .await?;
        }
        // A new post: never edited, withdrawn, hidden, flagged or supported.
        let posts: Vec<Vec<Val>> = held
            .posts
            .into_iter()
            .map(|mut row| {
                row.extend([
                    Val::NullText,
                    1.into(),
                    0.into(),
                    0.into(),
                    Val::NullText,
                    Val::NullText,
                    0.into(),
                    0.into(),
                    0.into(),
                    Val::NullText,
                    0.into(),
                ]);
                row
            })
            .collect();
        insert_rows(
            tx,
            &format!("forum_posts_{s}"),
            &[
                "post_id",
                "topic_id",
                "organisation",
                "number",
                "author",
                "author_kind",
                "body",
                "quote_of",
                "posted_at",
                "edited_at",
                "revisions",
                "withdrawn",
                "hidden",
                "hidden_reason",
                "hidden_by",
                "score",
                "flags",
                "pending",
                "last_flag_at",
                "supports",
            ],
            posts,
            "ON CONFLICT (post_id) DO NOTHING",
        )
        .await?;
        insert_rows(
            tx,
            &format!("forum_revisions_{s}"),
            &["post_id", "revision", "body", "at"],
            held.revisions,
            "ON CONFLICT (post_id, revision) DO NOTHING",
        )
        .await?;
        let follows: Vec<Vec<Val>> = held
            .follows
            .into_iter()
            .map(|((organisation, person, topic), read)| {
                vec![
                    organisation.into(),
                    person.into(),
                    topic.into(),
                    1.into(),
                    read.into(),
                ]
            })
            .collect();
        // An author follows the topic they post in (unless they stopped
        // before: `following` stays as it was) and has read up to their post.
        insert_rows(
            tx,
            &format!("forum_follows_{s}"),
            &[
                "organisation",
                "person",
                "topic_id",
                "following",
                "read_count",
            ],
            follows,
            &format!(
                "ON CONFLICT (organisation, person, topic_id) DO UPDATE SET read_count = \
                 CASE WHEN excluded.read_count > forum_follows_{s}.read_count \
                 THEN excluded.read_count ELSE forum_follows_{s}.read_count END"
            ),
        )
        .await
    }
}

async fn topic_event(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
    event: TopicEvent,
) -> Result<(), DbError> {
    let topic = stored.aggregate_id.as_str();
    let organisation = stored.metadata.organisation.as_str();
    let at = ts(event.at());
    let post_update = |set: &str| format!("UPDATE forum_posts_{s} SET {set} WHERE post_id = $1");
    match event {
        // Openings and replies are applied in bulk (`Posts`).
        TopicEvent::TopicOpened { .. } | TopicEvent::ReplyPosted { .. } => {}
        TopicEvent::PostEdited {
            post_id,
            body,
            title,
            revision,
            ..
        } => {
            exec(
                tx,
                &post_update("body = $2, edited_at = $3, revisions = $4"),
                vec![
                    post_id.to_string().into(),
                    body.as_str().into(),
                    at.as_str().into(),
                    i64::from(revision).into(),
                ],
            )
            .await?;
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_revisions_{s} (post_id, revision, body, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (post_id, revision) DO NOTHING"
                ),
                vec![
                    post_id.to_string().into(),
                    i64::from(revision).into(),
                    body.into(),
                    at.as_str().into(),
                ],
            )
            .await?;
            if let Some(title) = title {
                exec(
                    tx,
                    &format!("UPDATE forum_topics_{s} SET title = $1 WHERE topic_id = $2"),
                    vec![title.into(), topic.into()],
                )
                .await?;
            }
        }
        TopicEvent::PostWithdrawn { post_id, .. } => {
            // Its text leaves every view, every revision included.
            exec(
                tx,
                &post_update("body = '', withdrawn = 1, pending = 0"),
                vec![post_id.to_string().into()],
            )
            .await?;
            exec(
                tx,
                &format!("UPDATE forum_revisions_{s} SET body = '' WHERE post_id = $1"),
                vec![post_id.to_string().into()],
            )
            .await?;
            exec(
                tx,
                &format!("UPDATE forum_flags_{s} SET note = '' WHERE post_id = $1"),
                vec![post_id.to_string().into()],
            )
            .await?;
        }
        TopicEvent::SupportGiven { post_id, by, .. } => {
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_supports_{s} (post_id, person) VALUES ($1, $2) \
                     ON CONFLICT (post_id, person) DO NOTHING"
                ),
                vec![post_id.to_string().into(), by.to_string().into()],
            )
            .await?;
            exec(
                tx,
                &post_update("supports = supports + 1"),
                vec![post_id.to_string().into()],
            )
            .await?;
        }
        TopicEvent::SupportTakenBack { post_id, by, .. } => {
            exec(
                tx,
                &format!("DELETE FROM forum_supports_{s} WHERE post_id = $1 AND person = $2"),
                vec![post_id.to_string().into(), by.to_string().into()],
            )
            .await?;
            exec(
                tx,
                &post_update("supports = supports - 1"),
                vec![post_id.to_string().into()],
            )
            .await?;
        }
        TopicEvent::PostFlagged {
            post_id,
            by,
            reason,
            note,
            weight,
            score,
            ..
        } => {
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_flags_{s} (post_id, flagger, organisation, reason, note, weight, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (post_id, flagger) DO NOTHING"
                ),
                vec![
                    post_id.to_string().into(),
                    by.to_string().into(),
                    organisation.into(),
                    reason.as_str().into(),
                    note.into(),
                    i64::from(weight).into(),
                    at.as_str().into(),
                ],
            )
            .await?;
            exec(
                tx,
                &post_update("score = $2, flags = flags + 1, pending = 1, last_flag_at = $3"),
                vec![
                    post_id.to_string().into(),
                    i64::from(score).into(),
                    at.as_str().into(),
                ],
            )
            .await?;
        }
        TopicEvent::PostHidden {
            post_id,
            by,
            reason,
            ..
        } => {
            // A moderator's hiding is the review; flags' hiding awaits one.
            let set = if by.is_some() {
                "hidden = 1, hidden_reason = $2, hidden_by = $3, pending = 0"
            } else {
                "hidden = 1, hidden_reason = $2, hidden_by = $3"
            };
            exec(
                tx,
                &post_update(set),
                vec![
                    post_id.to_string().into(),
                    reason.as_str().into(),
                    by.map(|b| b.to_string()).into(),
                ],
            )
            .await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "post_hidden",
                    moderator: by,
                    target_kind: "post",
                    target_id: post_id.to_string(),
                    target_name: None,
                    target_person: None,
                    topic_id: Some(topic),
                    reason: &reason,
                    at,
                },
            )
            .await?;
        }
        TopicEvent::PostRestored {
            post_id,
            by,
            reason,
            ..
        } => {
            exec(
                tx,
                &post_update(
                    "hidden = 0, hidden_reason = NULL, hidden_by = NULL, score = 0, pending = 0",
                ),
                vec![post_id.to_string().into()],
            )
            .await?;
            revert(tx, s, "post_hidden", &post_id.to_string(), &at).await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "post_restored",
                    moderator: Some(by),
                    target_kind: "post",
                    target_id: post_id.to_string(),
                    target_name: None,
                    target_person: None,
                    topic_id: Some(topic),
                    reason: &reason,
                    at,
                },
            )
            .await?;
        }
        TopicEvent::TopicClosed { by, reason, .. }
        | TopicEvent::TopicReopened { by, reason, .. } => {
            let closing = stored.event_type == "TopicClosed";
            exec(
                tx,
                &format!("UPDATE forum_topics_{s} SET closed = $1 WHERE topic_id = $2"),
                vec![i64::from(closing).into(), topic.into()],
            )
            .await?;
            if !closing {
                revert(tx, s, "topic_closed", topic, &at).await?;
            }
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: if closing {
                        "topic_closed"
                    } else {
                        "topic_reopened"
                    },
                    moderator: Some(by),
                    target_kind: "topic",
                    target_id: topic.to_string(),
                    target_name: None,
                    target_person: None,
                    topic_id: Some(topic),
                    reason: &reason,
                    at,
                },
            )
            .await?;
        }
        TopicEvent::ConcernRaised {
            concern_id,
            post_id,
            by,
            note,
            ..
        } => {
            exec(
                tx,
                &format!(
                    "INSERT INTO forum_concerns_{s} (concern_id, organisation, topic_id, post_id, raised_by, \
                     note, raised_at, last_raised_at, rounds) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0) \
                     ON CONFLICT (concern_id) DO NOTHING"
                ),
                vec![
                    concern_id.to_string().into(),
                    organisation.into(),
                    topic.into(),
                    post_id.to_string().into(),
                    by.to_string().into(),
                    note.into(),
                    at.as_str().into(),
                ],
            )
            .await?;
        }
        TopicEvent::ConcernOpened { concern_id, by, .. } => {
            exec(
                tx,
                &format!(
                    "UPDATE forum_concerns_{s} SET opened_at = $1, opened_by = $2 WHERE concern_id = $3"
                ),
                vec![
                    at.as_str().into(),
                    by.to_string().into(),
                    concern_id.to_string().into(),
                ],
            )
            .await?;
        }
        TopicEvent::ConcernResolved {
            concern_id,
            by,
            action,
            note,
            ..
        } => {
            exec(
                tx,
                &format!(
                    "UPDATE forum_concerns_{s} SET resolved_at = $1, resolved_by = $2, action = $3, \
                     outcome = $4 WHERE concern_id = $5"
                ),
                vec![
                    at.as_str().into(),
                    by.to_string().into(),
                    action.as_str().into(),
                    note.as_str().into(),
                    concern_id.to_string().into(),
                ],
            )
            .await?;
            log(
                tx,
                s,
                stored,
                organisation,
                LogRow {
                    action: "concern_resolved",
                    moderator: Some(by),
                    target_kind: "concern",
                    target_id: concern_id.to_string(),
                    target_name: Some(action.as_str().to_string()),
                    target_person: None,
                    topic_id: Some(topic),
                    reason: &note,
                    at,
                },
            )
            .await?;
        }
        TopicEvent::ConcernRaisedAgain {
            concern_id, round, ..
        } => {
            exec(
                tx,
                &format!(
                    "UPDATE forum_concerns_{s} SET last_raised_at = $1, rounds = $2 WHERE concern_id = $3"
                ),
                vec![
                    at.as_str().into(),
                    i64::from(round).into(),
                    concern_id.to_string().into(),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

async fn reader_event(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    // The aggregate's id is `organisation/person` (`domain::forum::reader_id`).
    let Some((organisation, person)) = stored.aggregate_id.rsplit_once('/') else {
        return Err(DbError::Malformed {
            table: format!("forum_follows_{s}"),
            reason: format!("reader id `{}`", stored.aggregate_id),
        });
    };
    let (sql, vals): (String, Vec<Val>) = match stored.decode::<ReaderEvent>()? {
        ReaderEvent::TopicFollowed { topic_id, .. } | ReaderEvent::TopicUnfollowed { topic_id, .. } => {
            let following = i64::from(stored.event_type == "TopicFollowed");
            (
                format!(
                    "INSERT INTO forum_follows_{s} (organisation, person, topic_id, following, read_count) \
                     VALUES ($1, $2, $3, $4, 0) ON CONFLICT (organisation, person, topic_id) \
                     DO UPDATE SET following = excluded.following"
                ),
                vec![
                    organisation.into(),
                    person.into(),
                    topic_id.to_string().into(),
                    following.into(),
                ],
            )
        }
        ReaderEvent::TopicRead {
            topic_id, count, ..
        } => (
            format!(
                "INSERT INTO forum_follows_{s} (organisation, person, topic_id, following, read_count) \
                 VALUES ($1, $2, $3, 0, $4) ON CONFLICT (organisation, person, topic_id) \
                 DO UPDATE SET read_count = CASE WHEN excluded.read_count > forum_follows_{s}.read_count \
                 THEN excluded.read_count ELSE forum_follows_{s}.read_count END"
            ),
            vec![
                organisation.into(),
                person.into(),
                topic_id.to_string().into(),
                i64::from(count).into(),
            ],
        ),
    };
    exec(tx, &sql, vals).await
}
