//! GraphQL for studies and research consent: admins register studies,
//! service users and providers enrol and withdraw themselves, researchers
//! see the studies they belong to.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::NaiveDate;
use domain::access::{self, Duty, StudySight};
use domain::study::{
    enrolled_now, enrolment_id, EnrolmentCommand, ParticipantRole, StudyCommand, StudyInfo,
};
use projections::research::{Cell, Table};
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::{self, NodeId};
use crate::paging::{connection, Page};
use crate::payload::payload;
use crate::service::{CommandOutcome, Service};

/// A study as the caller may see it.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Study")]
pub struct StudyView {
    /// The study's global id.
    pub id: ID,
    /// The study's own uuid (as in research exports and events).
    pub uuid: Uuid,
    /// Its title.
    pub title: String,
    /// The protocol id of its ethics approval.
    pub protocol_id: String,
    /// First day of the study period.
    pub starts_on: NaiveDate,
    /// Last day of the study period (enrolment closes after it).
    pub ends_on: NaiveDate,
    /// The researchers' person ids; only for admins and the study's researchers.
    pub researcher_ids: Option<Vec<ID>>,
    /// How many people are enrolled now; only for admins and the study's researchers.
    pub enrolled_now: Option<i32>,
    /// Whether the caller is enrolled now; null for those who cannot enrol.
    pub me_enrolled: Option<bool>,
}

fn participant_role(caller: &Caller) -> Option<ParticipantRole> {
    match caller.care_side()? {
        domain::care::Side::ServiceUser => Some(ParticipantRole::ServiceUser),
        domain::care::Side::Provider => Some(ParticipantRole::Provider),
    }
}

/// The study `study_id` of the caller's organisation, or NOT_FOUND.
async fn study_of(svc: &Service, caller: &Caller, study_id: Uuid) -> Result<StudyInfo, ApiError> {
    svc.studies()
        .await?
        .into_iter()
        .find(|s| s.study_id == study_id && s.organisation == caller.organisation)
        .ok_or_else(|| ApiError::NotFound("no such study".into()))
}

/// Runs a command on the caller's enrolment in `study_id`, then tells the
/// usage recorder at once.
async fn on_enrolment<P: From<CommandOutcome>>(
    ctx: &Context<'_>,
    caller: &Caller,
    study_id: Uuid,
    idempotency_key: Option<String>,
    command: EnrolmentCommand,
) -> async_graphql::Result<P> {
    let svc = service(ctx);
    let outcome = svc
        .run_command::<domain::study::Enrolment>(
            caller,
            &request(ctx).request_id,
            crate::context::idempotency(ctx, idempotency_key),
            &enrolment_id(study_id, caller.subject).to_string(),
            command,
        )
        .await?;
    // The command has committed; a failed refresh only delays recording
    // (the writer refreshes every 2 s) and must not report a failure.
    if let Err(error) = svc.usage.refresh().await {
        tracing::warn!(?error, "usage: cannot read enrolments");
    }
    Ok(outcome.into())
}

/// Reads of studies.
#[derive(Default)]
pub struct ResearchQuery;

connection!(
    /// A page of studies, by start date.
    StudyConnection,
    StudyEdge,
    StudyView
);

