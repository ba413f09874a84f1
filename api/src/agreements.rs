//! GraphQL for expectation agreements: how the two sides of a care
//! relationship will use the portal together. Read and changed only by the two
//! parties; changed only while the relationship is active. Every version is
//! kept and shown.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::agreement::{self as model, AgreementCommand, AgreementEvent};
use domain::care::{RelationshipState, Side};
use projections::read::Scope;
use uuid::Uuid;

use crate::care::{side_of, CareSide};
use crate::context::{caller, now, request, service};
use crate::error::ApiError;
use crate::ids::{self, NodeId};
use crate::payload::payload;
use crate::service::CommandOutcome;

/// Who takes the initiative in using the portal together.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::agreement::Initiative")]
pub enum Initiative {
    /// The service user.
    ServiceUser,
    /// The provider.
    Provider,
    /// Both.
    Both,
}

/// The unit of a reply time.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReplyUnit {
    /// Hours (1-720).
    Hours,
    /// Working days (1-20).
    WorkingDays,
}

/// How long a side may take to reply to a message.
#[derive(InputObject, SimpleObject, Clone, Copy)]
#[graphql(input_name = "ReplyTimeInput")]
pub struct ReplyTime {
    /// How many units: 1-720 hours or 1-20 working days.
    pub value: i32,
    /// Hours or working days.
    pub unit: ReplyUnit,
}

impl From<ReplyTime> for model::ReplyTime {
    fn from(r: ReplyTime) -> Self {
        match r.unit {
            ReplyUnit::Hours => model::ReplyTime::Hours(r.value),
            ReplyUnit::WorkingDays => model::ReplyTime::WorkingDays(r.value),
        }
    }
}

impl From<model::ReplyTime> for ReplyTime {
    fn from(r: model::ReplyTime) -> Self {
        match r {
            model::ReplyTime::Hours(value) => ReplyTime {
                value,
                unit: ReplyUnit::Hours,
            },
            model::ReplyTime::WorkingDays(value) => ReplyTime {
                value,
                unit: ReplyUnit::WorkingDays,
            },
        }
    }
}

/// The terms of one version of an agreement.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "AgreementTermsInput")]
pub struct Terms {
    /// Who takes the initiative.
    pub initiative: Initiative,
    /// How often the provider looks in on the portal, in days (1-90).
    pub provider_looks_in_days: i32,
    /// How soon the service user replies to a message.
    pub user_replies_within: ReplyTime,
    /// How soon the provider replies to a message.
    pub provider_replies_within: ReplyTime,
    /// Whether the portal is opened together in appointments.
    pub opened_together: bool,
    /// Anything else the two agree (up to 2000 characters).
    #[graphql(default)]
    pub notes: String,
}

impl From<Terms> for model::Terms {
    fn from(t: Terms) -> Self {
        model::Terms {
            initiative: t.initiative.into(),
            provider_looks_in_days: t.provider_looks_in_days,
            user_replies_within: t.user_replies_within.into(),
            provider_replies_within: t.provider_replies_within.into(),
            opened_together: t.opened_together,
            notes: t.notes,
        }
    }
}

impl From<model::Terms> for Terms {
    fn from(t: model::Terms) -> Self {
        Terms {
            initiative: t.initiative.into(),
            provider_looks_in_days: t.provider_looks_in_days,
            user_replies_within: t.user_replies_within.into(),
            provider_replies_within: t.provider_replies_within.into(),
            opened_together: t.opened_together,
            notes: t.notes,
        }
    }
}

/// What became of a proposed version.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::agreement::Outcome")]
pub enum VersionOutcome {
    /// Waiting for the other side.
    Pending,
    /// In force now.
    InForce,
    /// Was in force until a later version was accepted.
    Superseded,
    /// The other side declined it.
    Declined,
    /// The other side answered with a counter-proposal.
    Countered,
    /// Its proposer withdrew it.
    Withdrawn,
}

/// One version of an agreement.
#[derive(SimpleObject, Clone)]
pub struct AgreementVersion {
    /// Its number, from 1.
    pub version: i32,
    /// Who proposed it.
    pub proposed_by: CareSide,
    /// When.
    pub proposed_at: DateTime<Utc>,
    /// True when it answered the other side's proposal.
    pub counter: bool,
    /// What became of it.
    pub outcome: VersionOutcome,
    /// When it was accepted, declined, countered or withdrawn.
    pub decided_at: Option<DateTime<Utc>>,
    /// The terms.
    pub terms: Terms,
}

/// The expectation agreement of a care relationship.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Agreement")]
pub struct AgreementView {
    /// The agreement's global id.
    pub id: ID,
    /// The global id of the care relationship it is part of.
    pub relationship_id: ID,
    /// The version in force, if one was ever accepted.
    pub in_force: Option<AgreementVersion>,
    /// The proposal waiting for an answer, if any.
    pub pending: Option<AgreementVersion>,
    /// Every version ever proposed, oldest first.
    pub versions: Vec<AgreementVersion>,
}

