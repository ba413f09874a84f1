//! The toolbox in GraphQL: medications, network map, crisis plan, exercises,
//! and the control panel's section summary, each readable "now" or as it
//! stood at any earlier time (`asOf`).
//!
//! Reads of a section fold the events its answer needs (found through the
//! history index) with [`PortalView`]; the current state is the same fold up
//! to now, so "now" and "as of T" cannot disagree. See `docs/as-of.md`.

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::catalogue::CatalogueCommand;
use domain::portal::view::PortalView;
use domain::portal::{PersonDetails, PortalCommand, Section};
use projections::history::Pick;
use projections::read::history::{self, Selection};
use projections::read::panel;
use projections::read::portal::Portal;
use uuid::Uuid;

use crate::access::authorize_read;
use crate::context::{caller, now, own, request, run, service};
use crate::error::ApiError;
use crate::history::{
    history_entries, history_window, item_history, HistoryEntryConnection, HISTORY_PAGE_DEFAULT,
};
use crate::ids::{self, BigInt, NodeId};
use crate::paging::{connection, Page, Window};
use crate::payload::payload;
use crate::service::CommandOutcome;

/// Where a medication stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::MedicationState")]
pub enum MedicationState {
    /// Being taken.
    Active,
    /// Paused for now; can be resumed.
    Paused,
    /// Stopped for good.
    Stopped,
}

/// How a person on the network map is related to the service user.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::RelationKind")]
pub enum RelationKind {
    /// Family.
    Family,
    /// A friend.
    Friend,
    /// A professional (doctor, nurse, social worker, ...).
    Professional,
    /// A peer: someone with lived experience.
    Peer,
    /// Anyone else.
    Other,
}

/// A kind of support a person gives.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::SupportKind")]
pub enum SupportKind {
    /// Listening, comfort, encouragement.
    Emotional,
    /// Help with everyday tasks.
    Practical,
    /// Advice and information.
    Informational,
    /// Company and shared activities.
    Social,
    /// Money or material help.
    Financial,
    /// Anything else.
    Other,
}

/// A part of the portal.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::Section")]
pub enum PortalSection {
    /// Life domains, status ratings, goals and activities.
    Core,
    /// Medications.
    Medications,
    /// The network map.
    Network,
    /// The crisis plan.
    CrisisPlan,
    /// The exercise log.
    Exercises,
}

/// A medication.
#[derive(SimpleObject)]
pub struct Medication {
    /// The medication's global id.
    pub id: ID,
    /// The medication's own uuid (as in exports and events).
    pub uuid: Uuid,
    /// Name (1-100 characters).
    pub name: String,
    /// Dose, as free text (1-100 characters).
    pub dose: String,
    /// When it is taken, as free text (1-200 characters).
    pub schedule: String,
    /// What it is for (up to 500 characters; may be empty).
    pub purpose: String,
    /// Who prescribed it, as free text (up to 100 characters; may be empty).
    pub prescriber: String,
    /// Active, paused or stopped.
    pub state: MedicationState,
    /// When it was added.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it is paused (while paused) or was stopped (once stopped); may be empty.
    pub reason: Option<String>,
    /// When it was stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// How many dose or schedule changes it has had.
    pub changes: i32,
}

/// A person on the network map.
#[derive(SimpleObject)]
pub struct NetworkPerson {
    /// The person's global id.
    pub id: ID,
    /// The person's own uuid on this map (as in exports and events).
    pub uuid: Uuid,
    /// Name as the user wants to see it (1-100 characters).
    pub display_name: String,
    /// How they are related.
    pub relation: RelationKind,
    /// Closeness from 1 (distant) to 5 (very close).
    pub closeness: i32,
    /// The kinds of support they give, without repeats.
    pub support: Vec<SupportKind>,
    /// When they were added.
    pub added_at: DateTime<Utc>,
    /// When their entry last changed.
    pub updated_at: DateTime<Utc>,
    /// When they were taken off the map; null while on it.
    pub removed_at: Option<DateTime<Utc>>,
    /// Why they were taken off (may be empty); null while on the map.
    pub removal_reason: Option<String>,
}

/// Someone to contact in a crisis.
#[derive(SimpleObject)]
pub struct CrisisContact {
    /// Name (1-100 characters).
    pub name: String,
    /// Phone number: 3-30 characters of digits, spaces and + - . ( ).
    pub phone: String,
    /// When to call them (up to 500 characters; may be empty).
    pub when_to_call: String,
}

