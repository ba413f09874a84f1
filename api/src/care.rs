//! GraphQL for working together: provider profiles, care relationships,
//! consent grants, break-glass, and the provider's caseload.

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::access::Duty;
use domain::care::{self, CareCommand, CareRelationship, ProviderCommand, Side, Standing};
use projections::read::care::Party;
use projections::read::Scope;
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::{self, NodeId};
use crate::paging::{self, connection, Page, Window};
use crate::payload::payload;
use crate::service::CommandOutcome;
use crate::toolbox::PortalSection;

/// What a provider does.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::care::Profession")]
pub enum Profession {
    /// Nurse.
    Nurse,
    /// Psychologist.
    Psychologist,
    /// Psychiatrist.
    Psychiatrist,
    /// Social worker.
    SocialWorker,
    /// Occupational therapist.
    OccupationalTherapist,
    /// Peer worker (lived experience).
    PeerWorker,
    /// Another profession.
    Other,
}

/// Why a provider opens a crisis plan without a grant.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::care::BreakGlassCode")]
pub enum BreakGlassReason {
    /// The service user may harm themselves.
    RiskToSelf,
    /// The service user may harm others.
    RiskToOthers,
    /// The service user is in crisis and cannot be reached or cannot consent.
    CannotConsent,
    /// Another emergency, explained in the free text.
    Other,
}

/// A side of a care relationship.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::care::Side")]
pub enum CareSide {
    /// The service user.
    ServiceUser,
    /// The provider.
    Provider,
}

/// Where a care relationship stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipStatus {
    /// Invited, waiting for the other side's answer.
    Invited,
    /// The invitation ran out before it was answered.
    Expired,
    /// Both sides agreed.
    Active,
    /// The invited side declined.
    Declined,
    /// Either side ended it, or the inviter withdrew the invitation.
    Ended,
}

/// Where a stored relationship stands at `at` (`domain::care::standing`);
/// a stored relationship that was never invited is a corrupt store.
fn status(
    state: care::RelationshipState,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<RelationshipStatus, ApiError> {
    Ok(match care::standing(state, expires_at, at) {
        Standing::Invited => RelationshipStatus::Invited,
        Standing::Expired => RelationshipStatus::Expired,
        Standing::Active => RelationshipStatus::Active,
        Standing::Declined => RelationshipStatus::Declined,
        Standing::Ended => RelationshipStatus::Ended,
        Standing::None => return Err(ApiError::internal("a stored relationship in state `none`")),
    })
}

/// A provider as others in the organisation see them.
#[derive(SimpleObject, Clone)]
pub struct ProviderProfile {
    /// The profile's global id.
    pub id: ID,
    /// The provider's person id (the subject of their token).
    pub person_id: ID,
    /// The provider's person id, for lookups.
    #[graphql(skip)]
    pub uuid: Uuid,
    /// Name shown to service users.
    pub display_name: String,
    /// What they do.
    pub profession: Profession,
    /// When they registered.
    pub registered_at: DateTime<Utc>,
}

/// A section granted to a provider.
#[derive(SimpleObject, Clone)]
pub struct GrantView {
    /// The section.
    pub section: PortalSection,
    /// When it was granted (or last changed).
    pub granted_at: DateTime<Utc>,
    /// When it runs out; null for "until revoked".
    pub until: Option<DateTime<Utc>>,
}

/// A care relationship between a service user and a provider.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Relationship {
    /// The relationship's global id.
    pub id: ID,
    /// The relationship's own uuid: the same for every relationship of the
    /// same pair (as in exports and events).
    pub uuid: Uuid,
    /// The service user.
    #[graphql(skip)]
    pub user_id: Uuid,
    /// The provider.
    #[graphql(skip)]
    pub provider_id: Uuid,
    /// The provider's profile.
    pub provider: Option<ProviderProfile>,
    /// Where it stands now.
    pub status: RelationshipStatus,
    /// Who sent the latest invitation.
    pub invited_by: CareSide,
    /// When the latest invitation was sent.
    pub invited_at: DateTime<Utc>,
    /// When a pending invitation runs out.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it became active.
    pub since: Option<DateTime<Utc>>,
    /// When it was declined or ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The sections granted now (expired grants left out).
    pub grants: Vec<GrantView>,
    /// Until when an open break-glass access to the crisis plan lasts, if one is open.
    pub break_glass_until: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Relationship {
    /// The service user's person id (also the id of their portal).
    async fn user_id(&self) -> ID {
        ids::person_id(self.user_id)
    }

    /// The provider's person id.
    async fn provider_id(&self) -> ID {
        ids::person_id(self.provider_id)
    }

    /// Every grant made in this relationship, oldest first, with how it
    /// ended: revoked, replaced by a later grant of the same section, or
    /// with the relationship (null while it stands, up to its `until`).
    async fn consent_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ConsentRecord>> {
        let events = service(ctx).relationship_events(self.uuid).await?;
        Ok(consent_history(events))
    }
}

/// How a grant stopped before its `until`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentEnding {
    /// The service user revoked it.
    Revoked,
    /// A later grant of the same section took its place.
    Replaced,
    /// The relationship ended (or the invitation was declined).
    RelationshipEnded,
}

