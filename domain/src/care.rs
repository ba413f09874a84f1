//! Working together: provider profiles, care relationships, consent grants and
//! break-glass access.
//!
//! One `Provider` aggregate per provider (id: the provider's subject id) holds
//! their profile. One `CareRelationship` aggregate per pair of service user and
//! provider (id: [`relationship_id`], derived from the pair) holds every
//! invitation, acceptance, ending, grant, revocation and break-glass opening
//! between them, so "is there already a relationship?" is a rule of one
//! aggregate and the whole story of a pair is one stream. A team is several
//! relationships around one user; a caseload is several around one provider.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::portal::Section;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type of provider profiles in the event store.
pub const PROVIDER_TYPE: &str = "Provider";
/// Aggregate type of care relationships in the event store.
pub const RELATIONSHIP_TYPE: &str = "CareRelationship";

/// Longest provider display name, in characters.
pub const DISPLAY_NAME_MAX: usize = 100;
/// Longest break-glass reason, in characters.
pub const REASON_MAX: usize = 1000;

/// A rule of a provider's profile refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The profile breaks a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Not this provider's to do ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
}

impl Refusal for ProviderError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::Input(input) => input.kind(),
            ProviderError::NotAllowed(_) => ErrorKind::Forbidden,
            ProviderError::NothingChanged(_) => ErrorKind::FailedPrecondition,
        }
    }
}

/// A rule of a care relationship refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CareError {
    /// A reason breaks a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The wrong side of the relationship asks ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("the care relationship is {state} and cannot be {action}")]
    RelationshipState {
        state: &'static str,
        action: &'static str,
    },
    #[error("the invitation expired at {0}")]
    InvitationExpired(DateTime<Utc>),
    #[error("field `{0}` must be a time in the future")]
    NotInFuture(&'static str),
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
    #[error("a break-glass opening of this crisis plan lasts until {0}")]
    BreakGlassOpen(DateTime<Utc>),
    #[error("break-glass was opened {0} times in this relationship in the last 24 hours, the most allowed")]
    BreakGlassLimit(u32),
    #[error(
        "you opened break-glass {0} times in the last 24 hours, the most allowed for one provider"
    )]
    BreakGlassProviderLimit(u32),
}

impl Refusal for CareError {
    fn kind(&self) -> ErrorKind {
        match self {
            CareError::Input(input) => input.kind(),
            CareError::NotAllowed(_) => ErrorKind::Forbidden,
            CareError::RelationshipState { .. }
            | CareError::InvitationExpired(_)
            | CareError::NothingChanged(_)
            | CareError::BreakGlassOpen(_)
            | CareError::BreakGlassLimit(_)
            | CareError::BreakGlassProviderLimit(_) => ErrorKind::FailedPrecondition,
            CareError::NotInFuture(_) => ErrorKind::BadInput,
        }
    }
}

/// The id of the care relationship between a service user and a provider:
/// the same pair always has the same id (a name-based UUID, version 8).
pub fn relationship_id(user_id: Uuid, provider_id: Uuid) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"portal care relationship\0")
        .chain_update(user_id.as_bytes())
        .chain_update(provider_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What a provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profession {
    Nurse,
    Psychologist,
    Psychiatrist,
    SocialWorker,
    OccupationalTherapist,
    PeerWorker,
    Other,
}

/// A provider's profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub organisation: Option<String>,
    pub display_name: String,
    pub profession: Option<Profession>,
    pub last_at: Option<DateTime<Utc>>,
}

/// What a provider asks of their profile.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderCommand {
    /// Registers the profile, or changes it when it exists.
    SaveProfile {
        organisation: String,
        display_name: String,
        profession: Profession,
        at: DateTime<Utc>,
    },
}

/// What happened to a provider's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProviderEvent {
    ProviderRegistered {
        organisation: String,
        display_name: String,
        profession: Profession,
        at: DateTime<Utc>,
    },
    ProviderProfileChanged {
        display_name: String,
        profession: Profession,
        at: DateTime<Utc>,
    },
}

/// A provider's profile: their name is theirs (`crate::personal`); the
/// profession stays clear (rules and research use it).
pub const PROVIDER_PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: PROVIDER_TYPE,
    events: &[
        crate::personal::Declared {
            event_type: "ProviderRegistered",
            owner: crate::personal::Owner::Aggregate,
            personal: &[crate::personal::text("display_name")],
            clear: &["organisation", "profession", "at"],
        },
        crate::personal::Declared {
            event_type: "ProviderProfileChanged",
            owner: crate::personal::Owner::Aggregate,
            personal: &[crate::personal::text("display_name")],
            clear: &["profession", "at"],
        },
    ],
};