/// One revision of the crisis plan.
#[derive(SimpleObject)]
pub struct CrisisPlan {
    /// The revision's global id.
    pub id: ID,
    /// Revision number, 1 for the first.
    pub revision: i32,
    /// When this revision was written.
    pub revised_at: DateTime<Utc>,
    /// Signs that a crisis is coming (up to 30 items of 1-500 characters).
    pub warning_signs: Vec<String>,
    /// What helps (up to 30 items of 1-500 characters).
    pub what_helps: Vec<String>,
    /// What does not help (up to 30 items of 1-500 characters).
    pub what_does_not_help: Vec<String>,
    /// Who to contact and when (up to 20).
    pub contacts: Vec<CrisisContact>,
    /// The user's own words for the situation (up to 4000 characters).
    pub own_words: String,
}

/// A crisis contact as a revision gives it.
#[derive(InputObject)]
pub struct CrisisContactInput {
    /// Name: 1-100 characters, unique within the plan (ignoring case).
    pub name: String,
    /// Phone number: 3-30 characters of digits, spaces and + - . ( ), at least 3 digits.
    pub phone: String,
    /// When to call them: up to 500 characters.
    pub when_to_call: Option<String>,
}

/// A whole revision of the crisis plan. At least one part must be non-empty,
/// and it must differ from the current revision.
#[derive(InputObject)]
pub struct CrisisPlanInput {
    /// Warning signs: up to 30 items of 1-500 characters.
    #[graphql(default)]
    pub warning_signs: Vec<String>,
    /// What helps: up to 30 items of 1-500 characters.
    #[graphql(default)]
    pub what_helps: Vec<String>,
    /// What does not help: up to 30 items of 1-500 characters.
    #[graphql(default)]
    pub what_does_not_help: Vec<String>,
    /// Contacts: up to 20.
    #[graphql(default)]
    pub contacts: Vec<CrisisContactInput>,
    /// The user's own words: up to 4000 characters.
    #[graphql(default)]
    pub own_words: String,
}

/// An exercise of the organisation's catalogue.
#[derive(SimpleObject)]
pub struct Exercise {
    /// Stable key, used to start it.
    pub key: String,
    /// Title (1-100 characters).
    pub title: String,
    /// What it is about (up to 2000 characters).
    pub description: String,
    /// True for exercises the organisation added, false for the defaults.
    pub added: bool,
}

/// One entry of the exercise log.
#[derive(SimpleObject)]
pub struct ExerciseEntry {
    /// The log entry's global id.
    pub id: ID,
    /// The log entry's uuid, chosen by the client or generated.
    pub uuid: Uuid,
    /// Key of the exercise.
    pub exercise: String,
    /// Title of the exercise when it was started.
    pub title: String,
    /// When it was started.
    pub started_at: DateTime<Utc>,
    /// When it was completed; null while under way.
    pub completed_at: Option<DateTime<Utc>>,
    /// The user's reflection (up to 2000 characters); null until completed.
    pub reflection: Option<String>,
    /// Self-rating from 1 to 5, if given.
    pub rating: Option<i32>,
}

/// The exercise log.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ExerciseLog {
    /// Exercises started, in all.
    pub started: i32,
    /// Exercises completed, in all.
    pub completed: i32,
    /// The portal, found within the caller's organisation.
    #[graphql(skip)]
    pub portal: Portal,
    /// The time asked for, if not now.
    #[graphql(skip)]
    pub as_of: Option<DateTime<Utc>>,
    /// True when the owner reads it.
    #[graphql(skip)]
    pub owner: bool,
}

/// Counts and recency of one section, for the control panel.
#[derive(SimpleObject, Clone)]
pub struct SectionSummary {
    /// Which section.
    pub section: PortalSection,
    /// Items ever created: goals set, medications and people added,
    /// crisis-plan revisions written, exercises started.
    pub items: i64,
    /// Items current now: active goals, medications not stopped, people on the
    /// map, 1 if a crisis plan exists, exercises completed.
    pub current: i64,
    /// Recorded changes in the section.
    pub changes: i64,
    /// When the section last changed; null if never.
    pub last_changed_at: Option<DateTime<Utc>>,
}

