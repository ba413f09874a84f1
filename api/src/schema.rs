//! The GraphQL schema: the portal core's queries and mutations.
//!
//! Every resolver first establishes who is asking ([`caller`]) and whether they
//! may act on the portal named; refusals carry a stable `code` extension.

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, Json, MergedObject, Object, Schema, SimpleObject,
};
use chrono::{DateTime, Utc};
use domain::portal::view::PortalView;
use domain::portal::{PortalCommand, Section};
use projections::{control_panel, history};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::access::authorize_read;
use crate::agreements::{AgreementMutation, AgreementQuery};
use crate::audit::AuditQuery;
use crate::auth::{AuthError, Caller, Role};
use crate::care::{CareMutation, CareQuery};
use crate::error::ApiError;
use crate::messaging::{MessagingMutation, MessagingQuery};
use crate::research::{MeasuresQuery, ResearchMutation, ResearchQuery};
use crate::service::{CommandOutcome, Service};
use crate::subscription::LiveSubscription;
use crate::toolbox::{self, RecentChange, SectionSummary, ToolboxMutation, ToolboxQuery};

/// The schema type served at `/graphql`.
pub type PortalSchema = Schema<Query, Mutation, LiveSubscription>;

/// Per-request facts the HTTP layer establishes before GraphQL runs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The verified caller, or why there is none.
    pub caller: Result<Caller, AuthError>,
    /// Id of this request, recorded in every event it causes.
    pub request_id: String,
    /// The address the request came from, recorded in the access trail.
    pub client_address: Option<String>,
    /// Access-trail records this request's answer waits for.
    pub receipts: Arc<Receipts>,
    /// True on a WebSocket, where nothing waits for receipts: portal and
    /// trail reads are refused there (they go over HTTP).
    pub over_websocket: bool,
}

/// The access-trail records a request has queued. The HTTP layer sends the
/// answer only once every one is committed, and an error instead if any
/// failed: the trail is written before the data leaves (fail closed), while
/// the answer is computed at the same time.
#[derive(Debug, Default)]
pub struct Receipts {
    pending: std::sync::Mutex<Vec<crate::trail::Receipt>>,
    /// Set when a receipt could not even be kept: the answer must not leave.
    lost: std::sync::atomic::AtomicBool,
}

impl Receipts {
    /// Adds a record to wait for.
    pub fn push(&self, receipt: crate::trail::Receipt) {
        match self.pending.lock() {
            Ok(mut pending) => pending.push(receipt),
            Err(_) => self.lost.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Waits for every queued record; the first failure, if any.
    pub async fn written(&self) -> Result<(), String> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("an access-trail receipt was lost".into());
        }
        let receipts = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Err("an access-trail receipt was lost".into()),
        };
        for receipt in receipts {
            match receipt.await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err("the access-trail writer stopped".into()),
            }
        }
        Ok(())
    }
}

/// Builds the schema with the service and the input limits from settings.
pub fn build(service: Arc<Service>) -> PortalSchema {
    let settings = &service.settings;
    let builder = Schema::build(Query::default(), Mutation::default(), LiveSubscription)
        // Complexity counts a field's `limit` times what it selects. Depth and
        // size are checked before async-graphql sees the document, by
        // `limits::Limited` (see `limits`).
        .limit_complexity(settings.max_query_complexity)
        .limit_directives(crate::limits::DIRECTIVES_MAX)
        .extension(crate::usage::UsageExtension);
    let builder = if settings.introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder.data(service).finish()
}

/// The schema as served: every document measured against the limits
/// before async-graphql parses it further.
pub fn serving(service: Arc<Service>) -> crate::limits::Limited<PortalSchema> {
    let limits = crate::limits::Limits {
        max_fields: service.settings.max_query_fields as u64,
        max_depth: service.settings.max_query_depth,
    };
    crate::limits::Limited {
        inner: build(service),
        limits,
    }
}

/// The schema in SDL, as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), LiveSubscription)
        .finish()
        .sdl()
}

pub(crate) fn service<'a>(ctx: &Context<'a>) -> &'a Arc<Service> {
    ctx.data_unchecked::<Arc<Service>>()
}

pub(crate) fn request<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// The verified caller, or `UNAUTHENTICATED`.
pub fn caller(ctx: &Context<'_>) -> Result<Caller, ApiError> {
    request(ctx)
        .caller
        .clone()
        .map_err(ApiError::Unauthenticated)
}

