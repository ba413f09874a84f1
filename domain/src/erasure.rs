//! A person's erasure (issue 18): asked for by the person, cancellable while
//! it waits, carried out when due or at once on the organisation's order.
//!
//! One stream per person of an organisation (aggregate id: [`stream_id`],
//! `organisation/person`, as identity is scoped to the organisation). Its events hold
//! ids, times and the basis only: the record of an erasure holds no
//! personal data. Carrying it out destroys the person's key (outside this
//! crate); `PersonErased` is what every read model blanks the person on.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refusal::{ErrorKind, Refusal};

/// The erasure stream's aggregate type.
pub const ERASURE_TYPE: &str = "Erasure";

/// The erasure stream of `person` of `organisation`.
pub fn stream_id(organisation: &str, person: uuid::Uuid) -> String {
    format!("{organisation}/{person}")
}

/// The person an erasure stream's id names.
pub fn person_of(stream_id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(stream_id.rsplit('/').next()?).ok()
}

/// Why a person was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The person asked, and the waiting period passed.
    PersonRequest,
    /// An admin of the organisation carried out an order of the organisation.
    OrganisationOrder,
}

impl Basis {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::PersonRequest => "person_request",
            Basis::OrganisationOrder => "organisation_order",
        }
    }
}

/// Where a person's erasure stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub person: Option<Uuid>,
    pub organisation: Option<String>,
    /// Asked for, not cancelled, not yet carried out: when it falls due.
    pub due: Option<DateTime<Utc>>,
    /// When the person was erased, and why.
    pub erased: Option<(DateTime<Utc>, Basis)>,
}

/// What may be asked of a person's erasure.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureCommand {
    /// The person asks to be erased after `wait`.
    Request {
        person: Uuid,
        organisation: String,
        wait: Duration,
        at: DateTime<Utc>,
    },
    /// The person takes the request back before it falls due.
    Cancel { at: DateTime<Utc> },
    /// Erase now: on a request that fell due, or on the organisation's
    /// order (`by`: the admin).
    CarryOut {
        person: Uuid,
        organisation: String,
        basis: Basis,
        by: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// Record again an erasure the erasure ledger holds but the store does
    /// not (a backup restored from before it): the ledger is the proof it
    /// was carried out, whatever the restored stream says.
    Reapply {
        person: Uuid,
        organisation: String,
        basis: Basis,
        by: Option<Uuid>,
        at: DateTime<Utc>,
    },
}