#[Object]
impl ResearchQuery {
    /// Studies of the caller's organisation, by start date: an admin sees
    /// every one, a researcher those they belong to, a service user or
    /// provider every one still open for enrolment or that they are enrolled
    /// in. Others get FORBIDDEN. A page at a time: `first` or `last` 1-100
    /// (default: the first 100), after or before a cursor.
    #[graphql(
        complexity = "crate::paging::cost(first, last, crate::care::LIST_PAGE_DEFAULT, child_complexity)"
    )]
    async fn studies(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many studies from the start, by start date (1-100, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(desc = "How many studies from the end (1-100), to page back; not with `first`.")]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<StudyConnection> {
        let window = crate::care::list_window("studies", first, after, last, before)?;
        let keyed = self
            .visible_studies(ctx)
            .await?
            .into_iter()
            .map(|s| (format!("{}:{}", s.starts_on, s.uuid), s))
            .collect();
        Ok(StudyConnection(Page::slice(&window, keyed)))
    }

    /// The studies the caller may see (see `studies`), all of them.
    #[graphql(skip)]
    pub(crate) async fn visible_studies(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<StudyView>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(Duty::SeeStudies) {
            return Err(ApiError::Forbidden(
                "studies are for admins, researchers and participants".into(),
            )
            .into());
        }
        let events = svc.enrolment_events().await?;
        let enrolled = enrolled_now(&events);
        let today = now(ctx).date_naive();
        let actor = caller.actor();
        let mut out = Vec::new();
        for study in svc.studies().await? {
            let mine = enrolled.get(&(study.study_id, caller.subject)) == Some(&true);
            let (member, me) = match access::study_sight(&actor, &study, mine, today) {
                StudySight::Hidden => continue,
                StudySight::Member => (true, None),
                StudySight::Participant { enrolled } => (false, Some(enrolled)),
            };
            let enrolled_now = member.then(|| {
                enrolled
                    .iter()
                    .filter(|((s, _), now)| *s == study.study_id && **now)
                    .count() as i32
            });
            out.push(StudyView {
                id: NodeId::Study {
                    study: study.study_id,
                }
                .id(),
                uuid: study.study_id,
                title: study.title,
                protocol_id: study.protocol_id,
                starts_on: study.starts_on,
                ends_on: study.ends_on,
                researcher_ids: member.then(|| {
                    study
                        .researchers
                        .iter()
                        .copied()
                        .map(ids::person_id)
                        .collect()
                }),
                enrolled_now,
                me_enrolled: me,
            });
        }
        Ok(out)
    }
}

/// The study a global id names, through `studies`.
pub(crate) async fn study_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<StudyView>> {
    let NodeId::Study { study } = id else {
        return Ok(None);
    };
    let all = ResearchQuery.visible_studies(ctx).await?;
    Ok(all.into_iter().find(|s| s.uuid == study))
}

payload!(
    /// What registering a study, enrolling or withdrawing returns.
    StudyPayload { study: StudyView = study_node, "The study as the caller sees it after the change." }
);

/// Changes to studies and consent.
#[derive(Default)]
pub struct ResearchMutation;