impl DomainEvent for ProviderEvent {
    fn event_type(&self) -> String {
        match self {
            ProviderEvent::ProviderRegistered { .. } => "ProviderRegistered",
            ProviderEvent::ProviderProfileChanged { .. } => "ProviderProfileChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Provider {
    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: ProviderCommand) -> Result<Vec<ProviderEvent>, ProviderError> {
        let ProviderCommand::SaveProfile {
            organisation,
            display_name,
            profession,
            at,
        } = command;
        let display_name = text::required(&display_name, DISPLAY_NAME_MAX)
            .map_err(InputError::text("displayName"))?;
        let at = self.last_at.map_or(at, |last| at.max(last));
        match &self.organisation {
            None => Ok(vec![ProviderEvent::ProviderRegistered {
                organisation,
                display_name,
                profession,
                at,
            }]),
            Some(org) if *org != organisation => Err(ProviderError::NotAllowed(
                "this provider is registered in another organisation",
            )),
            Some(_) if display_name == self.display_name && Some(profession) == self.profession => {
                Err(ProviderError::NothingChanged("profile"))
            }
            Some(_) => Ok(vec![ProviderEvent::ProviderProfileChanged {
                display_name,
                profession,
                at,
            }]),
        }
    }
}

impl Aggregate for Provider {
    const TYPE: &'static str = PROVIDER_TYPE;
    type Command = ProviderCommand;
    type Event = ProviderEvent;
    type Error = ProviderError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProviderEvent::ProviderRegistered {
                organisation,
                display_name,
                profession,
                at,
            } => {
                self.organisation = Some(organisation);
                self.display_name = display_name;
                self.profession = Some(profession);
                self.last_at = Some(at);
            }
            ProviderEvent::ProviderProfileChanged {
                display_name,
                profession,
                at,
            } => {
                self.display_name = display_name;
                self.profession = Some(profession);
                self.last_at = Some(at);
            }
        }
    }
}

/// The two sides of a care relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    ServiceUser,
    Provider,
}

impl Side {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::ServiceUser => "service_user",
            Side::Provider => "provider",
        }
    }
}

/// Why a provider opens a crisis plan without a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakGlassCode {
    /// The service user may harm themselves.
    RiskToSelf,
    /// The service user may harm others.
    RiskToOthers,
    /// The service user is in crisis and cannot be reached or cannot consent.
    CannotConsent,
    /// Another emergency, explained in the free text.
    Other,
}

impl BreakGlassCode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakGlassCode::RiskToSelf => "risk_to_self",
            BreakGlassCode::RiskToOthers => "risk_to_others",
            BreakGlassCode::CannotConsent => "cannot_consent",
            BreakGlassCode::Other => "other",
        }
    }
}

/// Where a relationship stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipState {
    /// Never invited.
    #[default]
    None,
    /// One side invited the other, who has not answered.
    Invited,
    /// Both sides agreed; the provider follows the user.
    Active,
    /// The invitation was declined.
    Declined,
    /// Either side ended the relationship (or withdrew the invitation).
    Ended,
}

impl RelationshipState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipState::None => "none",
            RelationshipState::Invited => "invited",
            RelationshipState::Active => "active",
            RelationshipState::Declined => "declined",
            RelationshipState::Ended => "ended",
        }
    }
}

/// Where a relationship stands as seen at a time: its state, with an
/// invitation that was not answered before it expired seen as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    None,
    Invited,
    Expired,
    Active,
    Declined,
    Ended,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::None => "none",
            Standing::Invited => "invited",
            Standing::Expired => "expired",
            Standing::Active => "active",
            Standing::Declined => "declined",
            Standing::Ended => "ended",
        }
    }
}

/// Where a relationship in `state`, whose invitation expires at
/// `expires_at`, stands at `at`: an invitation is open until (not at) its
/// expiry, and one without an expiry is not open.
pub fn standing(
    state: RelationshipState,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Standing {
    match state {
        RelationshipState::None => Standing::None,
        RelationshipState::Invited if expires_at.is_some_and(|e| at < e) => Standing::Invited,
        RelationshipState::Invited => Standing::Expired,
        RelationshipState::Active => Standing::Active,
        RelationshipState::Declined => Standing::Declined,
        RelationshipState::Ended => Standing::Ended,
    }
}

/// A grant of one section: since when, until when, and which event gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub granted_at: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// Sequence number of the `ConsentGranted` event in the relationship's stream.
    pub sequence: i64,
}