/// Every version and what became of it (`domain::agreement::versions`).
fn view(relationship_id: Uuid, events: Vec<AgreementEvent>) -> AgreementView {
    let versions: Vec<AgreementVersion> = model::versions(events)
        .into_iter()
        .map(|v| AgreementVersion {
            version: v.version,
            proposed_by: v.proposed_by.into(),
            proposed_at: v.proposed_at,
            counter: v.counter,
            outcome: v.outcome.into(),
            decided_at: v.decided_at,
            terms: v.terms.into(),
        })
        .collect();
    let find = |outcome| versions.iter().find(|v| v.outcome == outcome).cloned();
    AgreementView {
        id: NodeId::Agreement {
            relationship: relationship_id,
        }
        .id(),
        relationship_id: NodeId::Relationship {
            relationship: relationship_id,
        }
        .id(),
        in_force: find(VersionOutcome::InForce),
        pending: find(VersionOutcome::Pending),
        versions: versions.clone(),
    }
}

/// The caller's side in the relationship (NOT_FOUND for non-parties,
/// FORBIDDEN for roles without relationships), and whether it is active.
async fn party(ctx: &Context<'_>, relationship_id: Uuid) -> Result<(Side, bool), ApiError> {
    let (svc, caller) = (service(ctx), caller(ctx)?);
    if caller.care_side().is_none() {
        return Err(ApiError::Forbidden(
            "only service users and providers have care relationships".into(),
        ));
    }
    let relationship = svc.relationship(relationship_id).await?;
    let side = side_of(&caller, &relationship)?;
    Ok((side, relationship.state == RelationshipState::Active))
}

/// How one side keeps the agreement.
#[derive(SimpleObject, Clone)]
pub struct SideKeeping {
    /// Messages from the other side not answered within the agreed time.
    pub overdue_replies: i32,
    /// The earliest time one of them fell due.
    pub overdue_since: Option<DateTime<Utc>>,
}

/// Whether each side keeps the agreement at a time.
#[derive(SimpleObject, Clone)]
pub struct AlignmentView {
    /// The global id of the care relationship.
    pub relationship_id: ID,
    /// The time the answer is for.
    pub as_of: DateTime<Utc>,
    /// The agreement version in force then; null when none was (nothing to keep).
    pub agreement_version: Option<i32>,
    /// True when neither side is behind.
    pub aligned: bool,
    /// The service user's replies.
    pub user: SideKeeping,
    /// The provider's replies.
    pub provider: SideKeeping,
    /// When the provider last read the portal (from the access trail).
    pub last_provider_look: Option<DateTime<Utc>>,
    /// When the provider's next look is due.
    pub provider_look_due: Option<DateTime<Utc>>,
    /// True when it is overdue.
    pub provider_look_overdue: bool,
}

/// Reads of agreements.
#[derive(Default)]
pub struct AgreementQuery;

