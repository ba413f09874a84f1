//! GraphQL for the access trail: a service user's own access log, and the
//! auditor's searches, "who could see and who looked", and the accounting of
//! disclosures. Every one of these reads is itself recorded before it is
//! answered. None of them returns portal content.

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};

use crate::ids::{self, person_id, BigInt, NodeId};
use crate::paging::{connection, Page, Window};
use chrono::{DateTime, Utc};
use domain::care::{self, CareEvent, WindowKind};
use domain::portal::Section;
use domain::trail::Basis;
use projections::read::care::Party;
use projections::read::trail::{self, EntryRow, Filter, Order};
use projections::read::Scope;
use uuid::Uuid;

use crate::access::record_trail_read;
use domain::access::Duty;

use crate::auth::{Caller, Role};
use crate::care::BreakGlassReason;
use crate::context::{caller, service};
use crate::error::ApiError;
use crate::toolbox::PortalSection;

/// Most trail entries returned at once.
pub const TRAIL_PAGE_MAX: usize = 500;
/// Records of the trail on a page when `first` is not given.
pub const TRAIL_PAGE_DEFAULT: usize = 100;
/// Most reads `whoCouldSee` lists; a longer period is refused.
const LOOKED_MAX: i64 = 1_000;
/// Most rows of one disclosures export; a longer period is refused.
const DISCLOSURES_MAX: i64 = 100_000;

/// On what grounds a read was let through, or that it was refused.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::trail::Basis")]
pub enum AccessBasis {
    /// The owner reading their own access log.
    Owner,
    /// A consent grant of the section.
    Grant,
    /// A break-glass opening of the crisis plan.
    BreakGlass,
    /// An auditor's right to the trail (never to content).
    Audit,
    /// An admin's stated reason: a forum name resolved to the person behind it.
    Admin,
    /// Nothing: the read was refused.
    Refused,
}

/// One record of the access trail.
#[derive(SimpleObject, Clone)]
pub struct AccessEntry {
    /// Global position of the record in the event store.
    pub position: BigInt,
    /// When the read happened.
    pub at: DateTime<Utc>,
    /// Who read: their person id.
    pub reader_id: ID,
    /// The reader's display name, for registered providers.
    pub reader_name: Option<String>,
    /// The reader's role.
    pub reader_role: Role,
    /// The reader's organisation.
    pub reader_organisation: String,
    /// Whose portal (or trail) was read (their person id); null for an auditor search across people.
    pub subject_id: Option<ID>,
    /// What was read: a section of the portal, or the access log itself.
    pub section: AccessSection,
    /// The query that asked.
    pub query: String,
    /// What allowed it, or `REFUSED`.
    pub basis: AccessBasis,
    /// True for a read under a break-glass opening.
    pub break_glass: bool,
    /// The global id of the care relationship whose grant or break-glass allowed the read.
    pub relationship_id: Option<ID>,
    /// Sequence number of the granting event in that relationship's history.
    pub basis_sequence: Option<BigInt>,
    /// The error code of a refused read.
    pub refusal: Option<String>,
    /// For reads of the trail: what was searched (null in a service user's own log).
    pub detail: Option<String>,
    /// The request, as in the `x-request-id` response header (empty in a service user's own log).
    pub request_id: ID,
    /// The address the request came from (null in a service user's own log).
    pub client_address: Option<String>,
    /// How many refused attempts of the same kind (reader, section, query,
    /// refusal) this entry stands for; 1 for every read let through.
    pub attempts: i32,
    /// The first of several attempts (`at` is the last); null for one.
    pub first_at: Option<DateTime<Utc>>,
}

/// A break-glass opening of the service user's crisis plan.
#[derive(SimpleObject, Clone)]
pub struct BreakGlassOpening {
    /// The global id of the relationship it was opened in.
    pub relationship_id: ID,
    /// The provider who opened it: their person id.
    pub provider_id: ID,
    /// Their display name.
    pub provider_name: Option<String>,
    /// Why, as a code.
    pub reason: BreakGlassReason,
    /// Why, in the provider's words.
    pub explanation: String,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// When it ran (or runs) out.
    pub until: DateTime<Utc>,
}

