//! The portal core over GraphQL: the control panel, goals and activities,
//! status ratings, their histories, and the core mutations.

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::portal::view::PortalView;
use domain::portal::{PortalCommand, Section};
use projections::read::history::{EntryRow, Newest};
use projections::read::panel::{self, ActivityRow, GoalRow};
use projections::read::portal::Portal;
use uuid::Uuid;

use crate::access::authorize_read;
use crate::auth::Role;
use crate::context::{caller, now, own, run, service};
use crate::error::ApiError;
use crate::history::{
    history_rows, history_window, item_history, HistoryEntryConnection, Span, HISTORY_PAGE_DEFAULT,
};
use crate::ids::{self, BigInt, NodeId};
use crate::paging::{connection, Page, Window};
use crate::payload::payload;
use crate::toolbox::{self, RecentChange, SectionSummary};

/// Who is asking.
#[derive(SimpleObject)]
pub struct Me {
    /// The caller's person id: the subject of their token (for a service
    /// user, also the id of their portal).
    pub person_id: ID,
    /// The caller's role.
    pub role: Role,
    /// The caller's organisation.
    pub organisation: String,
}

/// Status → process → goals at a glance, per life domain, with counts and
/// recency for every section of the portal.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ControlPanel {
    /// The control panel's global id.
    pub id: ID,
    /// The portal: its owner's person id.
    pub portal_id: ID,
    /// Organisation the portal belongs to.
    pub organisation: String,
    /// When the portal was opened.
    pub opened_at: DateTime<Utc>,
    /// When anything in the portal last changed.
    pub updated_at: DateTime<Utc>,
    /// The portal's version: the sequence number of its latest event.
    pub version: BigInt,
    /// Every life domain, default ones first, then the user's own in the order added.
    pub domains: Vec<DomainPanel>,
    /// The portal, found within the caller's organisation.
    #[graphql(skip)]
    pub portal: Portal,
    /// The time this panel was asked for, if not now.
    #[graphql(skip)]
    pub as_of: Option<DateTime<Utc>>,
    /// The section summaries, when already computed.
    #[graphql(skip)]
    pub summaries: Option<Vec<SectionSummary>>,
    /// False when someone other than the owner reads the panel: they see the
    /// summary and recent changes of the core section only.
    #[graphql(skip)]
    pub owner: bool,
}

#[ComplexObject]
impl ControlPanel {
    /// When the portal's owner was erased (their personal data destroyed;
    /// every section then reads as empty); null while they are not.
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.portal.erased_at()
    }

    /// Counts and the time of the latest change for each section, in the
    /// order core, medications, network, crisis plan, exercises.
    /// Someone other than the owner sees the core section's only.
    async fn sections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SectionSummary>> {
        let mut summaries = match &self.summaries {
            Some(summaries) => summaries.clone(),
            None => toolbox::summaries(ctx, &self.portal, self.as_of).await?,
        };
        if !self.owner {
            summaries.retain(|s| s.section == toolbox::PortalSection::Core);
        }
        Ok(summaries)
    }

    /// The changes across all sections, newest first, a page at a time:
    /// `first` 1-50 (default 10) after the cursor `after`. Someone other than
    /// the owner sees changes to the core section only, numbered within that
    /// section (its changes so far, counting down).
    #[graphql(
        complexity = "crate::paging::cost(first, None, toolbox::RECENT_DEFAULT, child_complexity)"
    )]
    async fn recent_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many recent changes from the newest (1-50, default 10).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<RecentChangeConnection> {
        let window = Window::forward(
            "recent",
            first,
            after.as_deref(),
            toolbox::RECENT_DEFAULT,
            toolbox::RECENT_MAX,
        )?;
        let after = window.after_number()?;
        let (portal, as_of, fetch) = (&self.portal, self.as_of, window.fetch());
        if self.owner {
            let from = after.map_or(Newest::First, Newest::Before);
            let changes = toolbox::recent_changes(ctx, portal, fetch, as_of, None, from).await?;
            return Ok(RecentChangeConnection(Page::forward(
                &window,
                changes,
                |c| c.sequence.to_string(),
            )));
        }
        // The newest core changes, in order: number them down from the core
        // section's count, so no gap tells of other sections; the cursor is
        // that number too.
        let count = match &self.summaries {
            Some(summaries) => summaries.clone(),
            None => toolbox::summaries(ctx, portal, as_of).await?,
        }
        .iter()
        .find(|s| s.section == toolbox::PortalSection::Core)
        .map_or(0, |s| s.changes);
        // The change numbered `shown` is at offset `count - shown`: start after it.
        let skip = after.map_or(0, |shown| (count - shown + 1).max(0));
        let core = Some(Section::Core);
        let mut changes =
            toolbox::recent_changes(ctx, portal, fetch, as_of, core, Newest::Skip(skip)).await?;
        for (i, change) in changes.iter_mut().enumerate() {
            change.sequence = BigInt(count - skip - i as i64);
        }
        Ok(RecentChangeConnection(Page::forward(
            &window,
            changes,
            |c| c.sequence.to_string(),
        )))
    }
}