/// One grant of a section, as it was made and as it ended.
#[derive(SimpleObject, Clone)]
pub struct ConsentRecord {
    /// Its place among the relationship's grants, from 1: stable, so that
    /// the relationship's uuid and this number name the grant.
    pub number: i32,
    /// The section granted.
    pub section: PortalSection,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When it runs (or ran) out; null for "until revoked".
    pub until: Option<DateTime<Utc>>,
    /// When it stopped before `until`; null while it stands.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it stopped; null while it stands.
    pub ending: Option<ConsentEnding>,
}

/// The grants a relationship's events made, oldest first, each with how it
/// ended.
pub(crate) fn consent_history(events: Vec<domain::care::CareEvent>) -> Vec<ConsentRecord> {
    use domain::care::CareEvent;
    let mut records: Vec<ConsentRecord> = Vec::new();
    let end = |records: &mut Vec<ConsentRecord>,
               section: Option<PortalSection>,
               at: DateTime<Utc>,
               ending: ConsentEnding| {
        for r in records.iter_mut().filter(|r| r.ending.is_none()) {
            if section.is_none_or(|s| s == r.section) && r.until.is_none_or(|u| u > at) {
                r.ended_at = Some(at);
                r.ending = Some(ending);
            }
        }
    };
    for event in events {
        match event {
            CareEvent::ConsentGranted { section, until, at } => {
                end(
                    &mut records,
                    Some(section.into()),
                    at,
                    ConsentEnding::Replaced,
                );
                records.push(ConsentRecord {
                    number: i32::try_from(records.len() + 1).unwrap_or(i32::MAX),
                    section: section.into(),
                    granted_at: at,
                    until,
                    ended_at: None,
                    ending: None,
                });
            }
            CareEvent::ConsentRevoked { section, at } => end(
                &mut records,
                Some(section.into()),
                at,
                ConsentEnding::Revoked,
            ),
            CareEvent::RelationshipEnded { at, .. } | CareEvent::InvitationDeclined { at, .. } => {
                end(&mut records, None, at, ConsentEnding::RelationshipEnded)
            }
            CareEvent::Invited { .. }
            | CareEvent::InvitationAccepted { .. }
            | CareEvent::BreakGlassOpened { .. } => {}
        }
    }
    records
}

/// Changes in one granted section since the provider last looked at it.
#[derive(SimpleObject, Clone)]
pub struct SectionChanges {
    /// The section.
    pub section: PortalSection,
    /// When the provider last read this section (from the access trail), if ever.
    pub last_looked_at: Option<DateTime<Utc>>,
    /// Events in it since then (all, if never).
    pub changes: i64,
}

/// One person on a provider's caseload.
#[derive(SimpleObject, Clone)]
pub struct CaseloadEntry {
    /// The relationship, with the sections granted now.
    pub relationship: Relationship,
    /// When the provider last read any granted section of this portal (from the access trail).
    pub last_looked_at: Option<DateTime<Utc>>,
    /// For each section granted now, when the provider last read it and how much changed since.
    pub changed_since_last_look: Vec<SectionChanges>,
}

