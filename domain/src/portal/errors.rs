use uuid::Uuid;

use crate::text::TextProblem;

/// A portal rule the command broke. Every case is the client's to fix, so the
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
}

/// How the edge should classify a rule violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is wrong.
    BadInput,
    /// The thing named does not exist.
    NotFound,
}

impl PortalError {
    /// The class of this error, for the API's stable error codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PortalError::NotOpen
            | PortalError::UnknownGoal(_)
            | PortalError::UnknownActivity(_) => ErrorKind::NotFound,
            _ => ErrorKind::BadInput,
        }
    }

    pub(crate) fn text(field: &'static str) -> impl FnOnce(TextProblem) -> PortalError {
        move |problem| PortalError::InvalidText { field, problem }
    }
}
