use uuid::Uuid;

use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text::TextProblem;

/// A rule of the portal (life domains, goals, activities and the toolbox)
/// refused a command. Every case is the client's to fix, so the API reports
/// it as `BAD_USER_INPUT` (or `NOT_FOUND` where [`Refusal::kind`] says so),
/// with this message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortalError {
    #[error("the portal is already open")]
    AlreadyOpen,
    #[error("the portal has not been opened yet")]
    NotOpen,
    /// Text, a number or a key that breaks a check other aggregates share.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("field `score` must be between {min} and {max}, got {got}")]
    ScoreOutOfRange { got: i32, min: i32, max: i32 },
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
    #[error("field `exercise` must be an exercise key: 1-{max} characters of a-z, 0-9 and _, starting with a letter")]
    InvalidExerciseKey { max: usize },
}

impl Refusal for PortalError {
    fn kind(&self) -> ErrorKind {
        match self {
            PortalError::Input(input) => input.kind(),
            PortalError::NotOpen
            | PortalError::UnknownGoal(_)
            | PortalError::UnknownActivity(_)
            | PortalError::Unknown { .. }
            | PortalError::UnknownExercise(_) => ErrorKind::NotFound,
            PortalError::AlreadyOpen
            | PortalError::DuplicateDomain(_)
            | PortalError::DuplicateDomainName(_)
            | PortalError::TooManyDomains(_)
            | PortalError::DuplicateGoal(_)
            | PortalError::TooManyGoals(_)
            | PortalError::GoalClosed { .. }
            | PortalError::DuplicateActivity(_)
            | PortalError::TooManyActivities(_)
            | PortalError::ActivityClosed { .. }
            | PortalError::DuplicateId { .. }
            | PortalError::DuplicateName { .. }
            | PortalError::TooMany { .. }
            | PortalError::WrongState { .. }
            | PortalError::NothingChanged(_) => ErrorKind::FailedPrecondition,
            PortalError::ScoreOutOfRange { .. }
            | PortalError::UnknownDomain(_)
            | PortalError::InvalidItem { .. }
            | PortalError::TooManyItems { .. }
            | PortalError::InvalidPhone { .. }
            | PortalError::EmptyCrisisPlan
            | PortalError::InvalidExerciseKey { .. } => ErrorKind::BadInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_portal_refusals() {
        let id = Uuid::from_u128(7);
        for not_found in [
            PortalError::NotOpen,
            PortalError::UnknownGoal(id),
            PortalError::UnknownActivity(id),
            PortalError::Unknown {
                item: "medication",
                id,
            },
            PortalError::UnknownExercise("x".into()),
        ] {
            assert_eq!(not_found.kind(), ErrorKind::NotFound, "{not_found}");
        }
        for state in [
            PortalError::AlreadyOpen,
            PortalError::GoalClosed {
                goal_id: id,
                state: "achieved",
            },
            PortalError::NothingChanged("medication"),
            PortalError::DuplicateGoal(id),
            PortalError::TooManyGoals(1000),
        ] {
            assert_eq!(state.kind(), ErrorKind::FailedPrecondition, "{state}");
        }
        for bad in [
            PortalError::UnknownDomain("x".into()),
            PortalError::Input(InputError::text("title")(TextProblem::Empty)),
            InputError::InvalidDomainKey { max: 40 }.into(),
        ] {
            assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
        }
    }

    #[test]
    fn shared_input_checks_keep_their_message() {
        let wrapped = PortalError::from(InputError::text("title")(TextProblem::Empty));
        assert_eq!(wrapped.to_string(), "field `title` must not be empty");
    }
}