/// One recorded change of a portal, without its content.
#[derive(SimpleObject)]
pub struct RecentChange {
    /// The portal's event sequence number (for someone other than the owner: the
    /// change's number within the core section).
    pub sequence: BigInt,
    /// The section it changed.
    pub section: PortalSection,
    /// What happened.
    pub event_type: crate::history::EventType,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Checks that the caller may read `section` of the portal (their own by
/// default); returns it and whether they own it.
async fn readable(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    section: Section,
) -> Result<(Portal, bool), ApiError> {
    let portal_id = portal_id.unwrap_or(caller(ctx)?.subject);
    let reader = authorize_read(ctx, portal_id, section).await?;
    Ok((reader.portal, reader.owner))
}

/// Folds the events `selection` names of a portal the caller may read
/// `section` of, as it stood at `as_of` (or now).
async fn view_of(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    section: Section,
    selection: Selection,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Portal, PortalView), ApiError> {
    let svc = service(ctx);
    let (portal, _) = readable(ctx, portal_id, section).await?;
    let view = history::fold(&svc.engine, &svc.db, &portal, selection, as_of).await?;
    Ok((portal, view))
}

/// What the control panel shows as of a time: the core section's opening and
/// domains, the goals active then with their activities, and each domain's
/// latest rating with its count. Events of closed goals and earlier ratings
/// are not read.
pub(crate) async fn panel_view(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<(Portal, bool, PortalView), ApiError> {
    let svc = service(ctx);
    let (portal, owner) = readable(ctx, portal_id, Section::Core).await?;
    let (mut view, counts) = tokio::try_join!(
        history::fold(&svc.engine, &svc.db, &portal, Selection::Panel, Some(as_of)),
        history::subject_counts(&svc.engine, &svc.db, &portal, "status", Some(as_of))
    )?;
    for domain in &mut view.domains {
        if let Some(n) = counts.get(&domain.key) {
            domain.ratings = *n;
        }
    }
    Ok((portal, owner, view))
}

/// The section summaries of a portal, now or as it stood at `as_of`.
pub(crate) async fn summaries(
    ctx: &Context<'_>,
    portal: &Portal,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<SectionSummary>, ApiError> {
    let svc = service(ctx);
    Ok(panel::summaries(&svc.engine, &svc.db, portal, as_of)
        .await?
        .into_iter()
        .map(|s| SectionSummary {
            section: s.section.into(),
            items: s.items,
            current: s.current,
            changes: s.changes,
            last_changed_at: s.last_changed_at,
        })
        .collect())
}

/// The newest `limit` changes of a portal as it stood at `as_of` (or now),
/// from `from` on.
pub(crate) async fn recent_changes(
    ctx: &Context<'_>,
    portal: &Portal,
    limit: i64,
    as_of: Option<DateTime<Utc>>,
    only: Option<Section>,
    from: history::Newest,
) -> Result<Vec<RecentChange>, ApiError> {
    let svc = service(ctx);
    let rows = history::recent(&svc.engine, &svc.db, portal, limit, as_of, only, from).await?;
    rows.into_iter()
        .map(|row| {
            Ok(RecentChange {
                sequence: BigInt(row.sequence),
                section: row.section.into(),
                event_type: crate::history::EventType::stored(&row.event_type)?,
                at: row.at,
            })
        })
        .collect()
}

/// One entry of a portal's exercise log, folded from its own events, for
/// a caller who may read the log.
pub(crate) async fn exercise_entry(
    ctx: &Context<'_>,
    portal: Uuid,
    entry_id: Uuid,
) -> async_graphql::Result<Option<ExerciseEntry>> {
    let section = Section::Exercises;
    let (portal, _) = readable(ctx, Some(portal), section).await?;
    let svc = service(ctx);
    let rows = history::entries(
        &svc.engine,
        &svc.db,
        &portal,
        section.as_str(),
        &entry_id.to_string(),
        history::After::Sequence(0),
        10,
    )
    .await?;
    let mut view = PortalView::default();
    for row in rows {
        view.apply(&serde_json::from_str(&row.data)?);
    }
    let id = portal.id();
    Ok(view.exercise_log.into_iter().next().map(|e| entry(id, e)))
}

/// The medication a global id names, through `medications`.
pub(crate) async fn medication_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<Medication>> {
    let NodeId::Medication { portal, medication } = id else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    let all = ToolboxQuery.medications(ctx, portal, None, true).await?;
    Ok(all.into_iter().find(|m| m.uuid == medication))
}

/// The person on the network map a global id names, through `network`.
pub(crate) async fn network_person_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<NetworkPerson>> {
    let NodeId::NetworkPerson { portal, person } = id else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    let all = ToolboxQuery.network(ctx, portal, None, true).await?;
    Ok(all.into_iter().find(|p| p.uuid == person))
}

/// The crisis-plan revision a global id names, through `crisisPlan`.
pub(crate) async fn crisis_plan_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<CrisisPlan>> {
    let NodeId::CrisisPlan { portal, revision } = id else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    ToolboxQuery
        .crisis_plan(ctx, portal, None, Some(revision))
        .await
}

/// The exercise log entry a global id names.
pub(crate) async fn exercise_entry_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ExerciseEntry>> {
    let NodeId::ExerciseEntry { portal, entry } = id else {
        return Ok(None);
    };
    exercise_entry(ctx, portal, entry).await
}

payload!(
    /// What a change to a medication returns.
    MedicationPayload { medication: Medication = medication_node, "The medication after the change." }
);
payload!(
    /// What a change to a person on the network map returns.
    NetworkPersonPayload { person: NetworkPerson = network_person_node, "The person after the change (with `removedAt` once removed)." }
);
payload!(
    /// What a revision of the crisis plan returns.
    CrisisPlanPayload { crisis_plan: CrisisPlan = crisis_plan_node, "The revision written." }
);
payload!(
    /// What starting or completing an exercise returns.
    ExerciseEntryPayload { entry: ExerciseEntry = exercise_entry_node, "The log entry after the change." }
);

/// One exercise of the caller's organisation's catalogue, by key.
pub(crate) async fn catalogue_exercise(
    ctx: &Context<'_>,
    key: &str,
) -> async_graphql::Result<Option<Exercise>> {
    let catalogue = ToolboxQuery.exercise_catalogue(ctx).await?;
    Ok(catalogue.into_iter().find(|e| e.key == key))
}

/// Most recent changes a control panel lists at once, and how many by default.
pub const RECENT_MAX: usize = 50;
pub const RECENT_DEFAULT: usize = 10;
/// Most exercise log entries on a page, and how many by default.
pub const LOG_PAGE_MAX: usize = 500;
pub const LOG_PAGE_DEFAULT: usize = 100;

/// Toolbox reads: the caller's own portal, now or as of an earlier time.
#[derive(Default)]
pub struct ToolboxQuery;

/// Toolbox reads. Every field takes `asOf`: the section as it stood at that
/// time, computed from the events (omitted: now).
#[Object]
impl ToolboxQuery {
    /// The medications, in the order added. Stopped ones are included unless
    /// `includeStopped` is false.
    pub(crate) async fn medications(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "The time to answer for; now when omitted.")] as_of: Option<DateTime<Utc>>,
        #[graphql(
            default = true,
            desc = "Whether stopped medications are included (default true)."
        )]
        include_stopped: bool,
    ) -> async_graphql::Result<Vec<Medication>> {
        let section = Section::Medications;
        let portal_id = ids::portal(portal_id.as_ref())?;
        let (portal, mut view) = view_of(
            ctx,
            portal_id,
            section,
            Selection::LatestPerType(section),
            as_of,
        )
        .await?;
        // Only the newest change was folded: count them all.
        let svc = service(ctx);
        let counts = history::item_counts(
            &svc.engine,
            &svc.db,
            &portal,
            section,
            "MedicationChanged",
            as_of,
        )
        .await?;
        for m in &mut view.medications {
            if let Some(n) = counts.get(&m.id.to_string()) {
                m.changes = *n as u32;
            }
        }
        Ok(view
            .medications
            .into_iter()
            .filter(|m| include_stopped || m.state != domain::portal::MedicationState::Stopped)
            .map(|m| Medication {
                id: NodeId::Medication {
                    portal: portal.id(),
                    medication: m.id,
                }
                .id(),
                uuid: m.id,
                name: m.name,
                dose: m.dose,
                schedule: m.schedule,
                purpose: m.purpose,
                prescriber: m.prescriber,
                state: m.state.into(),
                started_at: m.started_at,
                updated_at: m.updated_at,
                reason: m.reason,
                stopped_at: m.stopped_at,
                changes: m.changes as i32,
            })
            .collect())
    }