/// Relationships of `party` in `organisation`, with profiles and the
/// grants in force now (read by `projections::read::care`).
async fn relationships(
    ctx: &Context<'_>,
    party: Party,
    organisation: &str,
    include_closed: bool,
) -> Result<Vec<Relationship>, ApiError> {
    let svc = service(ctx);
    let rows = projections::read::care::relationships(
        &svc.engine,
        &svc.db,
        Scope { organisation },
        party,
        include_closed,
    )
    .await?;
    let at = now(ctx);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let provider = match row.provider {
            Some(p) => Some(ProviderProfile {
                id: NodeId::ProviderProfile {
                    provider: row.provider_id,
                }
                .id(),
                person_id: ids::person_id(row.provider_id),
                uuid: row.provider_id,
                display_name: p.display_name,
                profession: p.profession.into(),
                registered_at: p.registered_at,
            }),
            None => None,
        };
        out.push(Relationship {
            id: NodeId::Relationship {
                relationship: row.relationship_id,
            }
            .id(),
            uuid: row.relationship_id,
            user_id: row.user_id,
            provider_id: row.provider_id,
            provider,
            status: status(row.state, row.expires_at, at)?,
            invited_by: row.invited_by.into(),
            invited_at: row.invited_at,
            expires_at: row.expires_at,
            since: row.since,
            ended_at: row.ended_at,
            grants: row
                .grants
                .into_iter()
                .filter(|g| g.until.is_none_or(|u| u > at))
                .map(|g| GrantView {
                    section: g.section.into(),
                    granted_at: g.granted_at,
                    until: g.until,
                })
                .collect(),
            break_glass_until: row.break_glass_until.filter(|u| *u > at),
        });
    }
    Ok(out)
}

/// Lists on a page, at most and by default.
pub const LIST_PAGE_MAX: usize = 100;
pub const LIST_PAGE_DEFAULT: usize = 100;

/// A window of a list held in memory (`first` or `last` 1-100).
pub(crate) fn list_window(
    list: &'static str,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<Window, ApiError> {
    Window::new(
        list,
        first,
        after.as_deref(),
        last,
        before.as_deref(),
        LIST_PAGE_DEFAULT,
        LIST_PAGE_MAX,
    )
}

/// Relationships in the order of their latest invitation.
fn relationship_key(r: &Relationship) -> String {
    format!(
        "{}:{}",
        paging::ordered(r.invited_at.timestamp_micros()),
        r.uuid
    )
}

connection!(
    /// A page of providers, by name.
    ProviderProfileConnection,
    ProviderProfileEdge,
    ProviderProfile
);
connection!(
    /// A page of care relationships, oldest invitation first.
    RelationshipConnection,
    RelationshipEdge,
    Relationship
);
connection!(
    /// A page of a provider's caseload, oldest invitation first.
    CaseloadEntryConnection,
    CaseloadEntryEdge,
    CaseloadEntry
);

/// The providers registered in the caller's organisation, by name (at most 1,000).
pub(crate) async fn all_providers(ctx: &Context<'_>) -> Result<Vec<ProviderProfile>, ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    let scope = Scope {
        organisation: &caller.organisation,
    };
    projections::read::care::providers(&svc.engine, &svc.db, scope)
        .await?
        .into_iter()
        .map(|row| {
            Ok(ProviderProfile {
                id: NodeId::ProviderProfile {
                    provider: row.provider_id,
                }
                .id(),
                person_id: ids::person_id(row.provider_id),
                uuid: row.provider_id,
                profession: row.profile.profession.into(),
                display_name: row.profile.display_name,
                registered_at: row.profile.registered_at,
            })
        })
        .collect()
}

/// The caller's care relationships (FORBIDDEN for roles without any).
pub(crate) async fn my_relationships(
    ctx: &Context<'_>,
    include_closed: bool,
) -> Result<Vec<Relationship>, ApiError> {
    let caller = caller(ctx)?;
    let party = match caller.care_side() {
        Some(Side::ServiceUser) => Party::User(caller.subject),
        Some(Side::Provider) => Party::Provider(caller.subject),
        None => {
            return Err(ApiError::Forbidden(
                "only service users and providers have care relationships".into(),
            ))
        }
    };
    relationships(ctx, party, &caller.organisation, include_closed).await
}

