//! A portal's events through the history index: an item's history page by
//! page, and the views folded from just the events a question needs (the
//! crisis plan's revisions, the newest state of each item, the control panel
//! as it stood at a time), with the counts beside them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::portal::view::PortalView;
use domain::portal::{PortalEvent, Section};

use super::portal::Portal;
use super::{int, malformed, text, time};
use crate::db::{bind, ts, Db, DbError, Val};
use crate::engine::Engine;
use crate::history::{self, Pick};

/// One event in an item's history.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    /// The portal's sequence number of the event.
    pub sequence: i64,
    /// Its global position in the event stream.
    pub position: i64,
    pub event_type: String,
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_role: String,
    pub request_id: String,
    /// The event's payload as stored (JSON).
    pub data: String,
}

/// One recorded change, without its content.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub sequence: i64,
    pub section: Section,
    pub event_type: String,
    pub at: DateTime<Utc>,
}

/// Which events [`fold`] reads.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// One revision of the crisis plan: the newest ([`Pick::Latest`]) or
    /// the one after skipping `skip` ([`Pick::Nth`]).
    Plan { pick: Pick, skip: i64 },
    /// The newest event of each type of each item of a section (medications,
    /// network: an item's state is the newest event of each kind).
    LatestPerType(Section),
    /// Every event of a page of the newest items of a section.
    NewestItems(NewestItems),
    /// What the control panel needs of the core section (see
    /// [`history::panel_query`]).
    Panel,
}

/// The newest `limit` items of a section, newest by their `first_event`,
/// of those whose first event is before sequence `before`, after skipping
/// the newest `skip` of them.
#[derive(Debug, Clone, Copy)]
pub struct NewestItems {
    pub section: Section,
    pub first_event: &'static str,
    pub limit: i64,
    pub before: Option<i64>,
    pub skip: i64,
}

/// "Now and everything before it" for the `as_of` bounds.
fn as_of_text(as_of: Option<DateTime<Utc>>) -> String {
    as_of.map_or_else(|| "9999-12-31T23:59:59.999999Z".to_string(), ts)
}

fn table(engine: &Engine) -> String {
    engine.table(history::NAME, "history")
}

/// Answers a question about `portal` as it stands now from the engine's
/// shelf while the history projection has not changed the portal since the
/// answer was kept (`crate::cache`); a question about an earlier time goes
/// to the database. `query` names the question with its arguments. `read`
/// is not started until it is awaited, after the stamp is taken, so an
/// answer is never kept as newer than the read behind it.
async fn kept<V: std::any::Any + Clone + Send + Sync>(
    engine: &Engine,
    portal: &Portal,
    as_of: Option<DateTime<Utc>>,
    query: impl FnOnce() -> String,
    read: impl std::future::Future<Output = Result<V, DbError>>,
) -> Result<V, DbError> {
    let Some(changes) = engine.changes(history::NAME).filter(|_| as_of.is_none()) else {
        return read.await;
    };
    let query = query();
    if let Some(answer) = engine.kept.get_answer::<V>(changes, portal.id(), &query) {
        return Ok(V::clone(&answer));
    }
    let stamp = changes.stamp();
    let answer = read.await?;
    engine.kept.keep_answer(
        portal.id(),
        &query,
        stamp,
        std::sync::Arc::new(answer.clone()),
    );
    Ok(answer)
}

