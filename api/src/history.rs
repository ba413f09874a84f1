//! Item histories (a goal, a medication, a person, the crisis plan): the
//! history projection's index, read a page at a time, as the owner or a
//! reader with access sees them.

use async_graphql::{Context, Enum, Json, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::portal::Section;
use projections::read::history::{self, After, EntryRow};
use uuid::Uuid;

use crate::access::authorize_read;
use crate::auth::Role;
use crate::context::{caller, service};
use crate::error::ApiError;
use crate::ids::BigInt;
use crate::paging::{connection, Page, Window};

/// What happened to a portal: the type of one of its events.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventType {
    /// The portal was opened.
    PortalOpened,
    /// A life domain of the user's own was added.
    LifeDomainAdded,
    /// A life domain's status was rated.
    StatusRated,
    /// A goal was set.
    GoalSet,
    /// A goal was reworded.
    GoalRevised,
    /// A goal was achieved.
    GoalAchieved,
    /// A goal was abandoned.
    GoalAbandoned,
    /// An activity was planned.
    ActivityPlanned,
    /// An activity was done.
    ActivityCompleted,
    /// An activity was dropped.
    ActivityDropped,
    /// A medication was added.
    MedicationAdded,
    /// A medication's dose or schedule changed.
    MedicationChanged,
    /// A medication was paused.
    MedicationPaused,
    /// A medication was resumed.
    MedicationResumed,
    /// A medication was stopped.
    MedicationStopped,
    /// A person was added to the network map.
    PersonAdded,
    /// A person on the network map was changed.
    PersonUpdated,
    /// A person was taken off the network map.
    PersonRemoved,
    /// The crisis plan was revised.
    CrisisPlanRevised,
    /// An exercise was started.
    ExerciseStarted,
    /// An exercise was completed.
    ExerciseCompleted,
}

impl EventType {
    /// Every type, with the name the event store keeps.
    const ALL: [(EventType, &'static str); 21] = [
        (EventType::PortalOpened, "PortalOpened"),
        (EventType::LifeDomainAdded, "LifeDomainAdded"),
        (EventType::StatusRated, "StatusRated"),
        (EventType::GoalSet, "GoalSet"),
        (EventType::GoalRevised, "GoalRevised"),
        (EventType::GoalAchieved, "GoalAchieved"),
        (EventType::GoalAbandoned, "GoalAbandoned"),
        (EventType::ActivityPlanned, "ActivityPlanned"),
        (EventType::ActivityCompleted, "ActivityCompleted"),
        (EventType::ActivityDropped, "ActivityDropped"),
        (EventType::MedicationAdded, "MedicationAdded"),
        (EventType::MedicationChanged, "MedicationChanged"),
        (EventType::MedicationPaused, "MedicationPaused"),
        (EventType::MedicationResumed, "MedicationResumed"),
        (EventType::MedicationStopped, "MedicationStopped"),
        (EventType::PersonAdded, "PersonAdded"),
        (EventType::PersonUpdated, "PersonUpdated"),
        (EventType::PersonRemoved, "PersonRemoved"),
        (EventType::CrisisPlanRevised, "CrisisPlanRevised"),
        (EventType::ExerciseStarted, "ExerciseStarted"),
        (EventType::ExerciseCompleted, "ExerciseCompleted"),
    ];

    /// From the name the event store keeps; anything else is a corrupt store.
    pub fn stored(name: &str) -> Result<EventType, ApiError> {
        EventType::ALL
            .iter()
            .find(|(_, stored)| *stored == name)
            .map(|(t, _)| *t)
            .ok_or_else(|| ApiError::internal(format!("unknown portal event type `{name}`")))
    }
}

/// One recorded change, as the history of a goal or status shows it.
#[derive(SimpleObject)]
pub struct HistoryEntry {
    /// The portal's event sequence number; for someone other than the owner,
    /// the entry's place in this history (1, 2, ...), which is what their
    /// `afterSequence` counts.
    pub sequence: BigInt,
    /// Global position in the event stream (0 for someone other than the owner).
    pub position: BigInt,
    /// What happened.
    pub event_type: EventType,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who did it: their person id, or `system`.
    pub actor_id: ID,
    /// In which role.
    pub actor_role: Role,
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
                event_type: EventType::stored(&row.event_type)?,
                at: row.at,
                recorded_at: row.recorded_at,
                actor_id: ID(row.actor_id),
                actor_role: row.actor_role.parse().map_err(ApiError::internal)?,
                request_id: ID(if owner { row.request_id } else { String::new() }),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Page::forward(window, entries, |e| e.sequence.to_string()))
}

/// One page of the history of one item of a portal (`kind`: `goal`, a
/// section); NOT_FOUND, naming it `what`, for an item with no history.
pub(crate) async fn item_history(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    kind: &str,
    item: Uuid,
    what: &str,
    window: &Window,
) -> Result<HistoryEntryConnection, ApiError> {
    let entries = history_entries(ctx, portal_id, kind, &item.to_string(), window).await?;
    if entries.edges.is_empty() && window.after.is_none() {
        return Err(ApiError::NotFound(format!("{what} {item} does not exist")));
    }
    Ok(HistoryEntryConnection(entries))
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

/// A forward window of a history (`first` 1-500, default 100).
pub(crate) fn history_window(first: Option<i32>, after: Option<&str>) -> Result<Window, ApiError> {
    Window::forward(
        "history",
        first,
        after,
        HISTORY_PAGE_DEFAULT,
        HISTORY_PAGE_MAX,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every portal event's stored type has its enum value, and no two share one.
    #[test]
    fn every_portal_event_type_is_an_enum_value() {
        let names: Vec<&str> = EventType::ALL.iter().map(|(_, n)| *n).collect();
        for name in domain::portal::PortalEvent::TYPES {
            assert!(names.contains(&name), "{name} has no EventType");
        }
        assert_eq!(names.len(), domain::portal::PortalEvent::TYPES.len());
        assert!(EventType::stored("NoSuchEvent").is_err());
    }
}
