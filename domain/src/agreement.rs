//! Expectation agreements (issue 5, domain only so far): how the two sides of
//! a care relationship will use the portal together. One `Agreement`
//! aggregate per care relationship (its id is the relationship's id).
//!
//! Either side proposes terms; the other accepts, declines or
//! counter-proposes. An accepted agreement stays in force while a revision
//! is negotiated the same way; every version ever proposed is kept in the
//! events. Whether the relationship is active is the service's check, as it
//! spans two aggregates.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::care::Side;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type of agreements in the event store.
pub const AGREEMENT_TYPE: &str = "Agreement";
/// Longest notes of an agreement, in characters.
pub const NOTES_MAX: usize = 2000;
/// Most days between the provider's look-ins.
pub const LOOK_IN_DAYS_MAX: i32 = 90;
/// Most hours a side may take to reply.
pub const REPLY_HOURS_MAX: i32 = 24 * 30;
/// Most working days a side may take to reply.
pub const REPLY_WORKING_DAYS_MAX: i32 = 20;

/// A rule of an agreement refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgreementError {
    /// The terms break a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Not this side's move ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
}

impl Refusal for AgreementError {
    fn kind(&self) -> ErrorKind {
        match self {
            AgreementError::Input(input) => input.kind(),
            AgreementError::NotAllowed(_) => ErrorKind::Forbidden,
            AgreementError::NothingChanged(_) => ErrorKind::FailedPrecondition,
        }
    }
}

/// Who takes the initiative in using the portal together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiative {
    ServiceUser,
    Provider,
    Both,
}

/// How long a side may take to reply to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "unit", content = "value")]
pub enum ReplyTime {
    Hours(i32),
    WorkingDays(i32),
}

/// The terms of one version of an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub initiative: Initiative,
    /// How often the provider looks in on the portal, in days.
    pub provider_looks_in_days: i32,
    pub user_replies_within: ReplyTime,
    pub provider_replies_within: ReplyTime,
    /// Whether the portal is opened together in appointments.
    pub opened_together: bool,
    /// Sealed at rest (the proposer's words): readers that do not open
    /// payloads (the research export) read it as empty.
    #[serde(default)]
    pub notes: String,
}

/// A proposal waiting for the other side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub version: i32,
    pub by: Side,
    pub terms: Terms,
}

/// An agreement as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The version in force and its terms, once one was accepted.
    pub accepted: Option<(i32, Terms)>,
    /// The proposal waiting for an answer, if any.
    pub pending: Option<Proposal>,
    /// Versions proposed so far (the next one gets this + 1).
    pub versions: i32,
    pub last_at: Option<DateTime<Utc>>,
}

/// What a side asks of the agreement.
#[derive(Debug, Clone, PartialEq)]
pub enum AgreementCommand {
    /// Propose terms: the first agreement, a revision of the one in force, or a
    /// counter-proposal to the other side's pending proposal.
    Propose {
        by: Side,
        terms: Terms,
        at: DateTime<Utc>,
    },
    /// Accept the other side's pending proposal.
    Accept { by: Side, at: DateTime<Utc> },
    /// Decline the other side's pending proposal (what was in force stays).
    Decline { by: Side, at: DateTime<Utc> },
    /// Withdraw one's own pending proposal.
    Withdraw { by: Side, at: DateTime<Utc> },
}

/// What happened to an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgreementEvent {
    AgreementProposed {
        version: i32,
        by: Side,
        /// True when it answers the other side's pending proposal.
        counter: bool,
        terms: Terms,
        at: DateTime<Utc>,
    },
    AgreementAccepted {
        version: i32,
        by: Side,
        at: DateTime<Utc>,
    },
    AgreementDeclined {
        version: i32,
        by: Side,
        at: DateTime<Utc>,
    },
    ProposalWithdrawn {
        version: i32,
        by: Side,
        at: DateTime<Utc>,
    },
}