connection!(
    /// A page of a portal's recent changes, newest first.
    RecentChangeConnection,
    RecentChangeEdge,
    RecentChange
);

/// One life domain on the control panel.
#[derive(SimpleObject)]
pub struct DomainPanel {
    /// Stable key (`housing`, or the user's own key).
    pub key: String,
    /// Display name.
    pub name: String,
    /// True for a domain the user added.
    pub custom: bool,
    /// The latest status rating, if the domain was ever rated.
    pub latest_status: Option<Status>,
    /// How many times the domain has been rated.
    pub ratings: i64,
    /// Goals in this domain that are still active, oldest first, with their activities.
    pub active_goals: Vec<Goal>,
}

/// A status rating of a life domain.
#[derive(SimpleObject, Clone)]
pub struct Status {
    /// Self-rating from 1 (worst) to 10 (best).
    pub score: i32,
    /// The user's note (up to 2000 characters; may be empty).
    pub note: String,
    /// When the rating was made.
    pub rated_at: DateTime<Utc>,
}

/// Where a goal stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::GoalState")]
pub enum GoalState {
    /// Being worked on.
    Active,
    /// Reached.
    Achieved,
    /// Given up.
    Abandoned,
}

/// Where an activity stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::portal::ActivityState")]
pub enum ActivityState {
    /// Still to do.
    Planned,
    /// Done.
    Done,
    /// Dropped.
    Dropped,
}

/// A goal with its activities and progress.
#[derive(SimpleObject)]
pub struct Goal {
    /// The goal's global id.
    pub id: ID,
    /// The goal's own uuid (as in exports and events), chosen by the client or generated.
    pub uuid: Uuid,
    /// Key of the life domain the goal belongs to.
    pub domain: String,
    /// Title (1-200 characters).
    pub title: String,
    /// Description (up to 2000 characters; may be empty).
    pub description: String,
    /// Active, achieved or abandoned.
    pub state: GoalState,
    /// When the goal was set.
    pub set_at: DateTime<Utc>,
    /// When the goal or one of its activities last changed.
    pub updated_at: DateTime<Utc>,
    /// When the goal was achieved or abandoned.
    pub closed_at: Option<DateTime<Utc>>,
    /// Counts of its activities by state.
    pub progress: Progress,
    /// Its activities, in the order planned.
    pub activities: Vec<Activity>,
}

/// How far a goal's activities have come.
#[derive(SimpleObject)]
pub struct Progress {
    /// Activities still planned.
    pub planned: i64,
    /// Activities done.
    pub done: i64,
    /// Activities dropped.
    pub dropped: i64,
    /// Done as a whole percentage of planned plus done (dropped ones do not count); 0 with none.
    pub percent_done: i32,
}