/// A service user's access log.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct AccessLog {
    /// Every break-glass opening of the crisis plan, newest first: shown first.
    pub break_glass: Vec<BreakGlassOpening>,
}

connection!(
    /// A page of the access trail, newest first.
    AccessEntryConnection,
    AccessEntryEdge,
    AccessEntry
);

#[ComplexObject]
impl AccessLog {
    /// Reads of the portal by others, allowed or refused, newest first, a
    /// page at a time: `first` 1-500 (default 100) after the cursor `after`.
    /// `reads` and `refusedAttempts` give the two apart.
    #[graphql(
        complexity = "crate::paging::cost(first, None, TRAIL_PAGE_DEFAULT, child_complexity)"
    )]
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries, counted from the newest (1-500, default 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<AccessEntryConnection> {
        Ok(own_log(ctx, None, first, after).await?)
    }

    /// Reads of the portal that were let through (a grant or break-glass),
    /// newest first: however many refused attempts others make, they never
    /// push a real read off this list's first page.
    #[graphql(
        complexity = "crate::paging::cost(first, None, TRAIL_PAGE_DEFAULT, child_complexity)"
    )]
    async fn reads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many reads, counted from the newest (1-500, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<AccessEntryConnection> {
        Ok(own_log(ctx, Some(true), first, after).await?)
    }

    /// Refused attempts to read the portal, newest first; attempts of one
    /// kind made together are one entry with their count (`attempts`) and
    /// the first and last time.
    #[graphql(
        complexity = "crate::paging::cost(first, None, TRAIL_PAGE_DEFAULT, child_complexity)"
    )]
    async fn refused_attempts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries, counted from the newest (1-500, default 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<AccessEntryConnection> {
        Ok(own_log(ctx, Some(false), first, after).await?)
    }
}

/// A page of the caller's own access log: reads by others, all or only
/// those `allowed` (or refused).
async fn own_log(
    ctx: &Context<'_>,
    allowed: Option<bool>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AccessEntryConnection, ApiError> {
    let caller = caller(ctx)?;
    let window = trail_window(first, after.as_deref())?;
    let filter = Filter {
        subject: Some(caller.subject),
        reader_not: Some(caller.subject),
        before_position: window.after_number()?,
        allowed,
        ..Filter::default()
    };
    let mut page = search(ctx, &caller, filter, &window).await?;
    // Who looked, when, at what and on what grounds; not the readers'
    // addresses, request ids or an auditor's search terms. An admin's
    // stated reason for resolving their forum name is theirs to read.
    for (_, entry) in &mut page.edges {
        entry.client_address = None;
        entry.request_id = ID::default();
        if entry.section != AccessSection::ForumIdentity {
            entry.detail = None;
        }
    }
    Ok(AccessEntryConnection(page))
}

/// One break-glass opening, for the organisation's auditors.
#[derive(SimpleObject, Clone)]
pub struct BreakGlassReportEntry {
    /// The global id of the relationship it was opened in.
    pub relationship_id: ID,
    /// Whose crisis plan: their person id.
    pub subject_id: ID,
    /// The provider who opened it: their person id.
    pub provider_id: ID,
    /// Why, as a code.
    pub reason: BreakGlassReason,
    /// Why, in the provider's words.
    pub explanation: String,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// When it ran (or runs) out.
    pub until: DateTime<Utc>,
    /// Sequence number of the opening in the relationship's history (the
    /// `basisSequence` of every read under it).
    pub basis_sequence: BigInt,
    /// How many reads of the crisis plan the trail holds under it.
    pub reads: i32,
}

/// Most openings one `breakGlassReport` gives.
const REPORT_MAX: usize = 500;

/// A span of time during which a provider could read a section.
#[derive(SimpleObject, Clone)]
pub struct AccessWindow {
    /// The provider: their person id.
    pub provider_id: ID,
    /// Their display name.
    pub provider_name: Option<String>,
    /// The global id of the relationship.
    pub relationship_id: ID,
    /// `GRANT` or `BREAK_GLASS`.
    pub basis: AccessBasis,
    /// From when.
    pub from: DateTime<Utc>,
    /// Until when; null while it is still open with no end date.
    pub to: Option<DateTime<Utc>>,
    /// Sequence number of the event that opened it in the relationship's history.
    pub basis_sequence: BigInt,
    /// For a break-glass window: why, as a code.
    pub reason: Option<BreakGlassReason>,
    /// For a break-glass window: why, in the provider's words.
    pub explanation: Option<String>,
}

/// Who could read a section during a period, and who did.
#[derive(SimpleObject, Clone)]
pub struct SectionExposure {
    /// Every window of access overlapping the period, from the relationships' events.
    pub could_see: Vec<AccessWindow>,
    /// Every allowed read of the section in the period, oldest first (more than 1,000 is
    /// refused: ask for a shorter period).
    pub looked: Vec<AccessEntry>,
}

/// What a record of the access trail is about: a section of the portal, or
/// the access log itself.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AccessSection {
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
    /// The access log (a person's own, or an auditor's search).
    AccessLog,
    /// Who is behind a forum name (resolved by an admin, with a stated reason).
    ForumIdentity,
    /// A person's data export: its making (by the person, or by an operator
    /// with a stated reason) and each download.
    Export,
}