fn time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, ApiError> {
    let text: String = row.try_get(column).map_err(ApiError::internal)?;
    parse_time(&text)
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(ApiError::internal)
}

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T, ApiError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(ApiError::internal)
}

/// Who is asking.
#[derive(SimpleObject)]
pub struct Me {
    /// The caller's subject id (for a service user, also their portal id).
    pub subject: Uuid,
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
    /// The portal (its owner's subject id).
    pub portal_id: Uuid,
    /// Organisation the portal belongs to.
    pub organisation: String,
    /// When the portal was opened.
    pub opened_at: DateTime<Utc>,
    /// When anything in the portal last changed.
    pub updated_at: DateTime<Utc>,
    /// The portal's version: the sequence number of its latest event.
    pub version: i64,
    /// Every life domain, default ones first, then the user's own in the order added.
    pub domains: Vec<DomainPanel>,
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
    /// Counts and the time of the latest change for each section, in the
    /// order core, medications, network, crisis plan, exercises.
    /// Someone other than the owner sees the core section's only.
    async fn sections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SectionSummary>> {
        let mut summaries = match &self.summaries {
            Some(summaries) => summaries.clone(),
            None => toolbox::summaries(ctx, self.portal_id, self.as_of).await?,
        };
        if !self.owner {
            summaries.retain(|s| s.section == toolbox::PortalSection::Core);
        }
        Ok(summaries)
    }

    /// The newest changes across all sections, newest first: `limit` 1-50 (default 10).
    /// Someone other than the owner sees changes to the core section only, numbered
    /// within that section (its changes so far, counting down).
    #[graphql(complexity = "crate::limits::rows_cost(limit, child_complexity)")]
    async fn recent_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<RecentChange>> {
        if self.owner {
            return Ok(
                toolbox::recent_changes(ctx, self.portal_id, limit, self.as_of, None).await?,
            );
        }
        let core = Some(Section::Core);
        let mut changes =
            toolbox::recent_changes(ctx, self.portal_id, limit, self.as_of, core).await?;
        // The newest core changes, in order: number them down from the core
        // section's count, so no gap tells of other sections.
        let count = match &self.summaries {
            Some(summaries) => summaries.clone(),
            None => toolbox::summaries(ctx, self.portal_id, self.as_of).await?,
        }
        .iter()
        .find(|s| s.section == toolbox::PortalSection::Core)
        .map_or(0, |s| s.changes);
        for (i, change) in changes.iter_mut().enumerate() {
            change.sequence = count - i as i64;
        }
        Ok(changes)
    }
}

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
    /// Goal id.
    pub id: Uuid,
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
    /// Activity id.
    pub id: Uuid,
    /// Title (1-200 characters).
    pub title: String,
    /// Planned, done or dropped.
    pub state: ActivityState,
    /// When it was planned.
    pub planned_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One recorded change, as the history of a goal or status shows it.
#[derive(SimpleObject)]
pub struct HistoryEntry {
    /// The portal's event sequence number; for someone other than the owner,
    /// the entry's place in this history (1, 2, ...), which is what their
    /// `afterSequence` counts.
    pub sequence: i64,
    /// Global position in the event stream (0 for someone other than the owner).
    pub position: i64,
    /// What happened (`GoalSet`, `ActivityCompleted`, `StatusRated`, ...).
    pub event_type: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who did it.
    pub actor_id: String,
    /// In which role.
    pub actor_role: String,
    /// The request that caused it (empty for someone other than the owner).
    pub request_id: String,
    /// The event itself, as stored.
    pub data: Json<serde_json::Value>,
}

/// One status rating in the history of a life domain.
#[derive(SimpleObject)]
pub struct StatusEntry {
    /// The portal's event sequence number; for someone other than the owner,
    /// the rating's place in this history (1, 2, ...).
    pub sequence: i64,
    /// Self-rating from 1 to 10.
    pub score: i32,
    /// The note given with it.
    pub note: String,
    /// When the rating was made.
    pub at: DateTime<Utc>,
}

/// Every read: the portal core, the toolbox, working together, the trail.
#[derive(MergedObject, Default)]
pub struct Query(
    CoreQuery,
    ToolboxQuery,
    CareQuery,
    AuditQuery,
    AgreementQuery,
    MessagingQuery,
    ResearchQuery,
    MeasuresQuery,
);

