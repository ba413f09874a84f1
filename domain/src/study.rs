//! Studies and research consent (issue 6).
//!
//! An admin registers a `Study` in the organisation; each service user and
//! provider enrols in it or withdraws themselves, one `Enrolment` aggregate per
//! (study, participant) pair with a derived id, so "already enrolled?" is a
//! rule of one stream and two people enrolling at once never conflict.
//! Research outputs include a participant only for the spans they were
//! enrolled (see [`spans`]).

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type of studies in the event store.
pub const STUDY_TYPE: &str = "Study";
/// Aggregate type of enrolments in the event store.
pub const ENROLMENT_TYPE: &str = "Enrolment";
/// Longest study title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest protocol id, in characters.
pub const PROTOCOL_MAX: usize = 64;
/// Most researchers of one study.
pub const RESEARCHERS_MAX: usize = 50;
/// Longest study period, in days (ten years).
pub const PERIOD_DAYS_MAX: i64 = 3653;

/// A rule of a study refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StudyError {
    /// The study's details break a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{item} {id} already exists")]
    DuplicateId { item: &'static str, id: Uuid },
}

impl Refusal for StudyError {
    fn kind(&self) -> ErrorKind {
        match self {
            StudyError::Input(input) => input.kind(),
            StudyError::DuplicateId { .. } => ErrorKind::FailedPrecondition,
        }
    }
}

/// A rule of an enrolment refused a command. Enrolment takes no free input,
/// so it has no [`InputError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnrolmentError {
    /// Withdrawing without being enrolled ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
}

impl Refusal for EnrolmentError {
    fn kind(&self) -> ErrorKind {
        match self {
            EnrolmentError::NotAllowed(_) => ErrorKind::Forbidden,
            EnrolmentError::NothingChanged(_) => ErrorKind::FailedPrecondition,
        }
    }
}

/// The id of the enrolment of `participant` in `study`: the same pair always
/// names the same stream.
pub fn enrolment_id(study_id: Uuid, participant_id: Uuid) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"portal study enrolment\0")
        .chain_update(study_id.as_bytes())
        .chain_update(participant_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Which kind of person takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantRole {
    ServiceUser,
    Provider,
}

impl ParticipantRole {
    /// The role as written in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantRole::ServiceUser => "service_user",
            ParticipantRole::Provider => "provider",
        }
    }
}

/// What a study is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyInfo {
    pub study_id: Uuid,
    pub organisation: String,
    pub title: String,
    pub protocol_id: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// The researchers (by their account id) who may see its outputs.
    pub researchers: Vec<Uuid>,
}

/// A study as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub info: Option<StudyInfo>,
}

/// What an admin asks of a study.
#[derive(Debug, Clone, PartialEq)]
pub enum StudyCommand {
    Register { info: StudyInfo, at: DateTime<Utc> },
}

/// What happened to a study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StudyEvent {
    StudyRegistered { info: StudyInfo, at: DateTime<Utc> },
}

/// A study's registration is the organisation's protocol, not anyone's
/// personal data (`crate::personal`).
pub const STUDY_PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: STUDY_TYPE,
    events: &[crate::personal::Declared::clear(
        "StudyRegistered",
        &["info", "at"],
    )],
};