/// Folds the events `selection` names of `portal`, as it stood at `as_of`
/// (or now).
pub async fn fold(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    selection: Selection,
    as_of: Option<DateTime<Utc>>,
) -> Result<PortalView, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    kept(
        engine,
        portal,
        as_of,
        || format!("fold {selection:?}"),
        async {
            let table = table(engine);
            let id = Val::from(portal.id().to_string());
            let at = Val::from(as_of_text(as_of));
            let (sql, binds) = match selection {
                Selection::Plan { pick, skip } => {
                    let mut binds = vec![id, Section::CrisisPlan.as_str().into(), at];
                    if pick == Pick::Nth {
                        binds.push(skip.into());
                    }
                    (history::plan_query(db.backend, &table, pick), binds)
                }
                Selection::LatestPerType(section) => (
                    history::latest_per_type_query(db.backend, &table),
                    vec![id, section.as_str().into(), at],
                ),
                Selection::NewestItems(NewestItems {
                    section,
                    first_event,
                    limit,
                    before,
                    skip,
                }) => (
                    history::newest_items_query(db.backend, &table, first_event),
                    vec![
                        id,
                        section.as_str().into(),
                        at,
                        limit.into(),
                        before.unwrap_or(i64::MAX).into(),
                        skip.max(0).into(),
                    ],
                ),
                Selection::Panel => (history::panel_query(db.backend, &table), vec![id, at]),
            };
            let mut query = sqlx::query(&sql);
            for value in binds {
                query = bind(query, value);
            }
            let mut rows = query
                .fetch_all(&db.pool)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        int(row, "events", "sequence")?,
                        text(row, "events", "data")?,
                    ))
                })
                .collect::<Result<Vec<(i64, String)>, DbError>>()?;
            let portal_id = portal.id().to_string();
            let mut items: Vec<(i64, &mut String)> =
                rows.iter_mut().map(|(s, d)| (*s, d)).collect();
            db.vault
                .open_of_aggregate("Portal", &portal_id, &mut items)
                .await?;
            let mut view = PortalView::default();
            for (_, data) in rows {
                let event: PortalEvent =
                    serde_json::from_str(&data).map_err(|e| malformed("events", "payload", e))?;
                view.apply(&event);
            }
            Ok(view)
        },
    )
    .await
}

/// Counts from the history index, by the value of the first column.
async fn counts(
    db: &Db,
    sql: &str,
    key: &str,
    binds: Vec<Val>,
) -> Result<HashMap<String, i64>, DbError> {
    let mut query = sqlx::query(sql);
    for value in binds {
        query = bind(query, value);
    }
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| Ok((text(row, "history", key)?, int(row, "history", "n")?)))
        .collect()
}

/// How many events each subject of `kind` (`status`: each life domain) of
/// `portal` had at `as_of` (or now), by subject id.
pub async fn subject_counts(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    kind: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<HashMap<String, i64>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    kept(
        engine,
        portal,
        as_of,
        || format!("subject counts {kind}"),
        async {
            let sql = history::subject_counts_query(&table(engine));
            let binds = vec![
                portal.id().to_string().into(),
                kind.into(),
                as_of_text(as_of).into(),
            ];
            counts(db, &sql, "subject_id", binds).await
        },
    )
    .await
}

/// How many `event_type` events each item of `section` of `portal` had at
/// `as_of` (or now), by item id.
pub async fn item_counts(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    section: Section,
    event_type: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<HashMap<String, i64>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    kept(
        engine,
        portal,
        as_of,
        || format!("item counts {section:?} {event_type}"),
        async {
            let sql = history::item_counts_query(db.backend, &table(engine));
            let binds = vec![
                portal.id().to_string().into(),
                section.as_str().into(),
                as_of_text(as_of).into(),
                event_type.into(),
            ];
            counts(db, &sql, "subject_id", binds).await
        },
    )
    .await
}

/// How many events of each type `section` of `portal` had at `as_of` (or
/// now), by event type.
pub async fn type_counts(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    section: Section,
    as_of: Option<DateTime<Utc>>,
) -> Result<HashMap<String, i64>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    kept(
        engine,
        portal,
        as_of,
        || format!("type counts {section:?}"),
        async {
            let sql = history::type_counts_query(&table(engine));
            let binds = vec![
                portal.id().to_string().into(),
                section.as_str().into(),
                as_of_text(as_of).into(),
            ];
            counts(db, &sql, "event_type", binds).await
        },
    )
    .await
}