impl AccessSection {
    /// The name the trail stores.
    fn stored(self) -> &'static str {
        match self {
            AccessSection::Core => Section::Core.as_str(),
            AccessSection::Medications => Section::Medications.as_str(),
            AccessSection::Network => Section::Network.as_str(),
            AccessSection::CrisisPlan => Section::CrisisPlan.as_str(),
            AccessSection::Exercises => Section::Exercises.as_str(),
            AccessSection::AccessLog => domain::trail::ACCESS_LOG,
            AccessSection::ForumIdentity => domain::trail::FORUM_IDENTITY,
            AccessSection::Export => domain::trail::EXPORT,
        }
    }

    /// From the name the trail stores; anything else is a corrupt store.
    fn from_stored(name: &str) -> Result<Self, ApiError> {
        [
            AccessSection::Core,
            AccessSection::Medications,
            AccessSection::Network,
            AccessSection::CrisisPlan,
            AccessSection::Exercises,
            AccessSection::AccessLog,
            AccessSection::ForumIdentity,
            AccessSection::Export,
        ]
        .into_iter()
        .find(|s| s.stored() == name)
        .ok_or_else(|| ApiError::internal(format!("access trail: unknown section `{name}`")))
    }
}

impl TryFrom<EntryRow> for AccessEntry {
    type Error = ApiError;

    fn try_from(row: EntryRow) -> Result<Self, ApiError> {
        let reader_role: Role = row
            .reader_role
            .parse()
            .map_err(|e| ApiError::internal(format!("access trail: {e}")))?;
        Ok(AccessEntry {
            position: BigInt(row.position),
            at: row.at,
            reader_id: person_id(row.reader_id),
            reader_name: row.reader_name,
            reader_role,
            reader_organisation: row.reader_organisation,
            subject_id: row.subject_id.map(person_id),
            section: AccessSection::from_stored(&row.section)?,
            query: row.query,
            basis: row.basis.into(),
            break_glass: row.basis == Basis::BreakGlass,
            relationship_id: row
                .relationship_id
                .map(|relationship| NodeId::Relationship { relationship }.id()),
            basis_sequence: row.basis_sequence.map(BigInt),
            refusal: row.refusal,
            detail: row.detail,
            request_id: ID(row.request_id),
            client_address: row.client_address,
            attempts: i32::try_from(row.attempts).unwrap_or(i32::MAX),
            first_at: row.first_at,
        })
    }
}

/// One page of the access trail within the caller's organisation, newest
/// first; the cursor is a record's position.
async fn search(
    ctx: &Context<'_>,
    caller: &Caller,
    filter: Filter,
    window: &Window,
) -> Result<Page<AccessEntry>, ApiError> {
    let svc = service(ctx);
    let scope = Scope {
        organisation: &caller.organisation,
    };
    let rows = trail::search(
        &svc.engine,
        &svc.db,
        scope,
        &filter,
        Order::NewestFirst,
        window.fetch(),
    )
    .await?;
    let entries = rows
        .into_iter()
        .map(AccessEntry::try_from)
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Page::forward(window, entries, |e| e.position.to_string()))
}