/// A concrete step under a goal.
#[derive(SimpleObject)]
pub struct Activity {
    /// The activity's global id.
    pub id: ID,
    /// The activity's own uuid (as in exports and events).
    pub uuid: Uuid,
    /// Title (1-200 characters).
    pub title: String,
    /// Planned, done or dropped.
    pub state: ActivityState,
    /// When it was planned.
    pub planned_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One status rating in the history of a life domain.
#[derive(SimpleObject)]
pub struct StatusEntry {
    /// The portal's event sequence number; for someone other than the owner,
    /// the rating's place in this history (1, 2, ...).
    pub sequence: BigInt,
    /// Self-rating from 1 to 10.
    pub score: i32,
    /// The note given with it.
    pub note: String,
    /// When the rating was made.
    pub at: DateTime<Utc>,
}

/// Reads of the portal core: only a service user's own portal, within their organisation.
#[derive(Default)]
pub struct CoreQuery;

/// A stored goal state; anything else is a corrupt store, not "active".
fn goal_state(s: &str) -> Result<GoalState, ApiError> {
    match s {
        "active" => Ok(GoalState::Active),
        "achieved" => Ok(GoalState::Achieved),
        "abandoned" => Ok(GoalState::Abandoned),
        other => Err(ApiError::internal(format!("stored goal state `{other}`"))),
    }
}

/// A stored activity state; anything else is a corrupt store, not "planned".
fn activity_state(s: &str) -> Result<ActivityState, ApiError> {
    match s {
        "planned" => Ok(ActivityState::Planned),
        "done" => Ok(ActivityState::Done),
        "dropped" => Ok(ActivityState::Dropped),
        other => Err(ApiError::internal(format!(
            "stored activity state `{other}`"
        ))),
    }
}

fn progress(planned: i64, done: i64, dropped: i64) -> Progress {
    Progress {
        planned,
        done,
        dropped,
        percent_done: if planned + done == 0 {
            0
        } else {
            (done * 100 / (planned + done)) as i32
        },
    }
}

impl Activity {
    fn new(portal: Uuid, goal: Uuid, a: ActivityRow) -> Self {
        Activity {
            id: NodeId::Activity {
                portal,
                goal,
                activity: a.id,
            }
            .id(),
            uuid: a.id,
            title: a.title,
            state: a.state.into(),
            planned_at: a.planned_at,
            updated_at: a.updated_at,
        }
    }
}

impl Goal {
    pub(crate) fn new(portal: Uuid, g: GoalRow) -> Self {
        let goal = g.id;
        Goal {
            id: NodeId::Goal { portal, goal }.id(),
            uuid: goal,
            domain: g.domain,
            title: g.title,
            description: g.description,
            state: g.state.into(),
            set_at: g.set_at,
            updated_at: g.updated_at,
            closed_at: g.closed_at,
            progress: progress(g.planned, g.done, g.dropped),
            activities: g
                .activities
                .into_iter()
                .map(|a| Activity::new(portal, goal, a))
                .collect(),
        }
    }
}

/// Reads: a service user's own portal, within their organisation.
#[Object]
impl CoreQuery {
    /// Who the bearer token says is asking.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let caller = caller(ctx)?;
        Ok(Me {
            person_id: ids::person_id(caller.subject),
            role: caller.role,
            organisation: caller.organisation,
        })
    }