/// An agreement's terms stay clear but for their notes, the proposer's own
/// words (`crate::personal`).
pub const PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: AGREEMENT_TYPE,
    events: &[
        crate::personal::Declared {
            event_type: "AgreementProposed",
            owner: crate::personal::Owner::Actor,
            personal: &[crate::personal::text("terms.notes")],
            clear: &[
                "version",
                "by",
                "counter",
                "terms.initiative",
                "terms.provider_looks_in_days",
                "terms.user_replies_within",
                "terms.provider_replies_within",
                "terms.opened_together",
                "at",
            ],
        },
        crate::personal::Declared::clear("AgreementAccepted", &["version", "by", "at"]),
        crate::personal::Declared::clear("AgreementDeclined", &["version", "by", "at"]),
        crate::personal::Declared::clear("ProposalWithdrawn", &["version", "by", "at"]),
    ],
};

impl DomainEvent for AgreementEvent {
    fn event_type(&self) -> String {
        match self {
            AgreementEvent::AgreementProposed { .. } => "AgreementProposed",
            AgreementEvent::AgreementAccepted { .. } => "AgreementAccepted",
            AgreementEvent::AgreementDeclined { .. } => "AgreementDeclined",
            AgreementEvent::ProposalWithdrawn { .. } => "ProposalWithdrawn",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl AgreementEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            AgreementEvent::AgreementProposed { at, .. }
            | AgreementEvent::AgreementAccepted { at, .. }
            | AgreementEvent::AgreementDeclined { at, .. }
            | AgreementEvent::ProposalWithdrawn { at, .. } => *at,
        }
    }
}

fn check_reply(field: &'static str, reply: ReplyTime) -> Result<(), InputError> {
    let (got, max) = match reply {
        ReplyTime::Hours(h) => (h, REPLY_HOURS_MAX),
        ReplyTime::WorkingDays(d) => (d, REPLY_WORKING_DAYS_MAX),
    };
    if !(1..=max).contains(&got) {
        return Err(InputError::OutOfRange {
            field,
            got,
            min: 1,
            max,
        });
    }
    Ok(())
}

/// The terms with their notes trimmed, or the rule they break.
pub fn checked_terms(terms: Terms) -> Result<Terms, InputError> {
    if !(1..=LOOK_IN_DAYS_MAX).contains(&terms.provider_looks_in_days) {
        return Err(InputError::OutOfRange {
            field: "providerLooksInDays",
            got: terms.provider_looks_in_days,
            min: 1,
            max: LOOK_IN_DAYS_MAX,
        });
    }
    check_reply("userRepliesWithin", terms.user_replies_within)?;
    check_reply("providerRepliesWithin", terms.provider_replies_within)?;
    let notes = text::optional(&terms.notes, NOTES_MAX).map_err(InputError::text("notes"))?;
    Ok(Terms { notes, ..terms })
}

impl Agreement {
    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: AgreementCommand) -> Result<Vec<AgreementEvent>, AgreementError> {
        let clamp = |at: DateTime<Utc>| self.last_at.map_or(at, |last| at.max(last));
        match command {
            AgreementCommand::Propose { by, terms, at } => {
                let terms = checked_terms(terms)?;
                let counter = match &self.pending {
                    Some(p) if p.by == by => {
                        return Err(AgreementError::NotAllowed(
                            "your proposal is waiting for an answer: withdraw it first",
                        ))
                    }
                    Some(p) if p.terms == terms => {
                        return Err(AgreementError::NothingChanged("proposal"))
                    }
                    Some(_) => true,
                    None => false,
                };
                if self.accepted.as_ref().is_some_and(|(_, t)| *t == terms) {
                    return Err(AgreementError::NothingChanged("agreement in force"));
                }
                Ok(vec![AgreementEvent::AgreementProposed {
                    version: self.versions + 1,
                    by,
                    counter,
                    terms,
                    at: clamp(at),
                }])
            }
            AgreementCommand::Accept { by, at }
            | AgreementCommand::Decline { by, at }
            | AgreementCommand::Withdraw { by, at } => {
                let Some(pending) = &self.pending else {
                    return Err(AgreementError::NotAllowed("there is no proposal waiting"));
                };
                let version = pending.version;
                let at = clamp(at);
                match command {
                    AgreementCommand::Withdraw { .. } if pending.by != by => Err(
                        AgreementError::NotAllowed("only the side that proposed can withdraw"),
                    ),
                    AgreementCommand::Withdraw { .. } => {
                        Ok(vec![AgreementEvent::ProposalWithdrawn { version, by, at }])
                    }
                    _ if pending.by == by => Err(AgreementError::NotAllowed(
                        "the other side answers a proposal",
                    )),
                    AgreementCommand::Accept { .. } => {
                        Ok(vec![AgreementEvent::AgreementAccepted { version, by, at }])
                    }
                    _ => Ok(vec![AgreementEvent::AgreementDeclined { version, by, at }]),
                }
            }
        }
    }
}