#[Object]
impl AgreementQuery {
    /// Whether each side of one of the caller's relationships keeps its
    /// agreement: messages unanswered past the agreed reply time, and the
    /// provider's look-ins. Now, or `asOf` any past time (computed from the
    /// events as they stood then) or a future one (as things stand now).
    async fn alignment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(desc = "The time to answer for, at most a year ahead; now when omitted.")] as_of: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AlignmentView> {
        let relationship_id = ids::relationship(&relationship_id)?;
        party(ctx, relationship_id).await?;
        let global_id = NodeId::Relationship {
            relationship: relationship_id,
        }
        .id();
        let svc = service(ctx);
        let at = as_of.unwrap_or_else(|| now(ctx));
        if at > now(ctx) + chrono::Duration::days(366) {
            return Err(
                ApiError::BadInput("field `asOf` must be at most a year ahead".into()).into(),
            );
        }
        let relationship = svc.relationship(relationship_id).await?;
        let (user, provider) = (
            relationship.user_id.unwrap_or_default(),
            relationship.provider_id.unwrap_or_default(),
        );
        let mut agreement = model::Agreement::default();
        let mut since = None;
        for event in svc.agreement_events(relationship_id).await? {
            if event.at() > at {
                break;
            }
            if let AgreementEvent::AgreementAccepted { at, .. } = &event {
                since = Some(*at);
            }
            cqrs_es::Aggregate::apply(&mut agreement, event);
        }
        let empty = SideKeeping {
            overdue_replies: 0,
            overdue_since: None,
        };
        let (Some((version, terms)), Some(since)) = (agreement.accepted, since) else {
            return Ok(AlignmentView {
                relationship_id: global_id,
                as_of: at,
                agreement_version: None,
                aligned: true,
                user: empty.clone(),
                provider: empty,
                last_provider_look: None,
                provider_look_due: None,
                provider_look_overdue: false,
            });
        };
        // The relationship's threads: those with this user that the provider is in.
        let scope = Scope {
            organisation: &relationship.organisation,
        };
        let ids = projections::read::messaging::shared(&svc.engine, &svc.db, scope, user, provider)
            .await?;
        // Only this user's and this provider's messages, written while the
        // relationship was active, count under its agreement.
        let spans = crate::messaging::spans(svc, user, provider).await?;
        let mut written = Vec::new();
        for (n, id) in ids.into_iter().enumerate() {
            let (_, events) = svc.conversation(id).await?;
            for event in events {
                if let domain::messaging::ConversationEvent::MessagePosted {
                    by, side, at, ..
                } = event
                {
                    if (by == user || by == provider) && domain::care::within(&spans, at) {
                        written.push(domain::alignment::Written {
                            thread: n as u128,
                            side,
                            at,
                        });
                    }
                }
            }
        }
        let last_look =
            projections::read::trail::last_look(&svc.engine, &svc.db, scope, provider, user, at)
                .await?;
        let a = domain::alignment::alignment(&terms, since, &written, last_look, at);
        let keeping = |k: domain::alignment::Keeping| SideKeeping {
            overdue_replies: k.overdue_replies as i32,
            overdue_since: k.overdue_since,
        };
        Ok(AlignmentView {
            relationship_id: global_id,
            as_of: at,
            agreement_version: Some(version),
            aligned: a.aligned(),
            user: keeping(a.user),
            provider: keeping(a.provider),
            last_provider_look: a.last_look,
            provider_look_due: Some(a.look_due),
            provider_look_overdue: a.look_overdue,
        })
    }

    /// The expectation agreement of one of the caller's care relationships:
    /// the version in force, the proposal waiting, and every version ever
    /// proposed with what became of it. Also after the relationship ended.
    pub(crate) async fn agreement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
    ) -> async_graphql::Result<AgreementView> {
        let relationship_id = ids::relationship(&relationship_id)?;
        party(ctx, relationship_id).await?;
        let events = service(ctx).agreement_events(relationship_id).await?;
        Ok(view(relationship_id, events))
    }
}

/// The agreement a global id names, through `agreement`.
pub(crate) async fn agreement_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<AgreementView>> {
    let NodeId::Agreement { relationship } = id else {
        return Ok(None);
    };
    let relationship = ID(relationship.to_string());
    AgreementQuery.agreement(ctx, relationship).await.map(Some)
}

payload!(
    /// What a change to an expectation agreement returns.
    AgreementPayload { agreement: AgreementView = agreement_node, "The agreement after the change." }
);

/// Changes to agreements: only the two parties of an active relationship.
#[derive(Default)]
pub struct AgreementMutation;

async fn run<P: From<CommandOutcome>>(
    ctx: &Context<'_>,
    relationship_id: Uuid,
    idempotency_key: Option<String>,
    command: impl FnOnce(Side, DateTime<Utc>) -> AgreementCommand,
) -> async_graphql::Result<P> {
    let (side, active) = party(ctx, relationship_id).await?;
    if !active {
        return Err(ApiError::FailedPrecondition(
            "the care relationship is not active: its agreement can no longer change".into(),
        )
        .into());
    }
    let (svc, caller) = (service(ctx), caller(ctx)?);
    Ok(svc
        .run_command::<model::Agreement>(
            &caller,
            &request(ctx).request_id,
            crate::context::idempotency(ctx, idempotency_key),
            &relationship_id.to_string(),
            command(side, now(ctx)),
        )
        .await?
        .into())
}

#[Object]
impl AgreementMutation {
    /// Proposes terms: the first agreement, a revision of the one in force
    /// (which holds until the revision is accepted), or a counter-proposal to
    /// the other side's waiting proposal. The payload's `agreement.pending` is the proposal.
    async fn propose_agreement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(desc = "The proposed terms.")] terms: Terms,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<AgreementPayload> {
        run(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| AgreementCommand::Propose {
                by,
                terms: terms.into(),
                at,
            },
        )
        .await
    }

    /// Accepts the other side's waiting proposal: it is in force from now.
    async fn accept_agreement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<AgreementPayload> {
        run(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| AgreementCommand::Accept { by, at },
        )
        .await
    }

    /// Declines the other side's waiting proposal; what was in force stays.
    async fn decline_agreement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<AgreementPayload> {
        run(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| AgreementCommand::Decline { by, at },
        )
        .await
    }

    /// Withdraws the caller's own waiting proposal.
    async fn withdraw_agreement_proposal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The care relationship: its global id, or its uuid.")] relationship_id: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<AgreementPayload> {
        run(
            ctx,
            ids::relationship(&relationship_id)?,
            idempotency_key,
            |by, at| AgreementCommand::Withdraw { by, at },
        )
        .await
    }
}