#[Object]
impl ResearchMutation {
    /// Registers a study in the caller's organisation (admins only): `title`
    /// 1-200 characters, `protocolId` 1-64, a period of at most ten years, and
    /// 1-50 researchers by person id.
    #[allow(clippy::too_many_arguments)]
    async fn register_study(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The study's title (1-200 characters).")] title: String,
        #[graphql(desc = "The protocol id of the study's ethics approval (1-64 characters).")]
        protocol_id: String,
        #[graphql(desc = "The first day of the study period (YYYY-MM-DD).")] starts_on: NaiveDate,
        #[graphql(
            desc = "The last day of the study period (YYYY-MM-DD): not before `startsOn` and at most ten years after it."
        )]
        ends_on: NaiveDate,
        #[graphql(desc = "The study's researchers: their person ids (1-50 researchers).")]
        researcher_ids: Vec<ID>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<StudyPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(Duty::RegisterStudies) {
            return Err(ApiError::Forbidden("only an admin registers studies".into()).into());
        }
        let researchers = researcher_ids
            .iter()
            .take(domain::study::RESEARCHERS_MAX + 1)
            .map(ids::person)
            .collect::<Result<Vec<Uuid>, ApiError>>()?;
        let study_id = Uuid::new_v4();
        let command = StudyCommand::Register {
            info: StudyInfo {
                study_id,
                organisation: caller.organisation.clone(),
                title,
                protocol_id,
                starts_on,
                ends_on,
                researchers,
            },
            at: now(ctx),
        };
        Ok(svc
            .run_command::<domain::study::Study>(
                &caller,
                &request(ctx).request_id,
                crate::context::idempotency(ctx, idempotency_key),
                &study_id.to_string(),
                command,
            )
            .await?
            .into())
    }

    /// Enrols the caller (a service user or provider) in a study of their
    /// organisation that has not ended: from now on their use of the portal
    /// counts in its outputs, for as long as they stay enrolled.
    async fn enrol_in_study(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The study: its global id, or its uuid.")] study_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<StudyPayload> {
        let study_id = ids::study(&study_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let Some(role) = participant_role(&caller) else {
            return Err(ApiError::Forbidden(
                "only service users and providers take part in studies".into(),
            )
            .into());
        };
        let study = study_of(svc, &caller, study_id).await?;
        // The participant must be the person of this organisation: a token
        // of it carrying the id of someone elsewhere would otherwise pour
        // that person's use into this organisation's study.
        crate::context::identity_here(svc, &caller).await?;
        if now(ctx).date_naive() > study.ends_on {
            return Err(ApiError::FailedPrecondition("the study has ended".into()).into());
        }
        let command = EnrolmentCommand::Enrol {
            study_id,
            participant_id: caller.subject,
            role,
            at: now(ctx),
        };
        on_enrolment(ctx, &caller, study_id, idempotency_key, command).await
    }

    /// Withdraws the caller from a study: they leave every export made from
    /// now on, including exports of earlier dates.
    async fn withdraw_from_study(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The study: its global id, or its uuid.")] study_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<StudyPayload> {
        let study_id = ids::study(&study_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if participant_role(&caller).is_none() {
            return Err(ApiError::Forbidden(
                "only service users and providers take part in studies".into(),
            )
            .into());
        }
        study_of(svc, &caller, study_id).await?;
        let command = EnrolmentCommand::Withdraw {
            study_id,
            participant_id: caller.subject,
            at: now(ctx),
        };
        on_enrolment(ctx, &caller, study_id, idempotency_key, command).await
    }
}

/// One week of a study, in aggregate.
#[derive(SimpleObject, Clone)]
pub struct StudyWeek {
    /// Monday of the week (UTC).
    pub week: NaiveDate,
    /// Service users enrolled during the week.
    pub enrolled_users: i64,
    /// Providers enrolled during the week.
    pub enrolled_providers: i64,
    /// Service users with at least one visit (weekly active).
    pub active_users: i64,
    /// Providers with at least one visit.
    pub active_providers: i64,
    /// Visits (runs of requests with gaps under the visit gap).
    pub visits: i64,
    /// Requests in those visits.
    pub requests: i64,
    /// Exchanges service users initiated.
    pub exchanges_by_users: i64,
    /// Exchanges providers initiated.
    pub exchanges_by_providers: i64,
    /// Exchanges by providers per exchange by users; null without user-initiated ones.
    pub initiation_ratio: Option<f64>,
    /// Median seconds to a service user's reply.
    pub user_reply_median_seconds: Option<i64>,
    /// Median seconds to a provider's reply.
    pub provider_reply_median_seconds: Option<i64>,
    /// Service users' replies due under an agreement that fell due this week.
    pub user_replies_due: i64,
    /// Of those, answered in the agreed time.
    pub user_replies_on_time: i64,
    /// Providers' replies that fell due this week.
    pub provider_replies_due: i64,
    /// Of those, answered in the agreed time.
    pub provider_replies_on_time: i64,
}

/// How much one module was used in one week.
#[derive(SimpleObject, Clone)]
pub struct ModuleWeek {
    /// Monday of the week (UTC).
    pub week: NaiveDate,
    /// The part of the portal: control_panel, medications, network,
    /// crisis_plan, exercises, care, messages, agreements, access_log,
    /// studies, forum.
    pub module: String,
    /// Participants who used it.
    pub participants: i64,
    /// Visits that used it.
    pub visits: i64,
    /// Reads.
    pub views: i64,
    /// Changes (in the forum: postings; support, flags and follows count as visits).
    pub writes: i64,
    /// Service users who used it.
    pub users: i64,
    /// Providers who used it.
    pub providers: i64,
    /// Visits by service users that used it.
    pub user_visits: i64,
    /// Visits by providers that used it.
    pub provider_visits: i64,
    /// Changes by service users.
    pub user_writes: i64,
    /// Changes by providers.
    pub provider_writes: i64,
}

/// Retention in one month since enrolment.
#[derive(SimpleObject, Clone)]
pub struct RetentionMonth {
    /// Month since enrolment (30-day months, from 1).
    pub month: i64,
    /// Service users enrolled at least this many months.
    pub eligible: i64,
    /// Of those, with a visit in the month.
    pub active: i64,
    /// Active divided by eligible.
    pub share: f64,
}

/// How often a provider reads their service users' portals.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Engagement {
    /// Never in the period.
    Never,
    /// Less than once a month.
    LessThanMonthly,
    /// About monthly.
    Monthly,
    /// About weekly.
    Weekly,
    /// About daily.
    Daily,
}

