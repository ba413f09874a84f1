//! What every aggregate's error has in common: a [`Refusal`] has a message for
//! the client (its `Display`) and a class ([`ErrorKind`]) the API turns into a
//! stable error code. Each aggregate has its own error enum, listing only what
//! that aggregate can refuse; the checks of input that several aggregates
//! share are one enum, [`InputError`], which they wrap.

use crate::text::TextProblem;

/// How the edge should classify a rule violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is wrong.
    BadInput,
    /// The thing named does not exist.
    NotFound,
    /// The caller may not do this (the wrong side of a care relationship).
    Forbidden,
    /// The input is valid, but the current state forbids it (a goal already
    /// achieved, a relationship that ended, nothing would change).
    FailedPrecondition,
}

/// A rule of an aggregate refused a command. `Display` is the message for the
/// client; [`Refusal::kind`] is its class. Every aggregate's `Error` is one, so
/// the API can handle them all as `A::Error: Refusal`.
pub trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The class of this refusal, for the API's stable error codes.
    fn kind(&self) -> ErrorKind;
}

/// Input that breaks a check several aggregates share. Always the client's
/// to fix: [`ErrorKind::BadInput`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("field `{field}` {problem}")]
    InvalidText {
        field: &'static str,
        problem: TextProblem,
    },
    #[error("field `{field}` must be between {min} and {max}, got {got}")]
    OutOfRange {
        field: &'static str,
        got: i32,
        min: i32,
        max: i32,
    },
    #[error("field `key` must be 1-{max} characters of a-z, 0-9 and _, starting with a letter")]
    InvalidDomainKey { max: usize },
}

impl InputError {
    /// Names the field of a [`TextProblem`]: `.map_err(InputError::text("title"))?`
    /// (the `?` turns it into the aggregate's own error).
    pub(crate) fn text(field: &'static str) -> impl FnOnce(TextProblem) -> InputError {
        move |problem| InputError::InvalidText { field, problem }
    }
}

impl Refusal for InputError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_are_bad_input() {
        for bad in [
            InputError::text("title")(TextProblem::Empty),
            InputError::OutOfRange {
                field: "rating",
                got: 0,
                min: 1,
                max: 5,
            },
            InputError::InvalidDomainKey { max: 40 },
        ] {
            assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
        }
    }

    #[test]
    fn input_messages_name_the_field() {
        assert_eq!(
            InputError::text("title")(TextProblem::TooLong { max: 200 }).to_string(),
            "field `title` must be at most 200 characters"
        );
        assert_eq!(
            InputError::OutOfRange {
                field: "rating",
                got: 0,
                min: 1,
                max: 5
            }
            .to_string(),
            "field `rating` must be between 1 and 5, got 0"
        );
        assert_eq!(
            InputError::InvalidDomainKey { max: 40 }.to_string(),
            "field `key` must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        );
    }
}