/// Every change: the portal core, the toolbox, working together.
#[derive(MergedObject, Default)]
pub struct Mutation(
    CoreMutation,
    ToolboxMutation,
    CareMutation,
    AgreementMutation,
    MessagingMutation,
    ResearchMutation,
);

/// Reads of the portal core: only a service user's own portal, within their organisation.
#[derive(Default)]
pub struct CoreQuery;

fn goal_state(s: &str) -> GoalState {
    match s {
        "achieved" => GoalState::Achieved,
        "abandoned" => GoalState::Abandoned,
        _ => GoalState::Active,
    }
}

fn activity_state(s: &str) -> ActivityState {
    match s {
        "done" => ActivityState::Done,
        "dropped" => ActivityState::Dropped,
        _ => ActivityState::Planned,
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

fn goal_from_row(row: &AnyRow) -> Result<Goal, ApiError> {
    let (planned, done, dropped): (i64, i64, i64) = (
        get(row, "planned")?,
        get(row, "done")?,
        get(row, "dropped")?,
    );
    let closed: Option<String> = get(row, "closed_at")?;
    Ok(Goal {
        id: Uuid::parse_str(&get::<String>(row, "goal_id")?).map_err(ApiError::internal)?,
        domain: get(row, "domain_key")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        state: goal_state(&get::<String>(row, "state")?),
        set_at: time(row, "set_at")?,
        updated_at: time(row, "updated_at")?,
        closed_at: closed.as_deref().map(parse_time).transpose()?,
        progress: progress(planned, done, dropped),
        activities: Vec::new(),
    })
}

fn activity_from_row(row: &AnyRow) -> Result<(String, Activity), ApiError> {
    Ok((
        get(row, "goal_id")?,
        Activity {
            id: Uuid::parse_str(&get::<String>(row, "activity_id")?).map_err(ApiError::internal)?,
            title: get(row, "title")?,
            state: activity_state(&get::<String>(row, "state")?),
            planned_at: time(row, "planned_at")?,
            updated_at: time(row, "updated_at")?,
        },
    ))
}

const GOAL_SELECT: &str = "goal_id, domain_key, title, description, state, set_at, updated_at, closed_at, planned, done, dropped";
const ACTIVITY_SELECT: &str = "activity_id, goal_id, title, state, planned_at, updated_at";

/// Reads: a service user's own portal, within their organisation.
#[Object]
impl CoreQuery {
    /// Who the bearer token says is asking.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let caller = caller(ctx)?;
        Ok(Me {
            subject: caller.subject,
            role: caller.role,
            organisation: caller.organisation,
        })
    }

    /// The control panel of a portal: per life domain, the latest status and the
    /// active goals with their activities and progress, and a summary of every
    /// section. `portalId` defaults to the caller's own portal. With `asOf`, the
    /// panel as it stood at that time, computed from the events.
    async fn control_panel(
        &self,
        ctx: &Context<'_>,
        portal_id: Option<Uuid>,
        as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ControlPanel> {
        if let Some(as_of) = as_of {
            return Ok(panel_as_of(ctx, portal_id, as_of).await?);
        }
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let portal_id = portal_id.unwrap_or(caller.subject);
        let reader = authorize_read(ctx, portal_id, Section::Core).await?;
        let portal = reader.row;
        let id = portal_id.to_string();
        let e = &svc.engine;
        let (domains_t, goals_t, activities_t) = (
            e.table(control_panel::NAME, "cp_domains"),
            e.table(control_panel::NAME, "cp_goals"),
            e.table(control_panel::NAME, "cp_activities"),
        );
        let domain_rows = sqlx::query(&format!(
            "SELECT domain_key, name, custom, latest_score, latest_note, latest_rated_at, ratings \
             FROM {domains_t} WHERE portal_id = $1 ORDER BY ordinal"
        ))
        .bind(&id)
        .fetch_all(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?;
        let goal_rows = sqlx::query(&format!(
            "SELECT {GOAL_SELECT} FROM {goals_t} WHERE portal_id = $1 AND state = 'active' ORDER BY set_at, goal_id"
        ))
        .bind(&id)
        .fetch_all(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?;
        let activity_rows = sqlx::query(&format!(
            "SELECT a.activity_id, a.goal_id, a.title, a.state, a.planned_at, a.updated_at \
             FROM {activities_t} a JOIN {goals_t} g ON g.portal_id = a.portal_id AND g.goal_id = a.goal_id \
             WHERE a.portal_id = $1 AND g.state = 'active' ORDER BY a.planned_at, a.activity_id"
        ))
        .bind(&id)
        .fetch_all(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?;
        let mut goals = goal_rows
            .iter()
            .map(goal_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for row in &activity_rows {
            let (goal_id, activity) = activity_from_row(row)?;
            if let Some(goal) = goals.iter_mut().find(|g| g.id.to_string() == goal_id) {
                goal.activities.push(activity);
            }
        }
        let mut domains = Vec::with_capacity(domain_rows.len());
        for row in &domain_rows {
            let key: String = get(row, "domain_key")?;
            let score: Option<i64> = get(row, "latest_score")?;
            let latest_status = match score {
                Some(score) => Some(Status {
                    score: score as i32,
                    note: get::<Option<String>>(row, "latest_note")?.unwrap_or_default(),
                    rated_at: time(row, "latest_rated_at")?,
                }),
                None => None,
            };
            let (mine, rest): (Vec<Goal>, Vec<Goal>) =
                goals.into_iter().partition(|g| g.domain == key);
            goals = rest;
            domains.push(DomainPanel {
                name: get(row, "name")?,
                custom: get::<i64>(row, "custom")? != 0,
                latest_status,
                ratings: get(row, "ratings")?,
                active_goals: mine,
                key,
            });
        }
        // Someone other than the owner learns nothing of the other sections,
        // not even that they changed: version and time are the core section's.
        let (mut updated_at, mut version) =
            (time(&portal, "updated_at")?, get(&portal, "version")?);
        if !reader.owner {
            let summaries = toolbox::summaries(ctx, portal_id, None).await?;
            if let Some(core) = summaries
                .iter()
                .find(|s| s.section == toolbox::PortalSection::Core)
            {
                version = core.changes;
                updated_at = core.last_changed_at.unwrap_or(updated_at);
            }
        }
        Ok(ControlPanel {
            portal_id,
            organisation: get(&portal, "organisation")?,
            opened_at: time(&portal, "opened_at")?,
            updated_at,
            version,
            domains,
            as_of: None,
            summaries: None,
            owner: reader.owner,
        })
    }

    /// One goal in any state, with all its activities.
    async fn goal(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        portal_id: Option<Uuid>,
    ) -> async_graphql::Result<Goal> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let portal_id = portal_id.unwrap_or(caller.subject);
        authorize_read(ctx, portal_id, Section::Core).await?;
        let goals_t = svc.engine.table(control_panel::NAME, "cp_goals");
        let activities_t = svc.engine.table(control_panel::NAME, "cp_activities");
        let row = sqlx::query(&format!(
            "SELECT {GOAL_SELECT} FROM {goals_t} WHERE portal_id = $1 AND goal_id = $2"
        ))
        .bind(portal_id.to_string())
        .bind(goal_id.to_string())
        .fetch_optional(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("goal {goal_id} does not exist")))?;
        let mut goal = goal_from_row(&row)?;
        let rows = sqlx::query(&format!(
            "SELECT {ACTIVITY_SELECT} FROM {activities_t} WHERE portal_id = $1 AND goal_id = $2 \
             ORDER BY planned_at, activity_id"
        ))
        .bind(portal_id.to_string())
        .bind(goal_id.to_string())
        .fetch_all(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?;
        for row in &rows {
            goal.activities.push(activity_from_row(row)?.1);
        }
        Ok(goal)
    }

    /// Every change to a goal and its activities, oldest first: up to `limit`
    /// (1-500, default 100) after `afterSequence` (default 0).
    #[graphql(complexity = "crate::limits::rows_cost(limit, child_complexity)")]
    async fn goal_history(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        portal_id: Option<Uuid>,
        #[graphql(default = 0)] after_sequence: i64,
        #[graphql(default = 100)] limit: i32,
    ) -> async_graphql::Result<Vec<HistoryEntry>> {
        let page = Page::new(after_sequence, limit)?;
        let entries = history_entries(ctx, portal_id, "goal", &goal_id.to_string(), page).await?;
        if entries.is_empty() && page.first() {
            return Err(ApiError::NotFound(format!("goal {goal_id} does not exist")).into());
        }
        Ok(entries)
    }

    /// Every status rating of a life domain, oldest first: up to `limit` (1-500,
    /// default 100) after `afterSequence` (default 0).
    #[graphql(complexity = "crate::limits::rows_cost(limit, child_complexity)")]
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        domain: String,
        portal_id: Option<Uuid>,
        #[graphql(default = 0)] after_sequence: i64,
        #[graphql(default = 100)] limit: i32,
    ) -> async_graphql::Result<Vec<StatusEntry>> {
        let page = Page::new(after_sequence, limit)?;
        let (rows, owner) = history_rows(ctx, portal_id, "status", &domain, page).await?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let data: String = get(row, "data")?;
                let event: domain::portal::PortalEvent =
                    serde_json::from_str(&data).map_err(ApiError::internal)?;
                match event {
                    domain::portal::PortalEvent::StatusRated {
                        score, note, at, ..
                    } => Ok(StatusEntry {
                        sequence: shown_sequence(row, owner, page, i)?,
                        score,
                        note,
                        at,
                    }),
                    _ => Err(ApiError::internal("non-status event in status history")),
                }
            })
            .collect::<Result<_, ApiError>>()
            .map_err(Into::into)
    }
}

/// The history of one thing in a portal (`kind`, `subject_id`), oldest first.
pub(crate) async fn history_entries(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    kind: &str,
    subject_id: &str,
    page: Page,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let (rows, owner) = history_rows(ctx, portal_id, kind, subject_id, page).await?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let data: String = get(row, "data")?;
            Ok(HistoryEntry {
                sequence: shown_sequence(row, owner, page, i)?,
                position: if owner { get(row, "position")? } else { 0 },
                event_type: get(row, "event_type")?,
                at: time(row, "at")?,
                recorded_at: time(row, "recorded_at")?,
                actor_id: get(row, "actor_id")?,
                actor_role: get(row, "actor_role")?,
                request_id: if owner {
                    get(row, "request_id")?
                } else {
                    String::new()
                },
                data: Json(serde_json::from_str(&data).map_err(ApiError::internal)?),
            })
        })
        .collect()
}