    /// The control panel of a portal: per life domain, the latest status and the
    /// active goals with their activities and progress, and a summary of every
    /// section. `portalId` defaults to the caller's own portal. With `asOf`, the
    /// panel as it stood at that time, computed from the events.
    pub(crate) async fn control_panel(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "The time to show the panel as it stood at; now when omitted.")]
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ControlPanel> {
        let portal_id = ids::portal(portal_id.as_ref())?;
        if let Some(as_of) = as_of {
            return Ok(panel_as_of(ctx, portal_id, as_of).await?);
        }
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let portal_id = portal_id.unwrap_or(caller.subject);
        let reader = authorize_read(ctx, portal_id, Section::Core).await?;
        let portal = reader.portal;
        let now = panel::now(&svc.engine, &svc.db, &portal).await?;
        let (domain_rows, goal_rows) = (now.domains.clone(), now.goals.clone());
        let mut goals: Vec<Goal> = goal_rows
            .into_iter()
            .map(|g| Goal::new(portal_id, g))
            .collect();
        let mut domains = Vec::with_capacity(domain_rows.len());
        for row in domain_rows {
            let (mine, rest): (Vec<Goal>, Vec<Goal>) =
                goals.into_iter().partition(|g| g.domain == row.key);
            goals = rest;
            domains.push(DomainPanel {
                name: row.name,
                custom: row.custom,
                latest_status: row.latest.map(|status| Status {
                    score: status.score as i32,
                    note: status.note,
                    rated_at: status.rated_at,
                }),
                ratings: row.ratings,
                active_goals: mine,
                key: row.key,
            });
        }
        // Someone other than the owner learns nothing of the other sections,
        // not even that they changed: version and time are the core section's.
        let (mut updated_at, mut version) = (portal.updated_at(), portal.version());
        if !reader.owner {
            let summaries = toolbox::summaries(ctx, &portal, None).await?;
            if let Some(core) = summaries
                .iter()
                .find(|s| s.section == toolbox::PortalSection::Core)
            {
                version = core.changes;
                updated_at = core.last_changed_at.unwrap_or(updated_at);
            }
        }
        Ok(ControlPanel {
            id: NodeId::ControlPanel { portal: portal_id }.id(),
            portal_id: ids::person_id(portal_id),
            organisation: portal.organisation().to_string(),
            opened_at: portal.opened_at(),
            updated_at,
            version: BigInt(version),
            domains,
            portal,
            as_of: None,
            summaries: None,
            owner: reader.owner,
        })
    }

    /// One goal in any state, with all its activities.
    pub(crate) async fn goal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal: its global id, or its uuid.")] goal_id: ID,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; when omitted, the portal of a global `goalId`, else the caller's own."
        )]
        portal_id: Option<ID>,
    ) -> async_graphql::Result<Goal> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let (portal_id, goal_id) = ids::goal(&goal_id, portal_id.as_ref())?;
        let portal_id = portal_id.unwrap_or(caller.subject);
        let portal = authorize_read(ctx, portal_id, Section::Core).await?.portal;
        let goal = panel::goal(&svc.engine, &svc.db, &portal, goal_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("goal {goal_id} does not exist")))?;
        Ok(Goal::new(portal_id, goal))
    }

    /// The portal's goals with their activities, oldest first: the active
    /// ones, and with `includeClosed` the achieved and abandoned ones too
    /// (at most 1,000 goals are ever set in a portal). A read of the core
    /// section, recorded as `controlPanel`'s is.
    #[graphql(complexity = "50 * child_complexity")]
    pub(crate) async fn goals(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(
            desc = "Whether achieved and abandoned goals are listed too (default: active ones only).",
            default = false
        )]
        include_closed: bool,
    ) -> async_graphql::Result<Vec<Goal>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let portal_id = ids::portal(portal_id.as_ref())?.unwrap_or(caller.subject);
        let portal = authorize_read(ctx, portal_id, Section::Core).await?.portal;
        let rows = panel::goals(&svc.engine, &svc.db, &portal, include_closed).await?;
        Ok(rows.into_iter().map(|g| Goal::new(portal_id, g)).collect())
    }

    /// Every change to a goal and its activities, oldest first, a page at a
    /// time: `first` 1-500 (default 100) after the cursor `after`.
    #[graphql(
        complexity = "crate::paging::cost(first, None, HISTORY_PAGE_DEFAULT, child_complexity)"
    )]
    async fn goal_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal: its global id, or its uuid.")] goal_id: ID,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; when omitted, the portal of a global `goalId`, else the caller's own."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "How many history entries from the oldest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<HistoryEntryConnection> {
        let window = history_window(first, after.as_deref())?;
        let (portal_id, goal_id) = ids::goal(&goal_id, portal_id.as_ref())?;
        Ok(item_history(ctx, portal_id, "goal", goal_id, "goal", &window).await?)
    }

    /// Every status rating of a life domain, oldest first, a page at a time:
    /// `first` 1-500 (default 100) after the cursor `after`.
    #[graphql(
        complexity = "crate::paging::cost(first, None, HISTORY_PAGE_DEFAULT, child_complexity)"
    )]
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The life domain's key.")] domain: String,
        #[graphql(
            desc = "The portal: its owner's person id or the control panel's global id; the caller's own portal when omitted."
        )]
        portal_id: Option<ID>,
        #[graphql(desc = "How many status ratings from the oldest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<StatusEntryConnection> {
        let window = history_window(first, after.as_deref())?;
        let span = Span::of(&window)?;
        let portal_id = ids::portal(portal_id.as_ref())?;
        let (rows, owner) = history_rows(ctx, portal_id, "status", &domain, span).await?;
        let entries = rows
            .into_iter()
            .enumerate()
            .map(|(i, row): (usize, EntryRow)| {
                let event: domain::portal::PortalEvent = serde_json::from_str(&row.data)?;
                match event {
                    domain::portal::PortalEvent::StatusRated {
                        score, note, at, ..
                    } => Ok(StatusEntry {
                        sequence: BigInt(span.shown(&row, owner, i)),
                        score,
                        note,
                        at,
                    }),
                    _ => Err(ApiError::internal("non-status event in status history")),
                }
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(StatusEntryConnection(Page::forward(
            &window,
            entries,
            |e| e.sequence.to_string(),
        )))
    }
}