impl DomainEvent for StudyEvent {
    fn event_type(&self) -> String {
        match self {
            StudyEvent::StudyRegistered { .. } => "StudyRegistered",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The study with its texts trimmed, or the rule it breaks.
pub fn checked_info(info: StudyInfo) -> Result<StudyInfo, InputError> {
    let title = text::required(&info.title, TITLE_MAX).map_err(InputError::text("title"))?;
    let protocol_id =
        text::required(&info.protocol_id, PROTOCOL_MAX).map_err(InputError::text("protocolId"))?;
    let days = (info.ends_on - info.starts_on).num_days();
    if !(0..=PERIOD_DAYS_MAX).contains(&days) {
        return Err(InputError::OutOfRange {
            field: "endsOn (days after startsOn)",
            got: i32::try_from(days).unwrap_or(i32::MAX),
            min: 0,
            max: PERIOD_DAYS_MAX as i32,
        });
    }
    let mut researchers = info.researchers.clone();
    researchers.sort();
    researchers.dedup();
    if researchers.is_empty() || researchers.len() > RESEARCHERS_MAX {
        return Err(InputError::OutOfRange {
            field: "researchers (how many)",
            got: i32::try_from(researchers.len()).unwrap_or(i32::MAX),
            min: 1,
            max: RESEARCHERS_MAX as i32,
        });
    }
    Ok(StudyInfo {
        title,
        protocol_id,
        researchers,
        ..info
    })
}

impl Study {
    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: StudyCommand) -> Result<Vec<StudyEvent>, StudyError> {
        match command {
            StudyCommand::Register { info, at } => {
                if let Some(existing) = &self.info {
                    return Err(StudyError::DuplicateId {
                        item: "study",
                        id: existing.study_id,
                    });
                }
                Ok(vec![StudyEvent::StudyRegistered {
                    info: checked_info(info)?,
                    at,
                }])
            }
        }
    }

    /// True when `day` falls within the study's period.
    pub fn runs_on(&self, day: NaiveDate) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.starts_on <= day && day <= i.ends_on)
    }
}

impl Aggregate for Study {
    const TYPE: &'static str = STUDY_TYPE;
    type Command = StudyCommand;
    type Event = StudyEvent;
    type Error = StudyError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            StudyEvent::StudyRegistered { info, .. } => self.info = Some(info),
        }
    }
}

/// One person's consent to one study.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrolment {
    pub enrolled: bool,
    pub last_at: Option<DateTime<Utc>>,
}

/// What a participant asks.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentCommand {
    Enrol {
        study_id: Uuid,
        participant_id: Uuid,
        role: ParticipantRole,
        at: DateTime<Utc>,
    },
    Withdraw {
        study_id: Uuid,
        participant_id: Uuid,
        at: DateTime<Utc>,
    },
}

/// What happened to a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrolmentEvent {
    Enrolled {
        study_id: Uuid,
        participant_id: Uuid,
        role: ParticipantRole,
        at: DateTime<Utc>,
    },
    Withdrew {
        study_id: Uuid,
        participant_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl EnrolmentEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            EnrolmentEvent::Enrolled { at, .. } | EnrolmentEvent::Withdrew { at, .. } => *at,
        }
    }
    /// The study and the participant it concerns.
    pub fn parties(&self) -> (Uuid, Uuid) {
        match self {
            EnrolmentEvent::Enrolled {
                study_id,
                participant_id,
                ..
            }
            | EnrolmentEvent::Withdrew {
                study_id,
                participant_id,
                ..
            } => (*study_id, *participant_id),
        }
    }
}

/// Enrolments hold ids, roles and times only.
pub const ENROLMENT_PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: ENROLMENT_TYPE,
    events: &[
        crate::personal::Declared::clear("Enrolled", &["study_id", "participant_id", "role", "at"]),
        crate::personal::Declared::clear("Withdrew", &["study_id", "participant_id", "at"]),
    ],
};