impl Aggregate for Agreement {
    const TYPE: &'static str = AGREEMENT_TYPE;
    type Command = AgreementCommand;
    type Event = AgreementEvent;
    type Error = AgreementError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.last_at = Some(event.at());
        match event {
            AgreementEvent::AgreementProposed {
                version, by, terms, ..
            } => {
                self.versions = version;
                self.pending = Some(Proposal { version, by, terms });
            }
            AgreementEvent::AgreementAccepted { .. } => {
                if let Some(p) = self.pending.take() {
                    self.accepted = Some((p.version, p.terms));
                }
            }
            AgreementEvent::AgreementDeclined { .. } | AgreementEvent::ProposalWithdrawn { .. } => {
                self.pending = None;
            }
        }
    }
}

#[cfg(test)]
#[path = "agreement_tests.rs"]
mod tests;

/// What became of a proposed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
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

/// One proposed version and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version: i32,
    pub proposed_by: Side,
    pub proposed_at: DateTime<Utc>,
    /// True when it answered the other side's proposal.
    pub counter: bool,
    pub outcome: Outcome,
    /// When it was accepted, declined, countered or withdrawn.
    pub decided_at: Option<DateTime<Utc>>,
    pub terms: Terms,
}

/// Every version of an agreement, oldest first, with what became of each,
/// from the agreement's events: a counter-proposal counters the pending
/// version; accepting a version supersedes the one in force.
pub fn versions(events: impl IntoIterator<Item = AgreementEvent>) -> Vec<Version> {
    let mut versions: Vec<Version> = Vec::new();
    fn decide(versions: &mut [Version], n: i32, outcome: Outcome, at: DateTime<Utc>) {
        if let Some(v) = versions.iter_mut().find(|v| v.version == n) {
            v.outcome = outcome;
            v.decided_at = Some(at);
        }
    }
    let holding = |versions: &[Version], outcome| {
        versions
            .iter()
            .find(|v| v.outcome == outcome)
            .map(|v| v.version)
    };
    for event in events {
        match event {
            AgreementEvent::AgreementProposed {
                version,
                by,
                counter,
                terms,
                at,
            } => {
                if counter {
                    if let Some(n) = holding(&versions, Outcome::Pending) {
                        decide(&mut versions, n, Outcome::Countered, at);
                    }
                }
                versions.push(Version {
                    version,
                    proposed_by: by,
                    proposed_at: at,
                    counter,
                    outcome: Outcome::Pending,
                    decided_at: None,
                    terms,
                });
            }
            AgreementEvent::AgreementAccepted { version, at, .. } => {
                if let Some(n) = holding(&versions, Outcome::InForce) {
                    decide(&mut versions, n, Outcome::Superseded, at);
                }
                decide(&mut versions, version, Outcome::InForce, at);
            }
            AgreementEvent::AgreementDeclined { version, at, .. } => {
                decide(&mut versions, version, Outcome::Declined, at);
            }
            AgreementEvent::ProposalWithdrawn { version, at, .. } => {
                decide(&mut versions, version, Outcome::Withdrawn, at);
            }
        }
    }
    versions
}