/// Up to `limit` records of the trail within the caller's organisation,
/// for a bounded answer (`whoCouldSee`).
async fn search_all(
    ctx: &Context<'_>,
    caller: &Caller,
    filter: Filter,
    order: Order,
    limit: i64,
) -> Result<Vec<AccessEntry>, ApiError> {
    let svc = service(ctx);
    let scope = Scope {
        organisation: &caller.organisation,
    };
    let rows = trail::search(&svc.engine, &svc.db, scope, &filter, order, limit).await?;
    rows.into_iter().map(AccessEntry::try_from).collect()
}

/// A forward window of the trail (`first` 1-500, default 100).
fn trail_window(first: Option<i32>, after: Option<&str>) -> Result<Window, ApiError> {
    Window::forward("trail", first, after, TRAIL_PAGE_DEFAULT, TRAIL_PAGE_MAX)
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
    if from >= to {
        return Err(ApiError::BadInput(
            "field `from` must be before field `to`".into(),
        ));
    }
    Ok(())
}

fn auditor(caller: &Caller) -> Result<(), ApiError> {
    if !caller.may(Duty::SearchTrail) {
        return Err(ApiError::Forbidden(
            "only auditors search the access trail".into(),
        ));
    }
    Ok(())
}

/// Checks that `subject` has a portal in the caller's organisation.
async fn in_organisation(
    ctx: &Context<'_>,
    caller: &Caller,
    subject: Uuid,
) -> Result<(), ApiError> {
    let org = service(ctx).portal_organisation(subject).await?;
    if org.as_deref() != Some(caller.organisation.as_str()) {
        return Err(ApiError::NotFound(format!(
            "no portal {subject} in your organisation"
        )));
    }
    Ok(())
}

fn ts(t: DateTime<Utc>) -> String {
    projections::db::ts(t)
}

/// The relationships a service user has ever had in their organisation:
/// (relationship, provider, provider name).
async fn relationships_of(
    ctx: &Context<'_>,
    user: Uuid,
    organisation: &str,
) -> Result<Vec<(Uuid, Uuid, Option<String>)>, ApiError> {
    let svc = service(ctx);
    let scope = Scope { organisation };
    let rows = projections::read::care::relationships(
        &svc.engine,
        &svc.db,
        scope,
        Party::User(user),
        true,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name = r.provider.map(|p| p.display_name);
            (r.relationship_id, r.provider_id, name)
        })
        .collect())
}