/// The provider profile a global id names, through `providers`.
pub(crate) async fn provider_profile_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ProviderProfile>> {
    let NodeId::ProviderProfile { provider } = id else {
        return Ok(None);
    };
    Ok(all_providers(ctx)
        .await?
        .into_iter()
        .find(|p| p.uuid == provider))
}

/// The care relationship a global id names, through `careRelationships`.
pub(crate) async fn relationship_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<Relationship>> {
    let NodeId::Relationship { relationship } = id else {
        return Ok(None);
    };
    let all = my_relationships(ctx, true).await?;
    Ok(all.into_iter().find(|r| r.uuid == relationship))
}

payload!(
    /// What saving a provider profile returns.
    ProviderProfilePayload { provider_profile: ProviderProfile = provider_profile_node, "The profile after the change." }
);
payload!(
    /// What a change to a care relationship returns.
    RelationshipPayload { relationship: Relationship = relationship_node, "The relationship after the change." }
);

/// Reads about working together.
#[derive(Default)]
pub struct CareQuery;

#[Object]
impl CareQuery {
    /// The providers registered in the caller's organisation, by name (at
    /// most 1,000), a page at a time: `first` or `last` 1-100 (default: the
    /// first 100), after or before a cursor.
    #[graphql(complexity = "crate::paging::cost(first, last, LIST_PAGE_DEFAULT, child_complexity)")]
    async fn providers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many providers from the start, by name (1-100, default 100).")] first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(
            desc = "How many providers from the end (1-100), to page back; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<ProviderProfileConnection> {
        let window = list_window("providers", first, after, last, before)?;
        let keyed = all_providers(ctx)
            .await?
            .into_iter()
            .map(|p| (format!("{}:{}", p.display_name.to_lowercase(), p.uuid), p))
            .collect();
        Ok(ProviderProfileConnection(Page::slice(&window, keyed)))
    }

    /// The caller's care relationships, oldest invitation first: a service
    /// user's team, or a provider's relationships including pending
    /// invitations. Declined and ended ones only with `includeClosed`. A page
    /// at a time: `first` or `last` 1-100 (default: the first 100), after or
    /// before a cursor.
    #[graphql(complexity = "crate::paging::cost(first, last, LIST_PAGE_DEFAULT, child_complexity)")]
    async fn care_relationships(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = false,
            desc = "Whether declined and ended relationships are listed too (default false)."
        )]
        include_closed: bool,
        #[graphql(desc = "How many relationships from the start (1-100, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(
            desc = "How many relationships from the end (1-100), to page back; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<RelationshipConnection> {
        let window = list_window("relationships", first, after, last, before)?;
        let keyed = my_relationships(ctx, include_closed)
            .await?
            .into_iter()
            .map(|r| (relationship_key(&r), r))
            .collect();
        Ok(RelationshipConnection(Page::slice(&window, keyed)))
    }

    /// A provider's caseload: every active relationship, the sections granted
    /// now, and for each of them when the provider last read it (from the
    /// access trail) and how many changes it has had since. Sections not
    /// granted are not counted. Grants are decided from the relationships'
    /// events, as reads are, and each count is recorded in the access trail.
    ///
    /// A page at a time, by oldest invitation: `first` or `last` 1-100
    /// (default: the first 100), after or before a cursor; only the page's
    /// counts are computed and recorded.
    #[graphql(complexity = "crate::paging::cost(first, last, LIST_PAGE_DEFAULT, child_complexity)")]
    async fn caseload(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many caseload entries from the start (1-100, default 100).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(
            desc = "How many caseload entries from the end (1-100), to page back; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<CaseloadEntryConnection> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(Duty::KeepProfile) {
            return Err(ApiError::Forbidden("only providers have a caseload".into()).into());
        }
        let window = list_window("caseload", first, after, last, before)?;
        let at = now(ctx);
        // The projection lists the caseload; the events decide what is granted now.
        let mut active = Vec::new();
        for mut relationship in relationships(
            ctx,
            Party::Provider(caller.subject),
            &caller.organisation,
            false,
        )
        .await?
        {
            let current = svc.relationship(relationship.uuid).await?;
            if current.state != care::RelationshipState::Active
                || current.organisation != caller.organisation
            {
                continue;
            }
            relationship.status = RelationshipStatus::Active;
            relationship.grants = current
                .granted(at)
                .into_iter()
                .map(|(section, grant)| GrantView {
                    section: section.into(),
                    granted_at: grant.granted_at,
                    until: grant.until,
                })
                .collect();
            active.push((relationship, current));
        }
        // The page first: only its counts are computed and recorded.
        let keyed = active
            .into_iter()
            .map(|(r, current)| (relationship_key(&r), (r, current)))
            .collect();
        let page = Page::slice(&window, keyed);
        let portals: Vec<Uuid> = page.edges.iter().map(|(_, (r, _))| r.user_id).collect();
        let activity = projections::read::caseload::activity(
            &svc.engine,
            &svc.db,
            Scope {
                organisation: &caller.organisation,
            },
            caller.subject,
            &portals,
        )
        .await?;
        let page = page.map(|(relationship, current)| {
            let mut last_looked_at: Option<DateTime<Utc>> = None;
            let mut changed = Vec::new();
            let mut records = Vec::new();
            for (section, grant) in current.granted(at) {
                let seen = activity
                    .get(&(relationship.user_id, section))
                    .copied()
                    .unwrap_or_default();
                last_looked_at = last_looked_at.max(seen.last_looked_at);
                changed.push(SectionChanges {
                    section: section.into(),
                    last_looked_at: seen.last_looked_at,
                    changes: seen.changes,
                });
                records.push((section, grant.sequence));
            }
            (
                CaseloadEntry {
                    last_looked_at,
                    changed_since_last_look: changed,
                    relationship,
                },
                current.organisation,
                records,
            )
        });
        // Change counts tell of the portal: on the trail like any read.
        for (_, (entry, organisation, records)) in &page.edges {
            for (section, sequence) in records {
                let mut record = crate::access::record_of(
                    ctx,
                    &caller,
                    Some(entry.relationship.user_id),
                    organisation,
                    section.as_str(),
                );
                record.basis = domain::trail::Basis::Grant;
                record.relationship_id = Some(entry.relationship.uuid);
                record.basis_sequence = Some(*sequence);
                record.detail = Some("change count".into());
                crate::access::submit(ctx, &caller, record)?;
            }
        }
        Ok(CaseloadEntryConnection(page.map(|(entry, _, _)| entry)))
    }
}
/// Changes to care relationships and grants.
#[derive(Default)]
pub struct CareMutation;

