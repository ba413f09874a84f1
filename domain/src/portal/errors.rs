use uuid::Uuid;

use crate::text::TextProblem;

/// A rule the command broke (portal or exercise catalogue). Every case is the client's to fix, so the
/// API reports all of them as `BAD_USER_INPUT` (or `NOT_FOUND` / `CONFLICT`
/// where [`PortalError::kind`] says so), with this message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortalError {
    #[error("the portal is already open")]
    AlreadyOpen,
    #[error("the portal has not been opened yet")]
    NotOpen,
    #[error("field `{field}` {problem}")]
    InvalidText {
        field: &'static str,
        problem: TextProblem,
    },
    #[error("field `score` must be between {min} and {max}, got {got}")]
    ScoreOutOfRange { got: i32, min: i32, max: i32 },
    #[error("field `key` must be 1-{max} characters of a-z, 0-9 and _, starting with a letter")]
    InvalidDomainKey { max: usize },
    #[error("life domain `{0}` already exists")]
    DuplicateDomain(String),
    #[error("a life domain named `{0}` already exists")]
    DuplicateDomainName(String),
    #[error("at most {0} custom life domains are allowed")]
    TooManyDomains(usize),
    #[error("life domain `{0}` does not exist")]
    UnknownDomain(String),
    #[error("goal {0} does not exist")]
    UnknownGoal(Uuid),
    #[error("goal {0} already exists")]
    DuplicateGoal(Uuid),
    #[error("at most {0} goals are allowed per portal")]
    TooManyGoals(usize),
    #[error("goal {goal_id} is {state} and can no longer change")]
    GoalClosed { goal_id: Uuid, state: &'static str },
    #[error("activity {0} does not exist")]
    UnknownActivity(Uuid),
    #[error("activity {0} already exists")]
    DuplicateActivity(Uuid),
    #[error("at most {0} activities are allowed per goal")]
    TooManyActivities(usize),
    #[error("activity {activity_id} is {state} and can no longer change")]
    ActivityClosed {
        activity_id: Uuid,
        state: &'static str,
    },
    #[error("field `{field}` must be between {min} and {max}, got {got}")]
    OutOfRange {
        field: &'static str,
        got: i32,
        min: i32,
        max: i32,
    },
    #[error("field `{field}` item {index} {problem}")]
    InvalidItem {
        field: &'static str,
        index: usize,
        problem: TextProblem,
    },
    #[error("field `{field}` may hold at most {max} items")]
    TooManyItems { field: &'static str, max: usize },
    #[error("field `contacts.phone` item {index} must be 3-30 characters of digits, spaces and + - . ( ), with at least 3 digits")]
    InvalidPhone { index: usize },
    #[error("the crisis plan needs at least one warning sign, helpful or unhelpful thing, contact, or words of your own")]
    EmptyCrisisPlan,
    #[error("{item} {id} does not exist")]
    Unknown { item: &'static str, id: Uuid },
    #[error("{item} {id} already exists")]
    DuplicateId { item: &'static str, id: Uuid },
    #[error("a {item} named `{name}` already exists")]
    DuplicateName { item: &'static str, name: String },
    #[error("at most {max} {items} are allowed")]
    TooMany { items: &'static str, max: usize },
    #[error("{item} {id} is {state} and cannot be {action}")]
    WrongState {
        item: &'static str,
        id: Uuid,
        state: &'static str,
        action: &'static str,
    },
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
    #[error("exercise `{0}` is not in the organisation's catalogue")]
    UnknownExercise(String),
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("the care relationship is {state} and cannot be {action}")]
    RelationshipState {
        state: &'static str,
        action: &'static str,
    },
    #[error("the invitation expired at {0}")]
    InvitationExpired(chrono::DateTime<chrono::Utc>),
    #[error("field `{0}` must be a time in the future")]
    NotInFuture(&'static str),
    #[error("field `exercise` must be an exercise key: 1-{max} characters of a-z, 0-9 and _, starting with a letter")]
    InvalidExerciseKey { max: usize },
}

/// How the edge should classify a rule violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is wrong.
    BadInput,
    /// The thing named does not exist.
    NotFound,
    /// The caller may not do this (the wrong side of a care relationship).
    Forbidden,
}

impl PortalError {
    /// The class of this error, for the API's stable error codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PortalError::NotOpen
            | PortalError::UnknownGoal(_)
            | PortalError::UnknownActivity(_)
            | PortalError::Unknown { .. }
            | PortalError::UnknownExercise(_) => ErrorKind::NotFound,
            PortalError::NotAllowed(_) => ErrorKind::Forbidden,
            _ => ErrorKind::BadInput,
        }
    }

    pub(crate) fn text(field: &'static str) -> impl FnOnce(TextProblem) -> PortalError {
        move |problem| PortalError::InvalidText { field, problem }
    }
}