connection!(
    /// A page of a life domain's status ratings, oldest first.
    StatusEntryConnection,
    StatusEntryEdge,
    StatusEntry
);

/// The control panel as it stood at `as_of`: the core section's events up to
/// then, folded.
async fn panel_as_of(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<ControlPanel, ApiError> {
    let (portal, owner, view): (Portal, bool, PortalView) =
        toolbox::panel_view(ctx, portal_id, as_of).await?;
    let Some(opened_at) = view.opened_at else {
        return Err(ApiError::NotFound(
            "this portal was not open at that time".into(),
        ));
    };
    let mut summaries = toolbox::summaries(ctx, &portal, Some(as_of)).await?;
    if !owner {
        summaries.retain(|s| s.section == toolbox::PortalSection::Core);
    }
    let updated_at = summaries
        .iter()
        .filter_map(|s| s.last_changed_at)
        .max()
        .unwrap_or(opened_at);
    let version = BigInt(summaries.iter().map(|s| s.changes).sum());
    let mut goals: Vec<Goal> = view
        .goals
        .into_iter()
        .filter(|g| g.state == "active")
        .map(|g| -> Result<Goal, ApiError> {
            let count = |s: &str| g.activities.iter().filter(|a| a.state == s).count() as i64;
            let (planned, done, dropped) = (count("planned"), count("done"), count("dropped"));
            Ok(Goal {
                id: NodeId::Goal {
                    portal: portal.id(),
                    goal: g.id,
                }
                .id(),
                uuid: g.id,
                domain: g.domain,
                title: g.title,
                description: g.description,
                state: goal_state(g.state)?,
                set_at: g.set_at,
                updated_at: g.updated_at,
                closed_at: g.closed_at,
                progress: progress(planned, done, dropped),
                activities: g
                    .activities
                    .into_iter()
                    .map(|a| {
                        Ok(Activity {
                            id: NodeId::Activity {
                                portal: portal.id(),
                                goal: g.id,
                                activity: a.id,
                            }
                            .id(),
                            uuid: a.id,
                            title: a.title,
                            state: activity_state(a.state)?,
                            planned_at: a.planned_at,
                            updated_at: a.updated_at,
                        })
                    })
                    .collect::<Result<_, ApiError>>()?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    // The order the read-model query gives now: by time set, then id.
    goals.sort_by_key(|g| (g.set_at, g.uuid));
    for goal in &mut goals {
        goal.activities.sort_by_key(|a| (a.planned_at, a.uuid));
    }
    let domains = view
        .domains
        .into_iter()
        .map(|d| {
            let (mine, rest): (Vec<Goal>, Vec<Goal>) = std::mem::take(&mut goals)
                .into_iter()
                .partition(|g| g.domain == d.key);
            goals = rest;
            DomainPanel {
                latest_status: d.latest.map(|(score, note, rated_at)| Status {
                    score,
                    note,
                    rated_at,
                }),
                ratings: d.ratings,
                active_goals: mine,
                key: d.key,
                name: d.name,
                custom: d.custom,
            }
        })
        .collect();
    Ok(ControlPanel {
        id: NodeId::ControlPanel {
            portal: portal.id(),
        }
        .id(),
        portal_id: ids::person_id(portal.id()),
        portal,
        organisation: view.organisation,
        opened_at,
        updated_at,
        version,
        domains,
        as_of: Some(as_of),
        summaries: Some(summaries),
        owner,
    })
}

/// The control panel a global id names, through `controlPanel`.
pub(crate) async fn panel_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ControlPanel>> {
    let NodeId::ControlPanel { portal } = id else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    CoreQuery.control_panel(ctx, portal, None).await.map(Some)
}

/// The goal a global id names, through `goal`.
pub(crate) async fn goal_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<Goal>> {
    let NodeId::Goal { portal, goal } = id else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    CoreQuery
        .goal(ctx, ID(goal.to_string()), portal)
        .await
        .map(Some)
}

/// The activity a global id names, through its goal.
pub(crate) async fn activity_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<Activity>> {
    let NodeId::Activity {
        portal,
        goal,
        activity,
    } = id
    else {
        return Ok(None);
    };
    let portal = Some(ids::person_id(portal));
    let goal = CoreQuery.goal(ctx, ID(goal.to_string()), portal).await?;
    Ok(goal.activities.into_iter().find(|a| a.uuid == activity))
}

payload!(
    /// What a change to the portal as a whole (opening it, a life domain, a
    /// status rating) returns.
    PortalPayload { control_panel: ControlPanel = panel_node, "The portal's control panel after the change." }
);
payload!(
    /// What a change to a goal returns.
    GoalPayload { goal: Goal = goal_node, "The goal after the change." }
);
payload!(
    /// What a change to an activity returns.
    ActivityPayload { activity: Activity = activity_node, "The activity after the change." }
);

/// Changes to the portal core: a service user works on their own portal only.
#[derive(Default)]
pub struct CoreMutation;

/// Changes: a service user works on their own portal only. Every mutation waits until
/// the read models show its change (see `caughtUp`).
#[Object]
impl CoreMutation {
    /// Opens the caller's portal in their organisation, with the default life domains.
    /// Every mutation takes an optional `idempotencyKey` (1-128 characters): sending the
    /// same key again appends nothing and returns the first result.
    async fn open_portal(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<PortalPayload> {
        let caller = caller(ctx)?;
        let command = PortalCommand::OpenPortal {
            owner: caller.subject,
            organisation: caller.organisation,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Adds a life domain of the user's own. `key`: 1-40 characters of a-z, 0-9 and _,
    /// starting with a letter; `name`: 1-60 characters. At most 30 custom domains.
    async fn add_life_domain(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The new domain's key: 1-40 characters of a-z, 0-9 and _, starting with a letter."
        )]
        key: String,
        #[graphql(desc = "The domain's display name, 1-60 characters.")] name: String,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<PortalPayload> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::AddLifeDomain {
                key,
                name,
                at: now(ctx),
            },
        )
        .await
    }

    /// Rates the status of a life domain: `score` 1-10, `note` up to 2000 characters.
    async fn rate_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The life domain's key.")] domain: String,
        #[graphql(desc = "The self-rating, from 1 (worst) to 10 (best).")] score: i32,
        #[graphql(desc = "The user's note, up to 2000 characters; empty when omitted.")]
        note: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<PortalPayload> {
        let command = PortalCommand::RateStatus {
            domain,
            score,
            note: note.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Sets a goal in a life domain: `title` 1-200 characters, `description` up to 2000.
    /// Its `uuid` may be chosen by the client; otherwise one is generated.
    async fn set_goal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key of the life domain the goal belongs to.")] domain: String,
        #[graphql(desc = "The goal's title, 1-200 characters.")] title: String,
        #[graphql(desc = "The goal's description, up to 2000 characters; empty when omitted.")]
        description: Option<String>,
        #[graphql(desc = "The new goal's uuid, if the client chooses it; generated otherwise.")]
        uuid: Option<Uuid>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<GoalPayload> {
        let command = PortalCommand::SetGoal {
            goal_id: uuid.unwrap_or_else(Uuid::new_v4),
            domain,
            title,
            description: description.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Rewords an active goal: `title` 1-200 characters, `description` up to 2000.
    async fn revise_goal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal: its global id, or its uuid.")] goal_id: ID,
        #[graphql(desc = "The new title, 1-200 characters.")] title: String,
        #[graphql(desc = "The new description, up to 2000 characters; empty when omitted.")]
        description: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<GoalPayload> {
        let command = PortalCommand::ReviseGoal {
            goal_id: own(ctx, ids::goal(&goal_id, None)?)?,
            title,
            description: description.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Marks an active goal as achieved.
    async fn achieve_goal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal: its global id, or its uuid.")] goal_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<GoalPayload> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::AchieveGoal {
                goal_id: own(ctx, ids::goal(&goal_id, None)?)?,
                at: now(ctx),
            },
        )
        .await
    }

    /// Abandons an active goal; `reason` up to 2000 characters.
    async fn abandon_goal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal: its global id, or its uuid.")] goal_id: ID,
        #[graphql(desc = "Why the goal is given up, up to 2000 characters; empty when omitted.")]
        reason: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<GoalPayload> {
        let command = PortalCommand::AbandonGoal {
            goal_id: own(ctx, ids::goal(&goal_id, None)?)?,
            reason: reason.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Plans an activity under an active goal: `title` 1-200 characters, at most 200 per goal.
    /// Its `uuid` may be chosen by the client; otherwise one is generated.
    async fn plan_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The goal to plan it under: its global id, or its uuid.")] goal_id: ID,
        #[graphql(desc = "The activity's title, 1-200 characters.")] title: String,
        #[graphql(
            desc = "The new activity's uuid, if the client chooses it; generated otherwise."
        )]
        uuid: Option<Uuid>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ActivityPayload> {
        let command = PortalCommand::PlanActivity {
            goal_id: own(ctx, ids::goal(&goal_id, None)?)?,
            activity_id: uuid.unwrap_or_else(Uuid::new_v4),
            title,
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Marks a planned activity as done.
    async fn complete_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity: its global id, or its uuid.")] activity_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ActivityPayload> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::CompleteActivity {
                activity_id: own(ctx, ids::activity(&activity_id, None)?)?,
                at: now(ctx),
            },
        )
        .await
    }

    /// Drops a planned activity; `reason` up to 2000 characters.
    async fn drop_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity: its global id, or its uuid.")] activity_id: ID,
        #[graphql(
            desc = "Why the activity is dropped, up to 2000 characters; empty when omitted."
        )]
        reason: Option<String>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ActivityPayload> {
        let command = PortalCommand::DropActivity {
            activity_id: own(ctx, ids::activity(&activity_id, None)?)?,
            reason: reason.unwrap_or_default(),
            at: now(ctx),
        };
        run(ctx, idempotency_key, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_states_that_do_not_parse_are_errors_not_defaults() {
        assert!(matches!(goal_state("achieved"), Ok(GoalState::Achieved)));
        assert!(matches!(goal_state("active"), Ok(GoalState::Active)));
        assert!(goal_state("Achieved").is_err());
        assert!(goal_state("").is_err());
        assert!(matches!(
            activity_state("dropped"),
            Ok(ActivityState::Dropped)
        ));
        assert!(activity_state("cancelled").is_err());
    }
}