/// An open break-glass access to the crisis plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    pub opened_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub code: BreakGlassCode,
    /// Sequence number of the `BreakGlassOpened` event.
    pub sequence: i64,
}

/// What allows a provider to read a section right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Grant(Grant),
    BreakGlass(BreakGlass),
}

/// A care relationship between one service user and one provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CareRelationship {
    pub user_id: Option<Uuid>,
    pub provider_id: Option<Uuid>,
    pub organisation: String,
    pub state: RelationshipState,
    pub invited_by: Option<Side>,
    pub expires_at: Option<DateTime<Utc>>,
    pub grants: BTreeMap<Section, Grant>,
    pub break_glass: Option<BreakGlass>,
    /// When break-glass was opened, the newest last (the latest 64 kept:
    /// enough for any daily limit).
    pub break_glass_openings: Vec<DateTime<Utc>>,
    /// Events applied so far: the sequence number of the last one.
    pub version: i64,
    pub last_at: Option<DateTime<Utc>>,
}

/// What the two sides ask of their relationship. `by` is the side the
/// caller is on; the service checks that the caller is that party.
#[derive(Debug, Clone, PartialEq)]
pub enum CareCommand {
    Invite {
        user_id: Uuid,
        provider_id: Uuid,
        organisation: String,
        by: Side,
        /// How long the invitation waits for an answer.
        lasts: chrono::Duration,
        at: DateTime<Utc>,
    },
    Accept {
        by: Side,
        at: DateTime<Utc>,
    },
    Decline {
        by: Side,
        at: DateTime<Utc>,
    },
    /// Ends an active relationship, or withdraws a pending invitation.
    End {
        by: Side,
        at: DateTime<Utc>,
    },
    Grant {
        by: Side,
        section: Section,
        until: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    Revoke {
        by: Side,
        section: Section,
        at: DateTime<Utc>,
    },
    BreakGlass {
        by: Side,
        code: BreakGlassCode,
        reason: String,
        /// How long the opening lasts.
        lasts: chrono::Duration,
        /// Most openings in this relationship in any 24 hours.
        per_day: u32,
        /// The provider's openings in all their relationships in the 24
        /// hours before `at` (counted by the caller from their events).
        provider_openings: u32,
        /// Most openings by one provider in any 24 hours.
        provider_per_day: u32,
        at: DateTime<Utc>,
    },
}

/// What happened in a relationship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CareEvent {
    Invited {
        relationship_id: Uuid,
        user_id: Uuid,
        provider_id: Uuid,
        organisation: String,
        by: Side,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    InvitationAccepted {
        by: Side,
        at: DateTime<Utc>,
    },
    InvitationDeclined {
        by: Side,
        at: DateTime<Utc>,
    },
    RelationshipEnded {
        by: Side,
        at: DateTime<Utc>,
    },
    ConsentGranted {
        section: Section,
        until: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    ConsentRevoked {
        section: Section,
        at: DateTime<Utc>,
    },
    BreakGlassOpened {
        code: BreakGlassCode,
        reason: String,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
}

/// A relationship's events: who, which section, until when stay clear (every
/// read is decided from them); a break-glass opening's words are the
/// provider's who wrote them (`crate::personal`).
pub const RELATIONSHIP_PERSONAL_DATA: crate::personal::Declarations =
    crate::personal::Declarations {
        aggregate_type: RELATIONSHIP_TYPE,
        events: &[
            crate::personal::Declared::clear(
                "Invited",
                &[
                    "relationship_id",
                    "user_id",
                    "provider_id",
                    "organisation",
                    "by",
                    "expires_at",
                    "at",
                ],
            ),
            crate::personal::Declared::clear("InvitationAccepted", &["by", "at"]),
            crate::personal::Declared::clear("InvitationDeclined", &["by", "at"]),
            crate::personal::Declared::clear("RelationshipEnded", &["by", "at"]),
            crate::personal::Declared::clear("ConsentGranted", &["section", "until", "at"]),
            crate::personal::Declared::clear("ConsentRevoked", &["section", "at"]),
            crate::personal::Declared {
                event_type: "BreakGlassOpened",
                owner: crate::personal::Owner::Actor,
                personal: &[crate::personal::text("reason")],
                clear: &["code", "until", "at"],
            },
        ],
    };

impl DomainEvent for CareEvent {
    fn event_type(&self) -> String {
        match self {
            CareEvent::Invited { .. } => "Invited",
            CareEvent::InvitationAccepted { .. } => "InvitationAccepted",
            CareEvent::InvitationDeclined { .. } => "InvitationDeclined",
            CareEvent::RelationshipEnded { .. } => "RelationshipEnded",
            CareEvent::ConsentGranted { .. } => "ConsentGranted",
            CareEvent::ConsentRevoked { .. } => "ConsentRevoked",
            CareEvent::BreakGlassOpened { .. } => "BreakGlassOpened",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl CareEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CareEvent::Invited { at, .. }
            | CareEvent::InvitationAccepted { at, .. }
            | CareEvent::InvitationDeclined { at, .. }
            | CareEvent::RelationshipEnded { at, .. }
            | CareEvent::ConsentGranted { at, .. }
            | CareEvent::ConsentRevoked { at, .. }
            | CareEvent::BreakGlassOpened { at, .. } => *at,
        }
    }
}

fn state_error(state: RelationshipState, action: &'static str) -> CareError {
    CareError::RelationshipState {
        state: state.as_str(),
        action,
    }
}

impl CareRelationship {
    /// True while an invitation waits for an answer and has not expired at `at`.
    pub fn invitation_open(&self, at: DateTime<Utc>) -> bool {
        self.state == RelationshipState::Invited && self.expires_at.is_some_and(|e| at < e)
    }

    /// The state as seen at `at`: an invitation past its expiry reads as "expired".
    pub fn state_at(&self, at: DateTime<Utc>) -> &'static str {
        self.standing_at(at).as_str()
    }

    /// Where the relationship stands at `at` (see [`standing`]).
    pub fn standing_at(&self, at: DateTime<Utc>) -> Standing {
        standing(self.state, self.expires_at, at)
    }

    /// The sections granted and not expired at `at`.
    pub fn granted(&self, at: DateTime<Utc>) -> Vec<(Section, Grant)> {
        if self.state != RelationshipState::Active {
            return Vec::new();
        }
        self.grants
            .iter()
            .filter(|(_, g)| g.until.is_none_or(|u| at < u))
            .map(|(s, g)| (*s, *g))
            .collect()
    }

    /// What lets the provider read `section` at `at`, if anything: a grant
    /// that has not expired, or (crisis plan only) an open break-glass access.
    pub fn basis(&self, section: Section, at: DateTime<Utc>) -> Option<Basis> {
        if self.state != RelationshipState::Active {
            return None;
        }
        if let Some(grant) = self.grants.get(&section) {
            if grant.until.is_none_or(|u| at < u) {
                return Some(Basis::Grant(*grant));
            }
        }
        match self.break_glass {
            Some(bg) if section == Section::CrisisPlan && at < bg.until => {
                Some(Basis::BreakGlass(bg))
            }
            _ => None,
        }
    }

    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: CareCommand) -> Result<Vec<CareEvent>, CareError> {
        let clamp = |at: DateTime<Utc>| self.last_at.map_or(at, |last| at.max(last));
        match command {
            CareCommand::Invite {
                user_id,
                provider_id,
                organisation,
                by,
                lasts,
                at,
            } => {
                let at = clamp(at);
                let expires_at = at + lasts;
                if user_id == provider_id {
                    return Err(CareError::NotAllowed(
                        "nobody can be in care with themselves",
                    ));
                }
                match self.state {
                    RelationshipState::Active => {
                        return Err(state_error(self.state, "invited again"))
                    }
                    RelationshipState::Invited if self.invitation_open(at) => {
                        return Err(state_error(self.state, "invited again"))
                    }
                    _ => {}
                }
                if expires_at <= at {
                    return Err(CareError::NotInFuture("expiresAt"));
                }
                Ok(vec![CareEvent::Invited {
                    relationship_id: relationship_id(user_id, provider_id),
                    user_id,
                    provider_id,
                    organisation,
                    by,
                    expires_at,
                    at,
                }])
            }
            CareCommand::Accept { by, at } | CareCommand::Decline { by, at } => {
                let at = clamp(at);
                let accept = matches!(command, CareCommand::Accept { .. });
                let action = if accept { "accepted" } else { "declined" };
                if self.state != RelationshipState::Invited {
                    return Err(state_error(self.state, action));
                }
                if self.invited_by == Some(by) {
                    return Err(CareError::NotAllowed(
                        "only the side that was invited can answer an invitation",
                    ));
                }
                if let Some(expires_at) = self.expires_at.filter(|e| at >= *e) {
                    return Err(CareError::InvitationExpired(expires_at));
                }
                Ok(vec![if accept {
                    CareEvent::InvitationAccepted { by, at }
                } else {
                    CareEvent::InvitationDeclined { by, at }
                }])
            }
            CareCommand::End { by, at } => {
                let at = clamp(at);
                match self.state {
                    RelationshipState::Active => {}
                    RelationshipState::Invited if self.invited_by == Some(by) => {}
                    RelationshipState::Invited => {
                        return Err(CareError::NotAllowed(
                            "the invited side answers with accept or decline",
                        ))
                    }
                    state => return Err(state_error(state, "ended")),
                }
                Ok(vec![CareEvent::RelationshipEnded { by, at }])
            }
            CareCommand::Grant {
                by,
                section,
                until,
                at,
            } => {
                let at = clamp(at);
                self.user_side(by)?;
                self.active("granted")?;
                if until.is_some_and(|u| u <= at) {
                    return Err(CareError::NotInFuture("until"));
                }
                if self
                    .grants
                    .get(&section)
                    .is_some_and(|g| g.until == until && g.until.is_none_or(|u| at < u))
                {
                    return Err(CareError::NothingChanged("consent grant"));
                }
                Ok(vec![CareEvent::ConsentGranted { section, until, at }])
            }
            CareCommand::Revoke { by, section, at } => {
                let at = clamp(at);
                self.user_side(by)?;
                self.active("changed")?;
                if !self.granted(at).iter().any(|(s, _)| *s == section) {
                    return Err(CareError::NothingChanged("consent grant"));
                }
                Ok(vec![CareEvent::ConsentRevoked { section, at }])
            }
            CareCommand::BreakGlass {
                by,
                code,
                reason,
                lasts,
                per_day,
                provider_openings,
                provider_per_day,
                at,
            } => {
                let at = clamp(at);
                let until = at + lasts;
                if by != Side::Provider {
                    return Err(CareError::NotAllowed(
                        "only a provider can open a crisis plan with break-glass",
                    ));
                }
                self.active("used for break-glass")?;
                // One opening at a time, and a bounded number a day: each
                // is an emergency the person hears of, not a way around
                // their consent.
                if let Some(open) = self.break_glass.filter(|b| b.until > at) {
                    return Err(CareError::BreakGlassOpen(open.until));
                }
                let day = at - chrono::Duration::hours(24);
                let recent = self
                    .break_glass_openings
                    .iter()
                    .filter(|t| **t > day)
                    .count();
                if recent >= per_day as usize {
                    return Err(CareError::BreakGlassLimit(per_day));
                }
                if provider_openings >= provider_per_day {
                    return Err(CareError::BreakGlassProviderLimit(provider_per_day));
                }
                let reason =
                    text::required(&reason, REASON_MAX).map_err(InputError::text("reason"))?;
                if until <= at {
                    return Err(CareError::NotInFuture("until"));
                }
                Ok(vec![CareEvent::BreakGlassOpened {
                    code,
                    reason,
                    until,
                    at,
                }])
            }
        }
    }

    fn user_side(&self, by: Side) -> Result<(), CareError> {
        if by != Side::ServiceUser {
            return Err(CareError::NotAllowed(
                "only the service user grants and revokes access to their portal",
            ));
        }
        Ok(())
    }

    fn active(&self, action: &'static str) -> Result<(), CareError> {
        if self.state != RelationshipState::Active {
            return Err(state_error(self.state, action));
        }
        Ok(())
    }
}

impl Aggregate for CareRelationship {
    const TYPE: &'static str = RELATIONSHIP_TYPE;
    type Command = CareCommand;
    type Event = CareEvent;
    type Error = CareError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        self.last_at = Some(event.at());
        match event {
            CareEvent::Invited {
                user_id,
                provider_id,
                organisation,
                by,
                expires_at,
                ..
            } => {
                self.user_id = Some(user_id);
                self.provider_id = Some(provider_id);
                self.organisation = organisation;
                self.state = RelationshipState::Invited;
                self.invited_by = Some(by);
                self.expires_at = Some(expires_at);
                self.grants.clear();
                self.break_glass = None;
            }
            CareEvent::InvitationAccepted { .. } => {
                self.state = RelationshipState::Active;
                self.expires_at = None;
            }
            CareEvent::InvitationDeclined { .. } => {
                self.state = RelationshipState::Declined;
                self.expires_at = None;
            }
            CareEvent::RelationshipEnded { .. } => {
                self.state = RelationshipState::Ended;
                self.expires_at = None;
                self.grants.clear();
                self.break_glass = None;
            }
            CareEvent::ConsentGranted { section, until, at } => {
                self.grants.insert(
                    section,
                    Grant {
                        granted_at: at,
                        until,
                        sequence: self.version,
                    },
                );
            }
            CareEvent::ConsentRevoked { section, .. } => {
                self.grants.remove(&section);
            }
            CareEvent::BreakGlassOpened {
                code, until, at, ..
            } => {
                self.break_glass = Some(BreakGlass {
                    opened_at: at,
                    until,
                    code,
                    sequence: self.version,
                });
                self.break_glass_openings.push(at);
                if self.break_glass_openings.len() > 64 {
                    self.break_glass_openings.remove(0);
                }
            }
        }
    }
}