/// The side the caller is on in `relationship`, or NOT_FOUND when they are
/// on neither (so nobody learns of relationships not theirs).
pub(crate) fn side_of(caller: &Caller, relationship: &CareRelationship) -> Result<Side, ApiError> {
    domain::access::relationship_side(&caller.actor(), relationship)
        .ok_or_else(|| ApiError::NotFound("no such care relationship".into()))
}

/// Checks that the caller is a party and runs a command on the relationship.
async fn on_relationship<P: From<CommandOutcome>>(
    ctx: &Context<'_>,
    relationship_id: Uuid,
    idempotency_key: Option<String>,
    command: impl FnOnce(Side, DateTime<Utc>) -> CareCommand,
) -> async_graphql::Result<P> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if caller.care_side().is_none() {
        return Err(ApiError::Forbidden(
            "only service users and providers have care relationships".into(),
        )
        .into());
    }
    let relationship = svc.relationship(relationship_id).await?;
    let side = side_of(&caller, &relationship)?;
    let command = command(side, now(ctx));
    Ok(svc
        .run_command::<CareRelationship>(
            &caller,
            &request(ctx).request_id,
            crate::context::idempotency(ctx, idempotency_key),
            &relationship_id.to_string(),
            command,
        )
        .await?
        .into())
}