impl DomainEvent for EnrolmentEvent {
    fn event_type(&self) -> String {
        match self {
            EnrolmentEvent::Enrolled { .. } => "Enrolled",
            EnrolmentEvent::Withdrew { .. } => "Withdrew",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Enrolment {
    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: EnrolmentCommand) -> Result<Vec<EnrolmentEvent>, EnrolmentError> {
        let clamp = |at: DateTime<Utc>| self.last_at.map_or(at, |last| at.max(last));
        match command {
            EnrolmentCommand::Enrol { .. } if self.enrolled => {
                Err(EnrolmentError::NothingChanged("enrolment"))
            }
            EnrolmentCommand::Enrol {
                study_id,
                participant_id,
                role,
                at,
            } => Ok(vec![EnrolmentEvent::Enrolled {
                study_id,
                participant_id,
                role,
                at: clamp(at),
            }]),
            EnrolmentCommand::Withdraw { .. } if !self.enrolled => Err(EnrolmentError::NotAllowed(
                "you are not enrolled in this study",
            )),
            EnrolmentCommand::Withdraw {
                study_id,
                participant_id,
                at,
            } => Ok(vec![EnrolmentEvent::Withdrew {
                study_id,
                participant_id,
                at: clamp(at),
            }]),
        }
    }
}

impl Aggregate for Enrolment {
    const TYPE: &'static str = ENROLMENT_TYPE;
    type Command = EnrolmentCommand;
    type Event = EnrolmentEvent;
    type Error = EnrolmentError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.last_at = Some(event.at());
        self.enrolled = matches!(event, EnrolmentEvent::Enrolled { .. });
    }
}

/// Aggregate type of usage records: one stream per writing process.
pub const USAGE_TYPE: &str = "Usage";
/// Event type of a usage record.
pub const USAGE_EVENT: &str = "Used";

/// The part of the service a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    /// Life domains, status, goals and activities.
    ControlPanel,
    Medications,
    Network,
    CrisisPlan,
    Exercises,
    /// Care relationships, consent, the caseload.
    Care,
    Messages,
    Agreements,
    /// The user's own access log.
    AccessLog,
    Studies,
    /// The peer-support forum (visits and postings; never a text or a name).
    Forum,
}

impl Module {
    /// Every module, in export order.
    pub const ALL: [Module; 11] = [
        Module::ControlPanel,
        Module::Medications,
        Module::Network,
        Module::CrisisPlan,
        Module::Exercises,
        Module::Care,
        Module::Messages,
        Module::Agreements,
        Module::AccessLog,
        Module::Studies,
        Module::Forum,
    ];

    /// The module as written in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::ControlPanel => "control_panel",
            Module::Medications => "medications",
            Module::Network => "network",
            Module::CrisisPlan => "crisis_plan",
            Module::Exercises => "exercises",
            Module::Care => "care",
            Module::Messages => "messages",
            Module::Agreements => "agreements",
            Module::AccessLog => "access_log",
            Module::Studies => "studies",
            Module::Forum => "forum",
        }
    }

    /// Its place in [`Module::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One request of an enrolled participant: who, which module, view or
/// write, when. Never what was read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Used {
    pub participant_id: Uuid,
    pub role: ParticipantRole,
    pub module: Module,
    pub write: bool,
    pub at: DateTime<Utc>,
}

/// Usage holds who, which module, view or write, when: never content.
pub const USAGE_PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: USAGE_TYPE,
    events: &[crate::personal::Declared::clear(
        USAGE_EVENT,
        &["participant_id", "role", "module", "write", "at"],
    )],
};

/// Whether each (study, participant) pair is enrolled now: the latest of its
/// enrolment events, given in the order they were appended.
pub fn enrolled_now<'a>(
    events: impl IntoIterator<Item = &'a EnrolmentEvent>,
) -> std::collections::HashMap<(Uuid, Uuid), bool> {
    events
        .into_iter()
        .map(|e| (e.parties(), matches!(e, EnrolmentEvent::Enrolled { .. })))
        .collect()
}

