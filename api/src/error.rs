//! The one error type at the edge: every refusal has a stable `code`, and
//! nothing internal reaches the client.

use async_graphql::ErrorExtensions;
use cqrs_es::AggregateError;
use domain::refusal::{ErrorKind, Refusal};

use crate::auth::AuthError;

/// Stable error codes, sent as the `code` extension of every GraphQL error.
pub mod codes {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// Valid input that the current state forbids (a goal already achieved,
    /// a relationship that ended, a portal already open): asking again
    /// later, after something changed, may succeed.
    pub const FAILED_PRECONDITION: &str = "FAILED_PRECONDITION";
    pub const INTERNAL: &str = "INTERNAL";
    /// A request that is not valid HTTP, or not one this service serves
    /// (an impossible `Content-Length`, headers too large or too many, a
    /// method a route does not take).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The request took longer than the server allows.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// An idempotency key sent again with a different request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    /// Too many writes by one person in a short time: wait and retry.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A persisted query's hash that the server does not hold (any more):
    /// send the query with it (Apollo's automatic persisted queries).
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
}

/// Everything a request can fail with.
///
/// Deliberately not `Display`: async-graphql turns any `Display` error into a
/// GraphQL error without a code, and this type must only ever leave through
/// the `From` below, which adds it.
#[derive(Debug)]
pub enum ApiError {
    Unauthenticated(AuthError),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    BadInput(String),
    /// Valid input that the current state forbids.
    FailedPrecondition(String),
    /// An idempotency key reused for a different request.
    KeyReused(String),
    /// Over a rate limit; the message says when to retry.
    RateLimited(String),
    /// Logged in full, reported to the client only as "internal error".
    Internal(String),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Unauthenticated(error)
    }
}

/// For the command line, where the operator should see the full detail.
impl From<ApiError> for Box<dyn std::error::Error> {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Internal(detail) => detail.into(),
            other => other.message().into(),
        }
    }
}

impl ApiError {
    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated(e) => e.to_string(),
            ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::BadInput(m)
            | ApiError::FailedPrecondition(m)
            | ApiError::KeyReused(m)
            | ApiError::RateLimited(m) => m.clone(),
            ApiError::Conflict(m) => format!("{m}; retry the request"),
            ApiError::Internal(_) => "internal error".to_string(),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => codes::UNAUTHENTICATED,
            ApiError::Forbidden(_) => codes::FORBIDDEN,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::Conflict(_) => codes::CONFLICT,
            ApiError::BadInput(_) => codes::BAD_USER_INPUT,
            ApiError::FailedPrecondition(_) => codes::FAILED_PRECONDITION,
            ApiError::KeyReused(_) => codes::IDEMPOTENCY_KEY_REUSED,
            ApiError::RateLimited(_) => codes::RATE_LIMITED,
            ApiError::Internal(_) => codes::INTERNAL,
        }
    }

    /// Wraps an unexpected failure, logging what the client will not see.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let detail = error.to_string();
        tracing::error!(%detail, "internal error");
        ApiError::Internal(detail)
    }
}

/// Failures of the store, of stored JSON and of stored ids are internal:
/// logged in full, reported as "internal error".
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        ApiError::internal(error)
    }
}

/// Start-up failures (migrations, the data folder, keys): internal too.
impl From<sqlx::migrate::MigrateError> for ApiError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        ApiError::internal(error)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<crate::settings::SettingsError> for ApiError {
    fn from(error: crate::settings::SettingsError) -> Self {
        ApiError::internal(error)
    }
}

impl From<uuid::Error> for ApiError {
    fn from(error: uuid::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<projections::DbError> for ApiError {
    fn from(error: projections::DbError) -> Self {
        ApiError::internal(error)
    }
}

impl ApiError {
    /// A rule of the domain refused: its message, under the code of its kind.
    pub fn refused(error: &dyn Refusal) -> Self {
        match error.kind() {
            ErrorKind::NotFound => ApiError::NotFound(error.to_string()),
            ErrorKind::BadInput => ApiError::BadInput(error.to_string()),
            ErrorKind::Forbidden => ApiError::Forbidden(error.to_string()),
            ErrorKind::FailedPrecondition => ApiError::FailedPrecondition(error.to_string()),
        }
    }
}

/// `?` on a domain refusal: each aggregate's error type (and the shared
/// input checks) converts by its kind.
macro_rules! refusals {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for ApiError {
            fn from(error: $error) -> Self {
                ApiError::refused(&error)
            }
        })*
    };
}

refusals!(
    domain::refusal::InputError,
    domain::portal::PortalError,
    domain::catalogue::CatalogueError,
    domain::care::ProviderError,
    domain::care::CareError,
    domain::agreement::AgreementError,
    domain::messaging::ConversationError,
    domain::study::StudyError,
    domain::study::EnrolmentError,
);

/// What went wrong when storing a command's events; `E` is the aggregate's
/// error type.
#[derive(Debug)]
pub enum StoreFailure<E> {
    /// Another command on the same aggregate won the race.
    Conflict,
    /// The idempotency key was already claimed by another request.
    KeyReused,
    /// A rule of the domain refused the command.
    Rule(E),
    /// Anything else.
    Other(String),
}

/// Sorts a cqrs-es error into what the edge needs to know.
pub fn classify<E: Refusal>(error: AggregateError<E>) -> StoreFailure<E> {
    match error {
        AggregateError::UserError(e) => StoreFailure::Rule(e),
        AggregateError::AggregateConflict => StoreFailure::Conflict,
        AggregateError::DatabaseConnectionError(e)
        | AggregateError::DeserializationError(e)
        | AggregateError::UnexpectedError(e) => {
            if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                if code == "PX409" || db.message().contains("idempotency key already used") {
                    return StoreFailure::KeyReused;
                }
                // Unique violations (SQLite 2067/1555, PostgreSQL 23505), a busy
                // SQLite (5, 517) and PostgreSQL serialization failures: retryable.
                if matches!(
                    code.as_str(),
                    "2067" | "1555" | "5" | "517" | "23505" | "40001" | "40P01"
                ) {
                    return StoreFailure::Conflict;
                }
            }
            StoreFailure::Other(e.to_string())
        }
    }
}

/// Parse and validation errors (syntax, unknown fields, depth, complexity,
/// wrong argument types) come from async-graphql without a code: they are
/// all the client's input, `BAD_USER_INPUT`.
pub fn code_input_errors(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            // The message Apollo's clients look for, with the code newer ones do.
            let code = if error.message == "PersistedQueryNotFound" {
                codes::PERSISTED_QUERY_NOT_FOUND
            } else {
                codes::BAD_USER_INPUT
            };
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        async_graphql::Error::new(error.message()).extend_with(|_, e| e.set("code", code))
    }
}