/// How a provider could see a section during a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Grant,
    BreakGlass,
}

/// A span of time during which the provider could read a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub section: Section,
    pub kind: WindowKind,
    pub from: DateTime<Utc>,
    /// None while it is still open (and has no end date).
    pub to: Option<DateTime<Utc>>,
    /// Sequence number of the event that opened it.
    pub sequence: i64,
}

impl Window {
    /// True when the window overlaps `[from, to)`.
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.from < to && self.to.is_none_or(|end| end > from)
    }
}

/// Every window of access a relationship's events gave, in the order they
/// opened: grants (until revoked, replaced, expired or the relationship
/// ended) and break-glass openings (until they ran out or the relationship ended).
pub fn windows<'a>(events: impl IntoIterator<Item = &'a CareEvent>) -> Vec<Window> {
    let mut done: Vec<Window> = Vec::new();
    let mut open: Vec<Window> = Vec::new();
    let close = |w: Window, at: DateTime<Utc>| Window {
        to: Some(w.to.map_or(at, |t| t.min(at))),
        ..w
    };
    for (index, event) in events.into_iter().enumerate() {
        let sequence = index as i64 + 1;
        match event {
            CareEvent::ConsentGranted { section, until, at } => {
                if let Some(i) = open
                    .iter()
                    .position(|w| w.kind == WindowKind::Grant && w.section == *section)
                {
                    done.push(close(open.remove(i), *at));
                }
                open.push(Window {
                    section: *section,
                    kind: WindowKind::Grant,
                    from: *at,
                    to: *until,
                    sequence,
                });
            }
            CareEvent::ConsentRevoked { section, at } => {
                if let Some(i) = open
                    .iter()
                    .position(|w| w.kind == WindowKind::Grant && w.section == *section)
                {
                    done.push(close(open.remove(i), *at));
                }
            }
            CareEvent::BreakGlassOpened { until, at, .. } => open.push(Window {
                section: Section::CrisisPlan,
                kind: WindowKind::BreakGlass,
                from: *at,
                to: Some(*until),
                sequence,
            }),
            CareEvent::RelationshipEnded { at, .. } | CareEvent::Invited { at, .. } => {
                done.extend(open.drain(..).map(|w| close(w, *at)));
            }
            CareEvent::InvitationAccepted { .. } | CareEvent::InvitationDeclined { .. } => {}
        }
    }
    done.extend(open);
    done.retain(|w| w.to.is_none_or(|to| to > w.from));
    done.sort_by_key(|w| (w.from, w.sequence));
    done
}

/// The spans during which a relationship was active: from each acceptance
/// to the ending after it (open while it lasts). A provider who comes back
/// sees nothing of the time between.
pub fn active_spans<'a>(
    events: impl IntoIterator<Item = &'a CareEvent>,
) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let mut spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    for event in events {
        match event {
            CareEvent::InvitationAccepted { at, .. } => spans.push((*at, None)),
            CareEvent::RelationshipEnded { at, .. } => {
                if let Some(last) = spans.last_mut().filter(|s| s.1.is_none()) {
                    last.1 = Some(*at);
                }
            }
            _ => {}
        }
    }
    spans
}

/// True when `at` falls within one of the spans.
pub fn within(spans: &[(DateTime<Utc>, Option<DateTime<Utc>>)], at: DateTime<Utc>) -> bool {
    spans
        .iter()
        .any(|(from, to)| *from <= at && to.is_none_or(|to| at < to))
}

#[cfg(test)]
#[path = "care_tests.rs"]
mod tests;