/// The spans one participant was enrolled, from their enrolment's events in
/// order: `(from, until)`, `until` open while still enrolled.
pub fn spans<'a>(
    events: impl IntoIterator<Item = &'a EnrolmentEvent>,
) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let mut spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    for event in events {
        match event {
            EnrolmentEvent::Enrolled { at, .. } => {
                if spans.last().is_none_or(|s| s.1.is_some()) {
                    spans.push((*at, None));
                }
            }
            EnrolmentEvent::Withdrew { at, .. } => {
                if let Some(last) = spans.last_mut() {
                    last.1.get_or_insert(*at);
                }
            }
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0)
            .single()
            .expect("valid")
    }

    fn info() -> StudyInfo {
        StudyInfo {
            study_id: Uuid::from_u128(1),
            organisation: "org".into(),
            title: "  ReConnect follow-up ".into(),
            protocol_id: "RC-2026-01".into(),
            starts_on: NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"),
            ends_on: NaiveDate::from_ymd_opt(2026, 9, 1).expect("date"),
            researchers: vec![Uuid::from_u128(9), Uuid::from_u128(8), Uuid::from_u128(9)],
        }
    }

    fn given<A: Aggregate>(events: Vec<A::Event>) -> A {
        let mut a = A::default();
        for e in events {
            a.apply(e);
        }
        a
    }

    #[test]
    fn registering_trims_and_dedups_and_only_once() {
        let events = Study::default()
            .decide(StudyCommand::Register {
                info: info(),
                at: at(1),
            })
            .expect("registers");
        let StudyEvent::StudyRegistered { info: stored, .. } = &events[0];
        assert_eq!(stored.title, "ReConnect follow-up");
        assert_eq!(
            stored.researchers,
            vec![Uuid::from_u128(8), Uuid::from_u128(9)]
        );
        let study: Study = given(events);
        assert!(study.runs_on(NaiveDate::from_ymd_opt(2026, 9, 1).expect("date")));
        assert!(!study.runs_on(NaiveDate::from_ymd_opt(2026, 9, 2).expect("date")));
        assert!(matches!(
            study.decide(StudyCommand::Register {
                info: info(),
                at: at(2)
            }),
            Err(StudyError::DuplicateId { .. })
        ));
    }

    #[test]
    fn a_study_needs_a_title_a_period_and_researchers() {
        let bad = [
            StudyInfo {
                title: " ".into(),
                ..info()
            },
            StudyInfo {
                ends_on: NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
                ..info()
            },
            StudyInfo {
                researchers: vec![],
                ..info()
            },
            StudyInfo {
                researchers: (0..51).map(Uuid::from_u128).collect(),
                ..info()
            },
        ];
        for info in bad {
            assert!(Study::default()
                .decide(StudyCommand::Register { info, at: at(1) })
                .is_err());
        }
    }

    #[test]
    fn enrolling_and_withdrawing_make_spans() {
        let (s, p) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let enrol = |day| EnrolmentCommand::Enrol {
            study_id: s,
            participant_id: p,
            role: ParticipantRole::ServiceUser,
            at: at(day),
        };
        let withdraw = |day| EnrolmentCommand::Withdraw {
            study_id: s,
            participant_id: p,
            at: at(day),
        };
        assert!(matches!(
            Enrolment::default().decide(withdraw(1)),
            Err(EnrolmentError::NotAllowed(_))
        ));
        let mut history = Enrolment::default().decide(enrol(1)).expect("enrols");
        let e: Enrolment = given(history.clone());
        assert!(matches!(
            e.decide(enrol(2)),
            Err(EnrolmentError::NothingChanged(_))
        ));
        history.extend(e.decide(withdraw(3)).expect("withdraws"));
        let e: Enrolment = given(history.clone());
        assert!(!e.enrolled);
        // A clock that went back does not make a span end before it began.
        history.extend(e.decide(enrol(2)).expect("enrols again"));
        assert_eq!(spans(&history), vec![(at(1), Some(at(3))), (at(3), None)]);
        assert_ne!(enrolment_id(s, p), enrolment_id(p, s));
    }

    #[test]
    fn kinds_of_study_and_enrolment_refusals() {
        let state = StudyError::DuplicateId {
            item: "study",
            id: Uuid::from_u128(1),
        };
        assert_eq!(state.kind(), ErrorKind::FailedPrecondition);
        let bad = StudyError::Input(InputError::OutOfRange {
            field: "researchers (how many)",
            got: 0,
            min: 1,
            max: RESEARCHERS_MAX as i32,
        });
        assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
        assert_eq!(
            EnrolmentError::NotAllowed("you are not enrolled in this study").kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(
            EnrolmentError::NothingChanged("enrolment").kind(),
            ErrorKind::FailedPrecondition
        );
    }
}