    /// The people on the network map, in the order added. Removed people are
    /// included (with `removedAt`) only if `includeRemoved` is true.
    pub(crate) async fn network(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "The time to answer for; now when omitted.")] as_of: Option<DateTime<Utc>>,
        #[graphql(
            default = false,
            desc = "Whether people taken off the map are included (default false)."
        )]
        include_removed: bool,
    ) -> async_graphql::Result<Vec<NetworkPerson>> {
        let section = Section::Network;
        let selection = Selection::LatestPerType(section);
        let portal_id = ids::portal(portal_id.as_ref())?;
        let (portal, view) = view_of(ctx, portal_id, section, selection, as_of).await?;
        Ok(view
            .people
            .into_iter()
            .filter(|p| include_removed || p.removed_at.is_none())
            .map(|p| NetworkPerson {
                id: NodeId::NetworkPerson {
                    portal: portal.id(),
                    person: p.id,
                }
                .id(),
                uuid: p.id,
                display_name: p.display_name,
                relation: p.relation.into(),
                closeness: p.closeness,
                support: p.support.into_iter().map(Into::into).collect(),
                added_at: p.added_at,
                updated_at: p.updated_at,
                removed_at: p.removed_at,
                removal_reason: p.removal_reason,
            })
            .collect())
    }

    /// The crisis plan: the latest revision at `asOf` (or now), or the given
    /// `revision`. Null when there is none.
    pub(crate) async fn crisis_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "The time to answer for; now when omitted.")] as_of: Option<DateTime<Utc>>,
        #[graphql(desc = "The revision to read, 1 for the first; the latest when omitted.")]
        revision: Option<i32>,
    ) -> async_graphql::Result<Option<CrisisPlan>> {
        let (pick, skip) = match revision {
            None => (Pick::Latest, 0),
            Some(n) if n >= 1 => (Pick::Nth, i64::from(n) - 1),
            Some(n) => {
                return Err(ApiError::BadInput(format!(
                    "field `revision` must be at least 1, got {n}"
                ))
                .into())
            }
        };
        let selection = Selection::Plan { pick, skip };
        let portal_id = ids::portal(portal_id.as_ref())?;
        let (portal, view) = view_of(ctx, portal_id, Section::CrisisPlan, selection, as_of).await?;
        Ok(view.crisis_plan.map(|p| CrisisPlan {
            id: NodeId::CrisisPlan {
                portal: portal.id(),
                revision: p.revision as i32,
            }
            .id(),
            revision: p.revision as i32,
            revised_at: p.revised_at,
            warning_signs: p.plan.warning_signs,
            what_helps: p.plan.what_helps,
            what_does_not_help: p.plan.what_does_not_help,
            contacts: p
                .plan
                .contacts
                .into_iter()
                .map(|c| CrisisContact {
                    name: c.name,
                    phone: c.phone,
                    when_to_call: c.when_to_call,
                })
                .collect(),
            own_words: p.plan.own_words,
        }))
    }

    /// Every change to one medication, oldest first, a page at a time:
    /// `first` 1-500 (default 100) after the cursor `after`.
    #[graphql(
        complexity = "crate::paging::cost(first, None, HISTORY_PAGE_DEFAULT, child_complexity)"
    )]
    async fn medication_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The medication: its global id, or its uuid.")] medication_id: ID,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; when omitted, the portal of a global `medicationId`, else the caller's own."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "How many history entries from the oldest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<HistoryEntryConnection> {
        let window = history_window(first, after.as_deref())?;
        let (portal_id, medication_id) = ids::medication(&medication_id, portal_id.as_ref())?;
        let section = Section::Medications.as_str();
        Ok(item_history(
            ctx,
            portal_id,
            section,
            medication_id,
            "medication",
            &window,
        )
        .await?)
    }

    /// Every change to one person on the network map, removal included, oldest
    /// first, a page at a time: `first` 1-500 (default 100) after the cursor `after`.
    #[graphql(
        complexity = "crate::paging::cost(first, None, HISTORY_PAGE_DEFAULT, child_complexity)"
    )]
    async fn person_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person on the network map: their global id, or their uuid.")]
        person_id: ID,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; when omitted, the portal of a global `personId`, else the caller's own."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "How many history entries from the oldest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<HistoryEntryConnection> {
        let window = history_window(first, after.as_deref())?;
        let (portal_id, person_id) = ids::network_person(&person_id, portal_id.as_ref())?;
        let section = Section::Network.as_str();
        Ok(item_history(ctx, portal_id, section, person_id, "person", &window).await?)
    }

    /// Every revision of the crisis plan, oldest first, with who wrote it and
    /// when, a page at a time: `first` 1-500 (default 100) after the cursor `after`.
    #[graphql(
        complexity = "crate::paging::cost(first, None, HISTORY_PAGE_DEFAULT, child_complexity)"
    )]
    async fn crisis_plan_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "How many crisis-plan revisions from the oldest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<HistoryEntryConnection> {
        let window = history_window(first, after.as_deref())?;
        let portal_id = ids::portal(portal_id.as_ref())?;
        let id = portal_id.unwrap_or(caller(ctx)?.subject).to_string();
        let section = Section::CrisisPlan.as_str();
        Ok(HistoryEntryConnection(
            history_entries(ctx, portal_id, section, &id, &window).await?,
        ))
    }

    /// The organisation's exercise catalogue: the defaults, then the ones added.
    pub(crate) async fn exercise_catalogue(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<Exercise>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let catalogue = svc.catalogue(&caller.organisation).await?;
        let mut list: Vec<Exercise> = catalogue
            .exercises
            .into_iter()
            .map(|(key, e)| Exercise {
                key,
                title: e.title,
                description: e.description,
                added: e.added,
            })
            .collect();
        list.sort_by(|a, b| a.added.cmp(&b.added).then(a.title.cmp(&b.title)));
        Ok(list)
    }

    /// The exercise log: totals, and its entries a page at a time.
    pub(crate) async fn exercise_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "The time to answer for; now when omitted.")] as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ExerciseLog> {
        let section = Section::Exercises;
        let portal_id = ids::portal(portal_id.as_ref())?;
        let (portal, owner) = readable(ctx, portal_id, section).await?;
        let svc = service(ctx);
        let counts = history::type_counts(&svc.engine, &svc.db, &portal, section, as_of).await?;
        let count = |event_type: &str| counts.get(event_type).copied().unwrap_or(0) as i32;
        Ok(ExerciseLog {
            started: count("ExerciseStarted"),
            completed: count("ExerciseCompleted"),
            portal,
            as_of,
            owner,
        })
    }
}

