//! Item histories (a goal, a medication, a person, the crisis plan): the
//! history projection's index, read a page at a time, as the owner or a
//! reader with access sees them.

use async_graphql::{Context, Json, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::portal::Section;
use projections::read::history::{self, After, EntryRow};
use uuid::Uuid;

use crate::access::authorize_read;
use crate::context::{caller, service};
use crate::error::ApiError;
use crate::node::BigInt;
use crate::paging::{connection, Page, Window};

/// One recorded change, as the history of a goal or status shows it.
#[derive(SimpleObject)]
pub struct HistoryEntry {
    /// The portal's event sequence number; for someone other than the owner,
    /// the entry's place in this history (1, 2, ...), which is what their
    /// `afterSequence` counts.
    pub sequence: BigInt,
    /// Global position in the event stream (0 for someone other than the owner).
    pub position: BigInt,
    /// What happened (`GoalSet`, `ActivityCompleted`, `StatusRated`, ...).
    pub event_type: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who did it: their person id, or `system`.
    pub actor_id: ID,
    /// In which role.
    pub actor_role: String,
    /// The request that caused it (empty for someone other than the owner).
    pub request_id: ID,
    /// The event itself, as stored.
    pub data: Json<serde_json::Value>,
}

connection!(
    /// A page of a history, oldest first.
    HistoryEntryConnection,
    HistoryEntryEdge,
    HistoryEntry
);

/// The history of one thing in a portal (`kind`, `subject_id`), oldest
/// first, one page of it.
pub(crate) async fn history_entries(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    kind: &str,
    subject_id: &str,
    window: &Window,
) -> Result<Page<HistoryEntry>, ApiError> {
    let span = Span::of(window)?;
    let (rows, owner) = history_rows(ctx, portal_id, kind, subject_id, span).await?;
    let entries = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            Ok(HistoryEntry {
                sequence: BigInt(span.shown(&row, owner, i)),
                position: BigInt(if owner { row.position } else { 0 }),
                data: Json(serde_json::from_str(&row.data)?),
                event_type: row.event_type,
                at: row.at,
                recorded_at: row.recorded_at,
                actor_id: ID(row.actor_id),
                actor_role: row.actor_role,
                request_id: ID(if owner { row.request_id } else { String::new() }),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Page::forward(window, entries, |e| e.sequence.to_string()))
}

/// The section an item history (`kind`) belongs to.
fn section_of_kind(kind: &str) -> Result<Section, ApiError> {
    match kind {
        "goal" | "status" => Ok(Section::Core),
        other => Section::parse(other)
            .ok_or_else(|| ApiError::internal(format!("history of unknown kind `{other}`"))),
    }
}

/// One page of an item's history, and whether the owner reads it. Someone
/// else pages by counting entries (`afterSequence` is how many they have),
/// since the portal's sequence numbers would tell them of changes in
/// sections they may not see.
pub(crate) async fn history_rows(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    kind: &str,
    subject_id: &str,
    page: Span,
) -> Result<(Vec<EntryRow>, bool), ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    let portal_id = portal_id.unwrap_or(caller.subject);
    let reader = authorize_read(ctx, portal_id, section_of_kind(kind)?).await?;
    let after = if reader.owner {
        After::Sequence(page.after)
    } else {
        After::Entries(page.after)
    };
    let rows = history::entries(
        &svc.engine,
        &svc.db,
        &reader.portal,
        kind,
        subject_id,
        after,
        page.limit,
    )
    .await?;
    Ok((rows, reader.owner))
}

/// Most history entries returned at once, and how many by default.
pub const HISTORY_PAGE_MAX: usize = 500;
pub const HISTORY_PAGE_DEFAULT: usize = 100;

/// The rows of one page of a history: after a sequence number (the
/// owner's) or a count of entries (anyone else's), oldest first, one more
/// than the page to learn whether there is a next one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    after: i64,
    limit: i64,
}

impl Span {
    /// The rows a forward window of a history names.
    pub(crate) fn of(window: &Window) -> Result<Span, ApiError> {
        Ok(Span {
            after: window.after_number()?.unwrap_or(0),
            limit: window.fetch(),
        })
    }

    /// The sequence number shown for the `i`-th row of this page: the
    /// portal's for its owner, the entry's place in the list for anyone else.
    pub(crate) fn shown(&self, row: &EntryRow, owner: bool, i: usize) -> i64 {
        if owner {
            row.sequence
        } else {
            self.after + i as i64 + 1
        }
    }
}