/// The items `page` names as they stood at `as_of`: each item's id and the
/// sequence of its first event, newest first. The keys of the page that
/// [`Selection::NewestItems`] folds.
pub async fn newest_item_keys(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    page: NewestItems,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<(String, i64)>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    kept(
        engine,
        portal,
        as_of,
        || format!("newest items {page:?}"),
        async {
            let table = table(engine);
            sqlx::query(&history::newest_item_keys_query(&table, page.first_event))
                .bind(portal.id().to_string())
                .bind(page.section.as_str())
                .bind(as_of_text(as_of))
                .bind(page.limit)
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(page.skip.max(0))
                .fetch_all(&db.pool)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        text(row, &table, "subject_id")?,
                        int(row, &table, "sequence")?,
                    ))
                })
                .collect()
        },
    )
    .await
}

/// Where a page of recent changes starts, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Newest {
    /// At the newest change.
    First,
    /// At the newest change before this sequence number.
    Before(i64),
    /// After skipping this many of the newest.
    Skip(i64),
}

/// The newest `limit` changes of `portal` as it stood at `as_of` (or now),
/// of one section only with `only`, from `from` on.
pub async fn recent(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    limit: i64,
    as_of: Option<DateTime<Utc>>,
    only: Option<Section>,
    from: Newest,
) -> Result<Vec<ChangeRow>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    let table = table(engine);
    let sql = history::recent_query(&table, only.is_some());
    let (before, skip) = match from {
        Newest::First => (i64::MAX, 0),
        Newest::Before(sequence) => (sequence, 0),
        Newest::Skip(n) => (i64::MAX, n.max(0)),
    };
    let mut query = sqlx::query(&sql)
        .bind(portal.id().to_string())
        .bind(limit)
        .bind(as_of_text(as_of))
        .bind(before)
        .bind(skip);
    if let Some(section) = only {
        query = query.bind(section.as_str());
    }
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| {
            let name = text(row, &table, "section")?;
            Ok(ChangeRow {
                sequence: int(row, &table, "sequence")?,
                section: Section::parse(&name).ok_or_else(|| {
                    malformed(&table, "section", format!("unknown section `{name}`"))
                })?,
                event_type: text(row, &table, "event_type")?,
                at: time(row, &table, "at")?,
            })
        })
        .collect()
}

/// Where a page of an item's history starts.
#[derive(Debug, Clone, Copy)]
pub enum After {
    /// After the portal's sequence number (its owner, who sees them all).
    Sequence(i64),
    /// After this many entries (anyone else: the portal's numbering would
    /// tell of changes in sections they may not see).
    Entries(i64),
}

/// Up to `limit` events of one item (`kind`, `subject_id`) of `portal`,
/// oldest first, after `after`.
pub async fn entries(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    kind: &str,
    subject_id: &str,
    after: After,
    limit: i64,
) -> Result<Vec<EntryRow>, DbError> {
    // An erased owner's portal reads as empty (issue 18).
    if portal.erased_at().is_some() {
        return Ok(Default::default());
    }
    let table = table(engine);
    let (ranked, after) = match after {
        After::Sequence(n) => (false, n),
        After::Entries(n) => (true, n),
    };
    let mut rows = sqlx::query(&history::query(db.backend, &table, ranked))
        .bind(portal.id().to_string())
        .bind(kind)
        .bind(subject_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(EntryRow {
                sequence: int(row, &table, "sequence")?,
                position: int(row, &table, "position")?,
                event_type: text(row, &table, "event_type")?,
                at: time(row, &table, "at")?,
                recorded_at: time(row, "events", "recorded_at")?,
                actor_id: text(row, "events", "actor_id")?,
                actor_role: text(row, "events", "actor_role")?,
                request_id: text(row, "events", "request_id")?,
                data: text(row, "events", "data")?,
            })
        })
        .collect::<Result<Vec<EntryRow>, DbError>>()?;
    let portal_id = portal.id().to_string();
    let mut items: Vec<(i64, &mut String)> =
        rows.iter_mut().map(|r| (r.sequence, &mut r.data)).collect();
    db.vault
        .open_of_aggregate("Portal", &portal_id, &mut items)
        .await?;
    Ok(rows)
}