/// The control panel as it stood at `as_of`: the core section's events up to
/// then, folded.
async fn panel_as_of(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<ControlPanel, ApiError> {
    let (portal_id, owner, view): (Uuid, bool, PortalView) =
        toolbox::panel_view(ctx, portal_id, as_of).await?;
    let Some(opened_at) = view.opened_at else {
        return Err(ApiError::NotFound(
            "this portal was not open at that time".into(),
        ));
    };
    let mut summaries = toolbox::summaries(ctx, portal_id, Some(as_of)).await?;
    if !owner {
        summaries.retain(|s| s.section == toolbox::PortalSection::Core);
    }
    let updated_at = summaries
        .iter()
        .filter_map(|s| s.last_changed_at)
        .max()
        .unwrap_or(opened_at);
    let version = summaries.iter().map(|s| s.changes).sum();
    let mut goals: Vec<Goal> = view
        .goals
        .into_iter()
        .filter(|g| g.state == "active")
        .map(|g| {
            let count = |s: &str| g.activities.iter().filter(|a| a.state == s).count() as i64;
            let (planned, done, dropped) = (count("planned"), count("done"), count("dropped"));
            Goal {
                id: g.id,
                domain: g.domain,
                title: g.title,
                description: g.description,
                state: goal_state(g.state),
                set_at: g.set_at,
                updated_at: g.updated_at,
                closed_at: g.closed_at,
                progress: progress(planned, done, dropped),
                activities: g
                    .activities
                    .into_iter()
                    .map(|a| Activity {
                        id: a.id,
                        title: a.title,
                        state: activity_state(a.state),
                        planned_at: a.planned_at,
                        updated_at: a.updated_at,
                    })
                    .collect(),
            }
        })
        .collect();
    // The order the read-model query gives now: by time set, then id.
    goals.sort_by_key(|g| (g.set_at, g.id));
    for goal in &mut goals {
        goal.activities.sort_by_key(|a| (a.planned_at, a.id));
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
        portal_id,
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
async fn history_rows(
    ctx: &Context<'_>,
    portal_id: Option<Uuid>,
    kind: &str,
    subject_id: &str,
    page: Page,
) -> Result<(Vec<AnyRow>, bool), ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    let portal_id = portal_id.unwrap_or(caller.subject);
    let owner = authorize_read(ctx, portal_id, section_of_kind(kind)?)
        .await?
        .owner;
    let table = svc.engine.table(history::NAME, "history");
    let rows = sqlx::query(&history::query(svc.db.backend, &table, !owner))
        .bind(portal_id.to_string())
        .bind(kind)
        .bind(subject_id)
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&svc.db.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok((rows, owner))
}

/// The sequence number shown for the `i`-th row of a page: the portal's for
/// its owner, the entry's place in the list for anyone else.
fn shown_sequence(row: &AnyRow, owner: bool, page: Page, i: usize) -> Result<i64, ApiError> {
    if owner {
        get(row, "sequence")
    } else {
        Ok(page.after + i as i64 + 1)
    }
}

/// Most history entries returned at once.
pub const HISTORY_LIMIT_MAX: i32 = 500;

/// One page of a history: the entries after a sequence number, oldest first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    after: i64,
    limit: i64,
}

impl Page {
    /// Checks `afterSequence` (0 or more) and `limit` (1-500).
    pub(crate) fn new(after_sequence: i64, limit: i32) -> Result<Page, ApiError> {
        if after_sequence < 0 {
            return Err(ApiError::BadInput(format!(
                "field `afterSequence` must be 0 or more, got {after_sequence}"
            )));
        }
        if !(1..=HISTORY_LIMIT_MAX).contains(&limit) {
            return Err(ApiError::BadInput(format!(
                "field `limit` must be between 1 and {HISTORY_LIMIT_MAX}, got {limit}"
            )));
        }
        Ok(Page {
            after: after_sequence,
            limit: i64::from(limit),
        })
    }

    /// True for the first page: an empty first page means there is nothing.
    pub(crate) fn first(&self) -> bool {
        self.after == 0
    }
}

/// Changes to the portal core: a service user works on their own portal only.
#[derive(Default)]
pub struct CoreMutation;

/// Runs `command` on the caller's own portal after the role and tenancy checks.
pub(crate) async fn run(
    ctx: &Context<'_>,
    idempotency_key: Option<String>,
    command: PortalCommand,
) -> async_graphql::Result<CommandOutcome> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if caller.role != Role::ServiceUser {
        return Err(
            ApiError::Forbidden("only a service user can change their own portal".into()).into(),
        );
    }
    // Also for openPortal: the id may have a portal in another organisation.
    own_portal_here(svc, &caller).await?;
    Ok(svc
        .execute(
            &caller,
            &request(ctx).request_id,
            idempotency(ctx, idempotency_key),
            command,
        )
        .await?)
}