connection!(
    /// A page of the exercise log, newest first.
    ExerciseEntryConnection,
    ExerciseEntryEdge,
    ExerciseEntry
);

fn entry(portal: Uuid, e: domain::portal::view::ExerciseEntryView) -> ExerciseEntry {
    ExerciseEntry {
        id: NodeId::ExerciseEntry {
            portal,
            entry: e.id,
        }
        .id(),
        uuid: e.id,
        exercise: e.exercise,
        title: e.title,
        started_at: e.started_at,
        completed_at: e.completed_at,
        reflection: e.reflection,
        rating: e.rating,
    }
}

#[ComplexObject]
impl ExerciseLog {
    /// The entries, newest first, a page at a time: `first` 1-500 (default
    /// 100) after the cursor `after`. Only the entries of the page are read,
    /// whatever the log's length.
    #[graphql(complexity = "crate::paging::cost(first, None, LOG_PAGE_DEFAULT, child_complexity)")]
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many log entries from the newest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<ExerciseEntryConnection> {
        let window = Window::forward(
            "exercises",
            first,
            after.as_deref(),
            LOG_PAGE_DEFAULT,
            LOG_PAGE_MAX,
        )?;
        let after = window.after_number()?;
        let svc = service(ctx);
        // The owner's cursor is the sequence of an entry's start; anyone
        // else's is how many entries they have seen, since the portal's
        // sequence numbers would tell of changes in other sections.
        let (before, skip) = match (self.owner, after) {
            (true, after) => (after, 0),
            (false, seen) => (None, seen.unwrap_or(0)),
        };
        let (section, first_event) = (Section::Exercises, "ExerciseStarted");
        let page = history::NewestItems {
            section,
            first_event,
            limit: window.fetch(),
            before,
            skip,
        };
        let keys =
            history::newest_item_keys(&svc.engine, &svc.db, &self.portal, page, self.as_of).await?;
        // Exactly the keyed entries: the newest as many, started no later than
        // the newest of them (one started since is newer, and left out).
        let view = match keys.first() {
            None => PortalView::default(),
            Some((_, newest)) => {
                let selection = Selection::NewestItems(history::NewestItems {
                    section,
                    first_event,
                    limit: keys.len() as i64,
                    before: Some(newest + 1),
                    skip: 0,
                });
                history::fold(&svc.engine, &svc.db, &self.portal, selection, self.as_of).await?
            }
        };
        let cursors: std::collections::HashMap<String, i64> = keys
            .into_iter()
            .enumerate()
            .map(|(i, (id, sequence))| {
                let key = if self.owner {
                    sequence
                } else {
                    skip + i as i64 + 1
                };
                (id, key)
            })
            .collect();
        let entries: Vec<ExerciseEntry> = view
            .exercise_log
            .into_iter()
            .rev()
            .map(|e| entry(self.portal.id(), e))
            .collect();
        Ok(ExerciseEntryConnection(Page::forward(
            &window,
            entries,
            |e| {
                cursors
                    .get(&e.uuid.to_string())
                    .copied()
                    .unwrap_or_default()
                    .to_string()
            },
        )))
    }
}