/// Reads of the access trail.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The caller's own access log (service users): break-glass openings of
    /// their crisis plan first, then every read of their portal by someone else,
    /// allowed or refused, newest first, a page at a time. This read is itself
    /// recorded.
    async fn my_access_log(&self, ctx: &Context<'_>) -> async_graphql::Result<AccessLog> {
        let caller = caller(ctx)?;
        if !caller.may(Duty::KeepPortal) {
            return Err(ApiError::Forbidden("only service users have an access log".into()).into());
        }
        let svc = service(ctx);
        crate::context::own_portal_here(svc, &caller).await?;
        record_trail_read(
            ctx,
            &caller,
            Some(caller.subject),
            Basis::Owner,
            "own access log".into(),
        )?;
        let mut break_glass = Vec::new();
        for (relationship_id, provider_id, provider_name) in
            relationships_of(ctx, caller.subject, &caller.organisation).await?
        {
            for event in svc.relationship_events(relationship_id).await? {
                if let CareEvent::BreakGlassOpened {
                    code,
                    reason,
                    until,
                    at,
                } = event
                {
                    break_glass.push(BreakGlassOpening {
                        relationship_id: NodeId::Relationship {
                            relationship: relationship_id,
                        }
                        .id(),
                        provider_id: person_id(provider_id),
                        provider_name: provider_name.clone(),
                        reason: code.into(),
                        explanation: reason,
                        opened_at: at,
                        until,
                    });
                }
            }
        }
        break_glass.sort_by_key(|b| std::cmp::Reverse(b.opened_at));
        Ok(AccessLog { break_glass })
    }

    /// Auditors: the access trail of the organisation, newest first, narrowed by
    /// subject, reader, section (`core`, ..., `access_log`) and period
    /// [`from`, `to`), a page at a time: `first` 1-500 (default 100) after the
    /// cursor `after`. Never portal content. This read is itself recorded.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::paging::cost(first, None, TRAIL_PAGE_DEFAULT, child_complexity)"
    )]
    async fn access_trail(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The service user whose portal or log was read: their person id; anyone's when omitted."
        )]
        subject_id: Option<ID>,
        #[graphql(desc = "The reader: their person id; any reader when omitted.")]
        reader_id: Option<ID>,
        #[graphql(
            desc = "What was read: a section of the portal or the access log; any when omitted."
        )]
        section: Option<AccessSection>,
        #[graphql(
            desc = "The start of the period (inclusive), before `to`; no lower bound when omitted."
        )]
        from: Option<DateTime<Utc>>,
        #[graphql(desc = "The end of the period (exclusive); no upper bound when omitted.")]
        to: Option<DateTime<Utc>>,
        #[graphql(desc = "How many entries, counted from the newest (1-500, default 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<AccessEntryConnection> {
        let caller = caller(ctx)?;
        auditor(&caller)?;
        let subject_id = subject_id.as_ref().map(ids::person).transpose()?;
        let reader_id = reader_id.as_ref().map(ids::person).transpose()?;
        let window = trail_window(first, after.as_deref())?;
        let before_position = window.after_number()?;
        if let (Some(from), Some(to)) = (from, to) {
            check_period(from, to)?;
        }
        if let Some(subject) = subject_id {
            in_organisation(ctx, &caller, subject).await?;
        }
        let detail = serde_json::json!({
            "subject_id": subject_id, "reader_id": reader_id, "section": section.map(AccessSection::stored),
            "from": from, "to": to, "before_position": before_position,
        })
        .to_string();
        record_trail_read(ctx, &caller, subject_id, Basis::Audit, detail)?;
        let filter = Filter {
            subject: subject_id,
            reader: reader_id,
            section: section.map(|s| s.stored().to_string()),
            from,
            to,
            before_position,
            ..Filter::default()
        };
        Ok(AccessEntryConnection(
            search(ctx, &caller, filter, &window).await?,
        ))
    }

    /// Auditors: who could read a section of a service user's portal during
    /// [`from`, `to`) (a day: midnight to midnight), answered from the history
    /// of their care relationships and not from today's grants, and who
    /// actually read it then. This read is itself recorded.
    async fn who_could_see(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service user: their person id, or their control panel's global id.")]
        subject_id: ID,
        #[graphql(desc = "The section of the service user's portal.")] section: PortalSection,
        #[graphql(desc = "The start of the period (inclusive), before `to`.")] from: DateTime<Utc>,
        #[graphql(desc = "The end of the period (exclusive).")] to: DateTime<Utc>,
    ) -> async_graphql::Result<SectionExposure> {
        let caller = caller(ctx)?;
        let subject_id = ids::person(&subject_id)?;
        auditor(&caller)?;
        check_period(from, to)?;
        in_organisation(ctx, &caller, subject_id).await?;
        let section = Section::from(section);
        let detail = serde_json::json!({
            "subject_id": subject_id, "section": section.as_str(), "from": from, "to": to,
        })
        .to_string();
        record_trail_read(ctx, &caller, Some(subject_id), Basis::Audit, detail)?;
        let svc = service(ctx);
        let mut could_see = Vec::new();
        for (relationship_id, provider_id, provider_name) in
            relationships_of(ctx, subject_id, &caller.organisation).await?
        {
            let events = svc.relationship_events(relationship_id).await?;
            for window in care::windows(&events) {
                if window.section != section || !window.overlaps(from, to) {
                    continue;
                }
                let (reason, explanation) =
                    match events.get((window.sequence as usize).saturating_sub(1)) {
                        Some(CareEvent::BreakGlassOpened { code, reason, .. }) => {
                            (Some((*code).into()), Some(reason.clone()))
                        }
                        _ => (None, None),
                    };
                could_see.push(AccessWindow {
                    reason,
                    explanation,
                    provider_id: person_id(provider_id),
                    provider_name: provider_name.clone(),
                    relationship_id: NodeId::Relationship {
                        relationship: relationship_id,
                    }
                    .id(),
                    basis: match window.kind {
                        WindowKind::Grant => AccessBasis::Grant,
                        WindowKind::BreakGlass => AccessBasis::BreakGlass,
                    },
                    from: window.from,
                    to: window.to,
                    basis_sequence: BigInt(window.sequence),
                });
            }
        }
        could_see.sort_by(|a, b| (a.from, &*a.relationship_id).cmp(&(b.from, &*b.relationship_id)));
        let filter = Filter {
            subject: Some(subject_id),
            section: Some(section.as_str().to_string()),
            disclosures_only: true,
            from: Some(from),
            to: Some(to),
            ..Filter::default()
        };
        let looked = search_all(ctx, &caller, filter, Order::OldestFirst, LOOKED_MAX + 1).await?;
        if looked.len() as i64 > LOOKED_MAX {
            return Err(ApiError::BadInput(format!(
                "more than {LOOKED_MAX} reads in the period: ask for a shorter one"
            ))
            .into());
        }
        Ok(SectionExposure { could_see, looked })
    }

    /// Auditors: every break-glass opening in the organisation opened during
    /// [`from`, `to`), oldest first, with how many reads were made under
    /// each (more than 500 is refused: ask for a shorter period). This read
    /// is itself recorded.
    async fn break_glass_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The start of the period (inclusive), before `to`.")] from: DateTime<Utc>,
        #[graphql(desc = "The end of the period (exclusive).")] to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<BreakGlassReportEntry>> {
        let caller = caller(ctx)?;
        auditor(&caller)?;
        check_period(from, to)?;
        let detail =
            serde_json::json!({ "report": "break_glass", "from": from, "to": to }).to_string();
        record_trail_read(ctx, &caller, None, Basis::Audit, detail)?;
        let svc = service(ctx);
        let scope = Scope {
            organisation: &caller.organisation,
        };
        let openings =
            projections::read::care::break_glass_openings(&svc.engine, &svc.db, scope, None)
                .await
                .map_err(ApiError::from)?;
        let mut report = Vec::new();
        for opening in openings {
            let CareEvent::BreakGlassOpened {
                code,
                reason,
                until,
                at,
            } = opening.event
            else {
                continue;
            };
            if at < from || at >= to {
                continue;
            }
            if report.len() == REPORT_MAX {
                return Err(ApiError::BadInput(format!(
                    "more than {REPORT_MAX} break-glass openings in the period: ask for a shorter one"
                ))
                .into());
            }
            let filter = Filter {
                subject: Some(opening.user_id),
                reader: Some(opening.provider_id),
                section: Some(Section::CrisisPlan.as_str().to_string()),
                disclosures_only: true,
                from: Some(at),
                to: Some(until + chrono::Duration::seconds(1)),
                ..Filter::default()
            };
            let reads = search_all(ctx, &caller, filter, Order::OldestFirst, 10_000)
                .await?
                .iter()
                .filter(|e| {
                    e.break_glass
                        && e.basis_sequence.as_ref().map(|b| b.0) == Some(opening.sequence)
                })
                .count();
            report.push(BreakGlassReportEntry {
                relationship_id: NodeId::Relationship {
                    relationship: opening.relationship_id,
                }
                .id(),
                subject_id: person_id(opening.user_id),
                provider_id: person_id(opening.provider_id),
                reason: code.into(),
                explanation: reason,
                opened_at: at,
                until,
                basis_sequence: BigInt(opening.sequence),
                reads: i32::try_from(reads).unwrap_or(i32::MAX),
            });
        }
        Ok(report)
    }

    /// The accounting of disclosures of one service user's portal over
    /// [`from`, `to`), as CSV (RFC 4180, header row): every read of their
    /// portal content by someone else, oldest first (more than 100,000 rows is refused:
    /// export shorter periods). Fields a spreadsheet would read as formulas start with `'`.
    /// Auditors ask for anyone in their organisation; a service user for
    /// themselves (`subjectId` omitted). This read is itself recorded.
    async fn disclosures_csv(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The service user whose disclosures are listed: their person id; auditors must give it, a service user omits it for themselves."
        )]
        subject_id: Option<ID>,
        #[graphql(desc = "The start of the period (inclusive), before `to`.")] from: DateTime<Utc>,
        #[graphql(desc = "The end of the period (exclusive).")] to: DateTime<Utc>,
    ) -> async_graphql::Result<String> {
        let caller = caller(ctx)?;
        let subject_id = subject_id.as_ref().map(ids::person).transpose()?;
        check_period(from, to)?;
        let (subject, basis) = if caller.may(Duty::SearchTrail) {
            let subject = subject_id
                .ok_or_else(|| ApiError::BadInput("field `subjectId` is required".into()))?;
            in_organisation(ctx, &caller, subject).await?;
            (subject, Basis::Audit)
        } else if caller.may(Duty::KeepPortal) && subject_id.is_none_or(|s| s == caller.subject) {
            crate::context::own_portal_here(service(ctx), &caller).await?;
            (caller.subject, Basis::Owner)
        } else {
            return Err(ApiError::Forbidden(
                "only auditors, and service users for themselves, export disclosures".into(),
            )
            .into());
        };
        let detail = serde_json::json!({ "subject_id": subject, "from": from, "to": to, "export": "disclosures_csv" })
            .to_string();
        record_trail_read(ctx, &caller, Some(subject), basis, detail)?;
        let filter = Filter {
            subject: Some(subject),
            disclosures_only: true,
            from: Some(from),
            to: Some(to),
            ..Filter::default()
        };
        let mut rows = search_all(
            ctx,
            &caller,
            filter,
            Order::OldestFirst,
            DISCLOSURES_MAX + 1,
        )
        .await?;
        if basis == Basis::Owner {
            // As in their access log: who, when, what, on what grounds; not
            // the readers' addresses or request ids.
            for row in &mut rows {
                row.client_address = None;
                row.request_id = ID::default();
            }
        }
        if rows.len() as i64 > DISCLOSURES_MAX {
            return Err(ApiError::BadInput(format!(
                "more than {DISCLOSURES_MAX} disclosures in the period: export shorter periods"
            ))
            .into());
        }
        Ok(disclosures(&rows))
    }
}