/// Refuses a caller whose subject id has a portal in another organisation:
/// a token of one organisation never acts on, or reads about, a portal of
/// another that happens to carry the same id.
pub(crate) async fn own_portal_here(svc: &Service, caller: &Caller) -> Result<(), ApiError> {
    let org = svc.portal_organisation(caller.subject).await?;
    if org.is_some_and(|org| org != caller.organisation) {
        return Err(ApiError::Forbidden(
            "this portal belongs to another organisation".into(),
        ));
    }
    Ok(())
}

/// Refuses a caller whose subject id is a person of another organisation:
/// a portal or a provider profile there.
pub(crate) async fn identity_here(svc: &Service, caller: &Caller) -> Result<(), ApiError> {
    own_portal_here(svc, caller).await?;
    let profile = svc.provider(caller.subject).await?;
    if profile
        .organisation
        .is_some_and(|org| org != caller.organisation)
    {
        return Err(ApiError::Forbidden(
            "this person belongs to another organisation".into(),
        ));
    }
    Ok(())
}

/// The client's idempotency key with the fingerprint of the mutation it came
/// with: the field's name and its arguments (variables resolved, object keys
/// sorted, the key itself left out), hashed.
pub(crate) fn idempotency(
    ctx: &Context<'_>,
    key: Option<String>,
) -> Option<crate::service::IdempotencyKey> {
    use sha2::{Digest, Sha256};
    let key = key?;
    let field = ctx.field();
    let mut arguments: Vec<(String, serde_json::Value)> = field
        .arguments()
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name.as_str() != "idempotencyKey")
        .map(|(name, value)| {
            let json = value.into_json().unwrap_or(serde_json::Value::Null);
            (name.to_string(), canonical(json))
        })
        .collect();
    arguments.sort_by(|a, b| a.0.cmp(&b.0));
    let text = serde_json::to_string(&(field.name(), arguments)).unwrap_or_default();
    Some(crate::service::IdempotencyKey {
        key,
        fingerprint: hex::encode(Sha256::digest(text.as_bytes())),
    })
}