/// True when the provider has a profile in the caller's organisation.
async fn registered(ctx: &Context<'_>, provider_id: Uuid, org: &str) -> Result<bool, ApiError> {
    let provider = service(ctx).provider(provider_id).await?;
    Ok(provider.organisation.as_deref() == Some(org))
}

#[Object]
impl CareMutation {
    /// A provider registers their profile in their organisation, or changes it.
    /// `displayName` 1-100 characters.
    async fn save_provider_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name shown to service users (1-100 characters).")]
        display_name: String,
        #[graphql(desc = "What the provider does.")] profession: Profession,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ProviderProfilePayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if !caller.may(Duty::KeepProfile) {
            return Err(ApiError::Forbidden("only providers have a profile".into()).into());
        }
        let command = ProviderCommand::SaveProfile {
            organisation: caller.organisation.clone(),
            display_name,
            profession: profession.into(),
            at: now(ctx),
        };
        Ok(svc
            .run_command::<care::Provider>(
                &caller,
                &request(ctx).request_id,
                crate::context::idempotency(ctx, idempotency_key),
                &caller.subject.to_string(),
                command,
            )
            .await?
            .into())
    }

    /// Invites someone into a care relationship: a service user invites a
    /// registered provider, a provider (registered) invites a service user whose
    /// portal is open, both in the caller's organisation. The invitation runs
    /// out after the configured time (14 days by default). `personId` is the
    /// invited person's id, or the global id of a provider's profile.
    async fn invite_to_care(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The person invited: their person id, or the global id of their provider profile or control panel."
        )]
        person_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let person_id = ids::person(&person_id)?;
        let org = caller.organisation.clone();
        let (user_id, provider_id, by) = match caller.care_side() {
            Some(Side::ServiceUser) => (caller.subject, person_id, Side::ServiceUser),
            Some(Side::Provider) => (person_id, caller.subject, Side::Provider),
            None => {
                return Err(ApiError::Forbidden(
                    "only service users and providers enter care relationships".into(),
                )
                .into())
            }
        };
        if svc.portal_organisation(user_id).await?.as_deref() != Some(org.as_str()) {
            return Err(ApiError::NotFound(match by {
                Side::ServiceUser => "open your portal before inviting a provider".into(),
                Side::Provider => format!("no open portal {user_id} in your organisation"),
            })
            .into());
        }
        if !registered(ctx, provider_id, &org).await? {
            return Err(ApiError::NotFound(match by {
                Side::ServiceUser => {
                    format!("no registered provider {provider_id} in your organisation")
                }
                Side::Provider => "register your provider profile first".into(),
            })
            .into());
        }
        let command = CareCommand::Invite {
            user_id,
            provider_id,
            organisation: org,
            by,
            lasts: svc.settings.care.invitation(),
            at: now(ctx),
        };
        Ok(svc
            .run_command::<CareRelationship>(
                &caller,
                &request(ctx).request_id,
                crate::context::idempotency(ctx, idempotency_key),
                &care::relationship_id(user_id, provider_id).to_string(),
                command,
            )
            .await?
            .into())
    }

    /// The invited side accepts a pending invitation.
    async fn accept_care_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::Accept { by, at },
        )
        .await
    }

    /// The invited side declines a pending invitation.
    async fn decline_care_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::Decline { by, at },
        )
        .await
    }

    /// Either side ends an active relationship; the inviter withdraws a pending
    /// invitation. Every grant ends with it.
    async fn end_care_relationship(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::End { by, at },
        )
        .await
    }

    /// The service user lets the provider of an active relationship read one
    /// section, until revoked or until `until` (a future time). Granting again
    /// replaces the end date. Takes effect for the very next read.
    async fn grant_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(desc = "The section of the portal the provider may read.")]
        section: PortalSection,
        #[graphql(desc = "When the grant runs out (a future time); until revoked when omitted.")]
        until: Option<DateTime<Utc>>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::Grant {
                by,
                section: section.into(),
                until,
                at,
            },
        )
        .await
    }

    /// The service user takes back a section; the provider's very next read of it is refused.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(desc = "The section of the portal to take back.")] section: PortalSection,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::Revoke {
                by,
                section: section.into(),
                at,
            },
        )
        .await
    }

    /// A provider in an active relationship opens the service user's crisis
    /// plan without a grant, stating why (`explanation` 1-1000 characters). It
    /// lasts the configured time (one hour by default), every read under it is
    /// flagged in the access trail, the service user hears of it live
    /// (`liveUpdates`, kind `BREAK_GLASS`) and sees it at the top of their
    /// access log, and auditors see it in `breakGlassReport`. One opening at
    /// a time, at most `care.break_glass_per_day` (3 by default) in any 24
    /// hours of a relationship, and at most
    /// `care.break_glass_per_provider_per_day` (10) by one provider in all
    /// their relationships: past any, FAILED_PRECONDITION.
    async fn break_glass(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(desc = "Why the crisis plan is opened, as a code.")] reason: BreakGlassReason,
        #[graphql(
            desc = "Why the crisis plan is opened, in the provider's words (1-1000 characters)."
        )]
        explanation: String,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<RelationshipPayload> {
        let svc = service(ctx);
        let lasts = svc.settings.care.break_glass_window();
        let per_day = svc.settings.care.break_glass_per_day;
        let provider_per_day = svc.settings.care.break_glass_per_provider_per_day;
        let caller = caller(ctx)?;
        let day = now(ctx) - chrono::Duration::hours(24);
        let provider_openings = projections::read::care::break_glass_openings(
            &svc.engine,
            &svc.db,
            projections::read::Scope {
                organisation: &caller.organisation,
            },
            Some(caller.subject),
        )
        .await
        .map_err(ApiError::from)?
        .iter()
        .filter(
            |o| matches!(o.event, domain::care::CareEvent::BreakGlassOpened { at, .. } if at > day),
        )
        .count();
        on_relationship(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| CareCommand::BreakGlass {
                by,
                code: reason.into(),
                reason: explanation,
                lasts,
                per_day,
                provider_openings: u32::try_from(provider_openings).unwrap_or(u32::MAX),
                provider_per_day,
                at,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_relationship_never_invited_is_an_error() {
        let at = Utc::now();
        let state = care::RelationshipState::Ended;
        assert!(matches!(
            status(state, None, at),
            Ok(RelationshipStatus::Ended)
        ));
        let state = care::RelationshipState::Invited;
        assert!(matches!(
            status(state, Some(at), at),
            Ok(RelationshipStatus::Expired)
        ));
        assert!(status(care::RelationshipState::None, None, at).is_err());
    }

    #[test]
    fn each_grant_is_kept_with_how_it_ended() {
        use domain::care::CareEvent;
        use domain::portal::Section;
        let start = chrono::Utc::now();
        let t = |h: i64| start + chrono::Duration::hours(h);
        let history = consent_history(vec![
            CareEvent::InvitationAccepted {
                by: Side::Provider,
                at: t(0),
            },
            CareEvent::ConsentGranted {
                section: Section::Core,
                until: None,
                at: t(1),
            },
            CareEvent::ConsentGranted {
                section: Section::Medications,
                until: Some(t(3)),
                at: t(1),
            },
            // Replaced, then revoked.
            CareEvent::ConsentGranted {
                section: Section::Core,
                until: None,
                at: t(2),
            },
            CareEvent::ConsentRevoked {
                section: Section::Core,
                at: t(4),
            },
            CareEvent::ConsentGranted {
                section: Section::Network,
                until: None,
                at: t(5),
            },
            // The medications grant ran out at 3: the end touches what still stands.
            CareEvent::RelationshipEnded {
                by: Side::ServiceUser,
                at: t(6),
            },
        ]);
        let ends: Vec<(i32, Option<ConsentEnding>)> =
            history.iter().map(|r| (r.number, r.ending)).collect();
        assert_eq!(
            ends,
            vec![
                (1, Some(ConsentEnding::Replaced)),
                (2, None),
                (3, Some(ConsentEnding::Revoked)),
                (4, Some(ConsentEnding::RelationshipEnded)),
            ]
        );
        assert_eq!(history[0].ended_at, Some(t(2)));
        assert_eq!(history[1].until, Some(t(3)));
    }
}