/// What happened to a person's erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ErasureEvent {
    ErasureRequested {
        person: Uuid,
        organisation: String,
        due: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    ErasureCancelled {
        at: DateTime<Utc>,
    },
    PersonErased {
        person: Uuid,
        organisation: String,
        basis: Basis,
        /// The admin who carried out an order; none for a request.
        by: Option<Uuid>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ErasureEvent {
    fn event_type(&self) -> String {
        match self {
            ErasureEvent::ErasureRequested { .. } => "ErasureRequested",
            ErasureEvent::ErasureCancelled { .. } => "ErasureCancelled",
            ErasureEvent::PersonErased { .. } => "PersonErased",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The record of an erasure is ids, times and a basis: nothing personal.
pub const PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: ERASURE_TYPE,
    events: &[
        crate::personal::Declared::clear(
            "ErasureRequested",
            &["person", "organisation", "due", "at"],
        ),
        crate::personal::Declared::clear("ErasureCancelled", &["at"]),
        crate::personal::Declared::clear(
            "PersonErased",
            &["person", "organisation", "basis", "by", "at"],
        ),
    ],
};

/// Why an erasure command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErasureError {
    #[error("this person has been erased")]
    Erased,
    #[error("erasure was asked for already; it falls due at {0}")]
    AlreadyRequested(DateTime<Utc>),
    #[error("no erasure is waiting to be carried out")]
    NothingWaiting,
    #[error("the erasure falls due at {0}; it can be carried out then")]
    NotDue(DateTime<Utc>),
    #[error("the waiting period must be between 0 and 365 days")]
    BadWait,
}

impl Refusal for ErasureError {
    fn kind(&self) -> ErrorKind {
        match self {
            ErasureError::BadWait => ErrorKind::BadInput,
            _ => ErrorKind::FailedPrecondition,
        }
    }
}

/// The longest waiting period an organisation may set.
pub const WAIT_MAX_DAYS: i64 = 365;

impl Erasure {
    pub fn decide(&self, command: ErasureCommand) -> Result<Vec<ErasureEvent>, ErasureError> {
        if self.erased.is_some() {
            return Err(ErasureError::Erased);
        }
        match command {
            ErasureCommand::Request {
                person,
                organisation,
                wait,
                at,
            } => {
                if let Some(due) = self.due {
                    return Err(ErasureError::AlreadyRequested(due));
                }
                if wait < Duration::zero() || wait > Duration::days(WAIT_MAX_DAYS) {
                    return Err(ErasureError::BadWait);
                }
                Ok(vec![ErasureEvent::ErasureRequested {
                    person,
                    organisation,
                    due: at + wait,
                    at,
                }])
            }
            ErasureCommand::Cancel { at } => match self.due {
                Some(_) => Ok(vec![ErasureEvent::ErasureCancelled { at }]),
                None => Err(ErasureError::NothingWaiting),
            },
            ErasureCommand::CarryOut {
                person,
                organisation,
                basis,
                by,
                at,
            } => {
                if basis == Basis::PersonRequest {
                    match self.due {
                        None => return Err(ErasureError::NothingWaiting),
                        Some(due) if at < due => return Err(ErasureError::NotDue(due)),
                        Some(_) => {}
                    }
                }
                Ok(vec![ErasureEvent::PersonErased {
                    person,
                    organisation,
                    basis,
                    by,
                    at,
                }])
            }
            ErasureCommand::Reapply {
                person,
                organisation,
                basis,
                by,
                at,
            } => Ok(vec![ErasureEvent::PersonErased {
                person,
                organisation,
                basis,
                by,
                at,
            }]),
        }
    }
}

impl Aggregate for Erasure {
    const TYPE: &'static str = ERASURE_TYPE;
    type Command = ErasureCommand;
    type Event = ErasureEvent;
    type Error = ErasureError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ErasureEvent::ErasureRequested {
                person,
                organisation,
                due,
                ..
            } => {
                self.person = Some(person);
                self.organisation = Some(organisation);
                self.due = Some(due);
            }
            ErasureEvent::ErasureCancelled { .. } => self.due = None,
            ErasureEvent::PersonErased {
                person,
                organisation,
                basis,
                at,
                ..
            } => {
                self.person = Some(person);
                self.organisation = Some(organisation);
                self.due = None;
                self.erased = Some((at, basis));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time") + Duration::days(day)
    }

    fn given(events: Vec<ErasureEvent>) -> Erasure {
        let mut erasure = Erasure::default();
        for event in events {
            erasure.apply(event);
        }
        erasure
    }

    fn requested(day: i64, wait: i64) -> ErasureEvent {
        ErasureEvent::ErasureRequested {
            person: Uuid::nil(),
            organisation: "org".into(),
            due: at(day + wait),
            at: at(day),
        }
    }

    fn carry_out(basis: Basis, day: i64) -> ErasureCommand {
        ErasureCommand::CarryOut {
            person: Uuid::nil(),
            organisation: "org".into(),
            basis,
            by: None,
            at: at(day),
        }
    }

    #[test]
    fn a_request_falls_due_after_the_wait() {
        let events = given(vec![])
            .decide(ErasureCommand::Request {
                person: Uuid::nil(),
                organisation: "org".into(),
                wait: Duration::days(30),
                at: at(0),
            })
            .expect("requested");
        assert_eq!(events, vec![requested(0, 30)]);
        let waiting = given(events);
        assert_eq!(
            waiting.decide(carry_out(Basis::PersonRequest, 29)),
            Err(ErasureError::NotDue(at(30)))
        );
        assert!(matches!(
            waiting
                .decide(carry_out(Basis::PersonRequest, 30))
                .as_deref(),
            Ok([ErasureEvent::PersonErased {
                basis: Basis::PersonRequest,
                ..
            }])
        ));
    }

    #[test]
    fn a_request_is_asked_once_and_may_be_cancelled_while_it_waits() {
        let waiting = given(vec![requested(0, 30)]);
        assert_eq!(
            waiting.decide(ErasureCommand::Request {
                person: Uuid::nil(),
                organisation: "org".into(),
                wait: Duration::days(30),
                at: at(1),
            }),
            Err(ErasureError::AlreadyRequested(at(30)))
        );
        let cancelled = given(vec![
            requested(0, 30),
            ErasureEvent::ErasureCancelled { at: at(2) },
        ]);
        assert_eq!(
            cancelled.decide(carry_out(Basis::PersonRequest, 40)),
            Err(ErasureError::NothingWaiting)
        );
        assert_eq!(
            cancelled.decide(ErasureCommand::Cancel { at: at(3) }),
            Err(ErasureError::NothingWaiting)
        );
    }

    #[test]
    fn an_order_of_the_organisation_needs_no_request_and_no_wait() {
        assert!(given(vec![])
            .decide(carry_out(Basis::OrganisationOrder, 0))
            .is_ok());
        assert!(given(vec![requested(0, 30)])
            .decide(carry_out(Basis::OrganisationOrder, 1))
            .is_ok());
    }

    #[test]
    fn nothing_follows_an_erasure() {
        let erased = given(vec![ErasureEvent::PersonErased {
            person: Uuid::nil(),
            organisation: "org".into(),
            basis: Basis::OrganisationOrder,
            by: None,
            at: at(0),
        }]);
        for command in [
            ErasureCommand::Cancel { at: at(1) },
            carry_out(Basis::OrganisationOrder, 1),
            ErasureCommand::Request {
                person: Uuid::nil(),
                organisation: "org".into(),
                wait: Duration::days(1),
                at: at(1),
            },
        ] {
            assert_eq!(erased.decide(command), Err(ErasureError::Erased));
        }
    }

    #[test]
    fn the_ledger_reapplies_an_erasure_a_restored_stream_lacks() {
        let reapply = ErasureCommand::Reapply {
            person: Uuid::nil(),
            organisation: "org".into(),
            basis: Basis::PersonRequest,
            by: None,
            at: at(5),
        };
        // A stream restored from before the request, or while it waited.
        for events in [vec![], vec![requested(0, 30)]] {
            assert!(matches!(
                given(events).decide(reapply.clone()).as_deref(),
                Ok([ErasureEvent::PersonErased {
                    basis: Basis::PersonRequest,
                    ..
                }])
            ));
        }
    }

    #[test]
    fn the_wait_is_bounded() {
        for days in [-1, WAIT_MAX_DAYS + 1] {
            assert_eq!(
                given(vec![]).decide(ErasureCommand::Request {
                    person: Uuid::nil(),
                    organisation: "org".into(),
                    wait: Duration::days(days),
                    at: at(0),
                }),
                Err(ErasureError::BadWait)
            );
        }
    }
}