impl Engagement {
    const ALL: [(Engagement, &'static str); 5] = [
        (Engagement::Never, "never"),
        (Engagement::LessThanMonthly, "less_than_monthly"),
        (Engagement::Monthly, "monthly"),
        (Engagement::Weekly, "weekly"),
        (Engagement::Daily, "daily"),
    ];
}

/// How many providers fall in one engagement band.
#[derive(SimpleObject, Clone)]
pub struct EngagementBand {
    /// The band.
    pub band: Engagement,
    /// Providers in it.
    pub providers: i64,
}

/// A study's measures in aggregate: no person-level rows, no pseudonyms.
#[derive(SimpleObject, Clone)]
pub struct StudyMeasures {
    /// The study.
    pub study_id: ID,
    /// The time the measures are for (now).
    pub as_of: chrono::DateTime<chrono::Utc>,
    /// Participants included (enrolled at some point and not withdrawn).
    pub participants: i64,
    /// Week by week.
    pub weeks: Vec<StudyWeek>,
    /// Module popularity, week by week.
    pub modules: Vec<ModuleWeek>,
    /// Service users' retention by month since enrolment.
    pub retention: Vec<RetentionMonth>,
    /// Providers per engagement band, from never to daily.
    pub provider_engagement: Vec<EngagementBand>,
}

/// A text cell the fold always fills; a missing one is a defect, not "".
fn cell_text(table: &Table, row: &[Cell], name: &str) -> Result<String, ApiError> {
    table
        .text(row, name)
        .map(str::to_string)
        .ok_or_else(|| ApiError::internal(format!("measures: {}.{name} is empty", table.name)))
}

/// A day cell; one that does not parse is a defect, never 1970-01-01.
fn cell_day(table: &Table, row: &[Cell], name: &str) -> Result<NaiveDate, ApiError> {
    let text = cell_text(table, row, name)?;
    text.parse()
        .map_err(|e| ApiError::internal(format!("measures: {}.{name} `{text}`: {e}", table.name)))
}

/// The aggregates of the tables.
fn aggregates(
    study_id: Uuid,
    tables: &[Table],
    as_of: chrono::DateTime<chrono::Utc>,
) -> Result<StudyMeasures, ApiError> {
    let named = |name: &str| tables.iter().find(|t| t.name == name);
    let int = |t: &Table, r: &[Cell], n: &str| t.int(r, n).unwrap_or(0);
    let mut measures = StudyMeasures {
        study_id: NodeId::Study { study: study_id }.id(),
        as_of,
        participants: named("participants").map_or(0, |t| t.rows.len() as i64),
        weeks: Vec::new(),
        modules: Vec::new(),
        retention: Vec::new(),
        provider_engagement: Vec::new(),
    };
    if let Some(t) = named("study_weeks") {
        measures.weeks = t
            .rows
            .iter()
            .map(|r| -> Result<_, ApiError> {
                Ok(StudyWeek {
                    week: cell_day(t, r, "week")?,
                    enrolled_users: int(t, r, "enrolled_users"),
                    enrolled_providers: int(t, r, "enrolled_providers"),
                    active_users: int(t, r, "active_users"),
                    active_providers: int(t, r, "active_providers"),
                    visits: int(t, r, "visits"),
                    requests: int(t, r, "requests"),
                    exchanges_by_users: int(t, r, "exchanges_by_users"),
                    exchanges_by_providers: int(t, r, "exchanges_by_providers"),
                    initiation_ratio: t.float(r, "initiation_ratio"),
                    user_reply_median_seconds: t.int(r, "user_reply_median_s"),
                    provider_reply_median_seconds: t.int(r, "provider_reply_median_s"),
                    user_replies_due: int(t, r, "user_replies_due"),
                    user_replies_on_time: int(t, r, "user_replies_on_time"),
                    provider_replies_due: int(t, r, "provider_replies_due"),
                    provider_replies_on_time: int(t, r, "provider_replies_on_time"),
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = named("module_weeks") {
        measures.modules = t
            .rows
            .iter()
            .map(|r| -> Result<_, ApiError> {
                Ok(ModuleWeek {
                    week: cell_day(t, r, "week")?,
                    module: cell_text(t, r, "module")?,
                    participants: int(t, r, "participants"),
                    visits: int(t, r, "visits"),
                    views: int(t, r, "views"),
                    writes: int(t, r, "writes"),
                    users: int(t, r, "users"),
                    providers: int(t, r, "providers"),
                    user_visits: int(t, r, "user_visits"),
                    provider_visits: int(t, r, "provider_visits"),
                    user_writes: int(t, r, "user_writes"),
                    provider_writes: int(t, r, "provider_writes"),
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = named("retention") {
        measures.retention = t
            .rows
            .iter()
            .map(|r| RetentionMonth {
                month: int(t, r, "month"),
                eligible: int(t, r, "eligible"),
                active: int(t, r, "active"),
                share: t.float(r, "share").unwrap_or(0.0),
            })
            .collect();
    }
    if let Some(t) = named("provider_engagement") {
        let mut bands: Vec<(Engagement, i64)> =
            Engagement::ALL.iter().map(|(band, _)| (*band, 0)).collect();
        for r in &t.rows {
            let stored = cell_text(t, r, "category")?;
            let band = Engagement::ALL
                .iter()
                .find(|(_, name)| *name == stored)
                .map(|(band, _)| *band)
                .ok_or_else(|| ApiError::internal(format!("engagement band `{stored}`")))?;
            if let Some(entry) = bands.iter_mut().find(|(b, _)| *b == band) {
                entry.1 += 1;
            }
        }
        measures.provider_engagement = bands
            .into_iter()
            .map(|(band, providers)| EngagementBand { band, providers })
            .collect();
    }
    Ok(measures)
}

/// Reads of research measures.
#[derive(Default)]
pub struct MeasuresQuery;

#[Object]
impl MeasuresQuery {
    /// A study's measures in aggregate, for its researchers only (anyone
    /// else: FORBIDDEN, or NOT_FOUND for a researcher of other studies):
    /// weekly active participants, visits, initiation ratio and reply times,
    /// agreement adherence, module popularity, retention and provider
    /// engagement. Computed from the events now, leaving out everyone who
    /// has withdrawn. Person-level data leaves only through
    /// `portal research export`, pseudonymised.
    async fn study_measures(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The study: its global id, or its uuid.")] study_id: ID,
    ) -> async_graphql::Result<StudyMeasures> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(Duty::ReadStudyMeasures) {
            return Err(
                ApiError::Forbidden("measures are for the study's researchers".into()).into(),
            );
        }
        let study_id = ids::study(&study_id)?;
        let study = study_of(svc, &caller, study_id).await?;
        // Its own researchers see it whole; another researcher learns nothing.
        if access::study_sight(&caller.actor(), &study, false, now(ctx).date_naive())
            != StudySight::Member
        {
            return Err(ApiError::NotFound("no such study".into()).into());
        }
        let gap = svc.settings.research.visit_gap_chrono();
        let enrolments = svc.enrolment_events().await?;
        let at = now(ctx);
        let tables = svc
            .measures
            .tables(&svc.db, &enrolments, gap, &study, at)
            .await?;
        Ok(aggregates(study_id, &tables, at)?)
    }
}