/// The same JSON with every object's keys in sorted order.
fn canonical(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(canonical).collect())
        }
        other => other,
    }
}

pub(crate) use crate::clock::now;

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
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let caller = caller(ctx)?;
        let command = PortalCommand::OpenPortal {
            owner: caller.subject,
            organisation: caller.organisation,
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Adds a life domain of the user's own. `key`: 1-40 characters of a-z, 0-9 and _,
    /// starting with a letter; `name`: 1-60 characters. At most 30 custom domains.
    async fn add_life_domain(
        &self,
        ctx: &Context<'_>,
        key: String,
        name: String,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::AddLifeDomain {
                key,
                name,
                at: now(),
            },
        )
        .await
    }

    /// Rates the status of a life domain: `score` 1-10, `note` up to 2000 characters.
    async fn rate_status(
        &self,
        ctx: &Context<'_>,
        domain: String,
        score: i32,
        note: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::RateStatus {
            domain,
            score,
            note: note.unwrap_or_default(),
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Sets a goal in a life domain: `title` 1-200 characters, `description` up to 2000.
    /// `goalId` may be chosen by the client; otherwise one is generated and returned as `createdId`.
    async fn set_goal(
        &self,
        ctx: &Context<'_>,
        domain: String,
        title: String,
        description: Option<String>,
        goal_id: Option<Uuid>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::SetGoal {
            goal_id: goal_id.unwrap_or_else(Uuid::new_v4),
            domain,
            title,
            description: description.unwrap_or_default(),
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Rewords an active goal: `title` 1-200 characters, `description` up to 2000.
    async fn revise_goal(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        title: String,
        description: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::ReviseGoal {
            goal_id,
            title,
            description: description.unwrap_or_default(),
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Marks an active goal as achieved.
    async fn achieve_goal(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::AchieveGoal { goal_id, at: now() },
        )
        .await
    }

    /// Abandons an active goal; `reason` up to 2000 characters.
    async fn abandon_goal(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        reason: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::AbandonGoal {
            goal_id,
            reason: reason.unwrap_or_default(),
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Plans an activity under an active goal: `title` 1-200 characters, at most 200 per goal.
    /// `activityId` may be chosen by the client; otherwise one is generated and returned as `createdId`.
    async fn plan_activity(
        &self,
        ctx: &Context<'_>,
        goal_id: Uuid,
        title: String,
        activity_id: Option<Uuid>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::PlanActivity {
            goal_id,
            activity_id: activity_id.unwrap_or_else(Uuid::new_v4),
            title,
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }

    /// Marks a planned activity as done.
    async fn complete_activity(
        &self,
        ctx: &Context<'_>,
        activity_id: Uuid,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        run(
            ctx,
            idempotency_key,
            PortalCommand::CompleteActivity {
                activity_id,
                at: now(),
            },
        )
        .await
    }

    /// Drops a planned activity; `reason` up to 2000 characters.
    async fn drop_activity(
        &self,
        ctx: &Context<'_>,
        activity_id: Uuid,
        reason: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let command = PortalCommand::DropActivity {
            activity_id,
            reason: reason.unwrap_or_default(),
            at: now(),
        };
        run(ctx, idempotency_key, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field and enum value of our own types carries a description.
    #[tokio::test]
    async fn every_schema_field_is_described() {
        let schema =
            Schema::build(Query::default(), Mutation::default(), LiveSubscription).finish();
        let response = schema
            .execute("{ __schema { types { name description fields { name description args { name } } enumValues { name description } } } }")
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("json");
        let mut missing = Vec::new();
        for t in data["__schema"]["types"].as_array().expect("types") {
            let name = t["name"].as_str().unwrap_or_default();
            let builtin = name.starts_with("__")
                || [
                    "String", "Int", "Float", "Boolean", "ID", "UUID", "DateTime", "JSON",
                ]
                .contains(&name);
            if builtin {
                continue;
            }
            if t["description"].is_null() {
                missing.push(name.to_string());
            }
            for f in t["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(t["enumValues"].as_array().into_iter().flatten())
            {
                if f["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{name}.{}", f["name"]));
                }
            }
        }
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }
}