/// The CSV of an accounting of disclosures.
pub fn disclosures(rows: &[AccessEntry]) -> String {
    let mut out = String::from(
        "at,reader_id,reader_name,reader_role,reader_organisation,section,query,basis,relationship_id,basis_sequence,request_id,client_address\r\n",
    );
    for r in rows {
        let basis = match r.basis {
            AccessBasis::BreakGlass => "break_glass",
            _ => "grant",
        };
        let fields = [
            ts(r.at),
            r.reader_id.to_string(),
            r.reader_name.clone().unwrap_or_default(),
            r.reader_role.as_str().to_string(),
            r.reader_organisation.clone(),
            r.section.stored().to_string(),
            r.query.clone(),
            basis.to_string(),
            // The relationship's own uuid, as in every other export.
            r.relationship_id
                .as_ref()
                .and_then(|id| NodeId::decode(id))
                .and_then(|node| match node {
                    NodeId::Relationship { relationship } => Some(relationship.to_string()),
                    _ => None,
                })
                .unwrap_or_default(),
            r.basis_sequence.map(|s| s.to_string()).unwrap_or_default(),
            r.request_id.to_string(),
            r.client_address.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field, quoted when it holds a comma, quote or line break. A
/// field a spreadsheet would take for a formula (a provider could name
/// themselves `=HYPERLINK(...)`) is prefixed with `'`.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("Kari"), "Kari");
        assert_eq!(csv_field("Nordmann, Kari"), "\"Nordmann, Kari\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