/// Toolbox changes: a service user works on their own portal; an admin adds
/// exercises to the organisation's catalogue. Every mutation takes an optional
/// `idempotencyKey` and waits for the read models, as the core ones do.
#[derive(Default)]
pub struct ToolboxMutation;

fn person(
    display_name: String,
    relation: RelationKind,
    closeness: i32,
    support: Vec<SupportKind>,
) -> PersonDetails {
    PersonDetails {
        display_name,
        relation: relation.into(),
        closeness,
        support: support.into_iter().map(Into::into).collect(),
    }
}

#[Object]
impl ToolboxMutation {
    /// Adds a medication: `name` 1-100 characters (unique among medications not
    /// stopped, ignoring case), `dose` 1-100, `schedule` 1-200, `purpose` up to 500,
    /// `prescriber` up to 100. At most 300 per portal. Its `uuid` may be chosen
    /// by the client; otherwise one is generated.
    #[allow(clippy::too_many_arguments)]
    async fn add_medication(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The medication's name, 1-100 characters, unique among medications not stopped (ignoring case)."
        )]
        name: String,
        #[graphql(desc = "The dose, as free text of 1-100 characters.")] dose: String,
        #[graphql(desc = "When it is taken, as free text of 1-200 characters.")] schedule: String,
        #[graphql(desc = "What it is for, up to 500 characters; empty when omitted.")]
        purpose: Option<String>,
        #[graphql(desc = "Who prescribed it, up to 100 characters; empty when omitted.")]
        prescriber: Option<String>,
        #[graphql(
            desc = "The new medication's uuid, if the client chooses it; generated otherwise."
        )]
        uuid: Option<Uuid>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MedicationPayload> {
        let command = PortalCommand::AddMedication {
            medication_id: uuid.unwrap_or_else(Uuid::new_v4),
            name,
            dose,
            schedule,
            purpose: purpose.unwrap_or_default(),
            prescriber: prescriber.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Changes the dose (1-100 characters) or schedule (1-200), or both, of a
    /// medication that is not stopped. An omitted value stays as it is; a change
    /// that changes nothing is refused.
    async fn change_medication(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The medication: its global id, or its uuid.")] medication_id: ID,
        #[graphql(desc = "The new dose, 1-100 characters; unchanged when omitted.")] dose: Option<
            String,
        >,
        #[graphql(desc = "The new schedule, 1-200 characters; unchanged when omitted.")]
        schedule: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MedicationPayload> {
        let command = PortalCommand::ChangeMedication {
            medication_id: own(ctx, ids::medication(&medication_id, None)?)?,
            dose,
            schedule,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Pauses an active medication; `reason` up to 2000 characters.
    async fn pause_medication(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The medication: its global id, or its uuid.")] medication_id: ID,
        #[graphql(desc = "Why it is paused, up to 2000 characters; empty when omitted.")]
        reason: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MedicationPayload> {
        let command = PortalCommand::PauseMedication {
            medication_id: own(ctx, ids::medication(&medication_id, None)?)?,
            reason: reason.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Resumes a paused medication.
    async fn resume_medication(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The medication: its global id, or its uuid.")] medication_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MedicationPayload> {
        let command = PortalCommand::ResumeMedication {
            medication_id: own(ctx, ids::medication(&medication_id, None)?)?,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Stops an active or paused medication for good; `reason` up to 2000 characters.
    async fn stop_medication(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The medication: its global id, or its uuid.")] medication_id: ID,
        #[graphql(desc = "Why it is stopped, up to 2000 characters; empty when omitted.")]
        reason: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MedicationPayload> {
        let command = PortalCommand::StopMedication {
            medication_id: own(ctx, ids::medication(&medication_id, None)?)?,
            reason: reason.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Puts a person on the network map: `displayName` 1-100 characters (unique
    /// on the map, ignoring case), `closeness` 1-5, `support` any kinds (repeats
    /// are ignored). At most 300 people, removed ones included. Their `uuid` may be
    /// chosen by the client; otherwise one is generated.
    #[allow(clippy::too_many_arguments)]
    async fn add_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The person's name as the user wants to see it, 1-100 characters, unique on the map (ignoring case)."
        )]
        display_name: String,
        #[graphql(desc = "How the person is related to the user.")] relation: RelationKind,
        #[graphql(desc = "How close the person is, from 1 (distant) to 5 (very close).")]
        closeness: i32,
        #[graphql(
            default,
            desc = "The kinds of support the person gives; repeats are ignored."
        )]
        support: Vec<SupportKind>,
        #[graphql(desc = "The new person's uuid, if the client chooses it; generated otherwise.")]
        uuid: Option<Uuid>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<NetworkPersonPayload> {
        let command = PortalCommand::AddPerson {
            person_id: uuid.unwrap_or_else(Uuid::new_v4),
            details: person(display_name, relation, closeness, support),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Replaces what the map says about a person still on it (same limits as
    /// `addPerson`); a change that changes nothing is refused.
    #[allow(clippy::too_many_arguments)]
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person on the network map: their global id, or their uuid.")]
        person_id: ID,
        #[graphql(
            desc = "The person's name as the user wants to see it, 1-100 characters, unique on the map (ignoring case)."
        )]
        display_name: String,
        #[graphql(desc = "How the person is related to the user.")] relation: RelationKind,
        #[graphql(desc = "How close the person is, from 1 (distant) to 5 (very close).")]
        closeness: i32,
        #[graphql(
            default,
            desc = "The kinds of support the person gives, replacing the old ones; repeats are ignored."
        )]
        support: Vec<SupportKind>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<NetworkPersonPayload> {
        let command = PortalCommand::UpdatePerson {
            person_id: own(ctx, ids::network_person(&person_id, None)?)?,
            details: person(display_name, relation, closeness, support),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Takes a person off the network map; `reason` up to 2000 characters. They
    /// stay in the history and in earlier `asOf` reads.
    async fn remove_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person on the network map: their global id, or their uuid.")]
        person_id: ID,
        #[graphql(
            desc = "Why they are taken off the map, up to 2000 characters; empty when omitted."
        )]
        reason: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<NetworkPersonPayload> {
        let command = PortalCommand::RemovePerson {
            person_id: own(ctx, ids::network_person(&person_id, None)?)?,
            reason: reason.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Writes a new revision of the crisis plan (the whole document; see
    /// `CrisisPlanInput` for the limits).
    async fn revise_crisis_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The whole new revision of the plan (see `CrisisPlanInput` for the limits)."
        )]
        plan: CrisisPlanInput,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CrisisPlanPayload> {
        let plan = domain::portal::CrisisPlan {
            warning_signs: plan.warning_signs,
            what_helps: plan.what_helps,
            what_does_not_help: plan.what_does_not_help,
            contacts: plan
                .contacts
                .into_iter()
                .map(|c| domain::portal::CrisisContact {
                    name: c.name,
                    phone: c.phone,
                    when_to_call: c.when_to_call.unwrap_or_default(),
                })
                .collect(),
            own_words: plan.own_words,
        };
        let command = PortalCommand::ReviseCrisisPlan { plan, at: now(ctx) };
        run(ctx, idempotency_key, command).await
    }

    /// Starts an exercise of the organisation's catalogue, by its key. Its `uuid`
    /// may be chosen by the client; otherwise one is generated.
    async fn start_exercise(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key of an exercise in the organisation's catalogue.")]
        exercise: String,
        #[graphql(
            desc = "The new log entry's uuid, if the client chooses it; generated otherwise."
        )]
        uuid: Option<Uuid>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ExerciseEntryPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let catalogue_title = if caller.may(domain::access::Duty::KeepPortal) {
            svc.catalogue(&caller.organisation)
                .await?
                .exercises
                .get(&exercise)
                .map(|e| e.title.clone())
        } else {
            None
        };
        let command = PortalCommand::StartExercise {
            entry_id: uuid.unwrap_or_else(Uuid::new_v4),
            exercise,
            catalogue_title,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Completes a started exercise: `reflection` up to 2000 characters, `rating` 1-5.
    async fn complete_exercise(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The started exercise's log entry: its global id, or its uuid.")]
        entry_id: ID,
        #[graphql(desc = "The user's reflection, up to 2000 characters; empty when omitted.")]
        reflection: Option<String>,
        #[graphql(desc = "A self-rating from 1 to 5, if given.")] rating: Option<i32>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ExerciseEntryPayload> {
        let command = PortalCommand::CompleteExercise {
            entry_id: own(ctx, ids::exercise_entry(&entry_id)?)?,
            reflection: reflection.unwrap_or_default(),
            rating,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Adds an exercise to the caller's organisation's catalogue (admins only):
    /// `key` 1-40 characters of a-z, 0-9 and _ starting with a letter, `title`
    /// 1-100 characters, both unique in the catalogue (titles ignoring case);
    /// `description` up to 2000. At most 200 added exercises.
    async fn add_exercise(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The exercise's key: 1-40 characters of a-z, 0-9 and _, starting with a letter, unique in the catalogue."
        )]
        key: String,
        #[graphql(
            desc = "The exercise's title, 1-100 characters, unique in the catalogue (ignoring case)."
        )]
        title: String,
        #[graphql(desc = "What the exercise is about, up to 2000 characters; empty when omitted.")]
        description: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ExercisePayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(domain::access::Duty::ManageCatalogue) {
            return Err(ApiError::Forbidden(
                "only an admin can change the organisation's exercise catalogue".into(),
            )
            .into());
        }
        let command = CatalogueCommand::AddExercise {
            key,
            title,
            description: description.unwrap_or_default(),
            at: now(ctx),
        };
        Ok(svc
            .run_command::<domain::catalogue::Catalogue>(
                &caller,
                &request(ctx).request_id,
                crate::context::idempotency(ctx, idempotency_key),
                &caller.organisation,
                command,
            )
            .await?
            .into())
    }
}

/// What adding an exercise to the catalogue returns.
pub struct ExercisePayload(pub CommandOutcome);

impl From<CommandOutcome> for ExercisePayload {
    fn from(outcome: CommandOutcome) -> Self {
        ExercisePayload(outcome)
    }
}

/// What adding an exercise to the catalogue returns.
#[Object]
impl ExercisePayload {
    /// The exercise added.
    async fn exercise(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Exercise>> {
        let Some(crate::service::Target::Exercise(key)) = &self.0.target else {
            return Ok(None);
        };
        catalogue_exercise(ctx, &key[..]).await
    }

    /// The catalogue's version (its event sequence number) after the command.
    async fn version(&self) -> BigInt {
        BigInt(self.0.version)
    }

    /// Global position of the command's event in the event stream.
    async fn position(&self) -> BigInt {
        BigInt(self.0.position)
    }

    /// True when this is the stored result of an earlier request with the same idempotency key.
    async fn replayed(&self) -> bool {
        self.0.replayed
    }

    /// True when the read models show this change; false only if the bounded wait for them ran out.
    /// Selecting it makes the mutation wait for them (`projections.read_your_writes_timeout`).
    async fn caught_up(&self, ctx: &Context<'_>) -> bool {
        crate::context::service(ctx)
            .marks
            .settle(self.0.checkpoint)
            .await
    }

    /// Names this write for later reads: sent back as the `Portal-Consistency` header,
    /// it makes a request's reads wait until they show this change, from any instance.
    async fn consistency_token(&self) -> String {
        crate::consistency::token(self.0.checkpoint)
    }
}
