//! The one error type of the tools: each variant says what failed, and its
//! message is for the person at the command line (unlike the service's
//! `ApiError`, which keeps details from clients).

use std::path::{Path, PathBuf};

use api::error::ApiError;
use uuid::Uuid;

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument or setting: the message says what to change.
    #[error("{0}")]
    Input(String),
    /// The study asked for is not in the store.
    #[error("no study {0} in this store (check --study and PORTAL_DATABASE_URL)")]
    NoStudy(Uuid),
    /// The settings: a key that cannot be read or made.
    #[error(transparent)]
    Settings(#[from] api::settings::SettingsError),
    /// Reading or writing the event store.
    #[error("event store: {0}")]
    Store(#[from] projections::DbError),
    /// A row of the event stream that cannot be read.
    #[error("event store: a malformed row in the event stream: {0}")]
    Corrupt(String),
    /// An event the research measures cannot be computed from.
    #[error("research measures: {0}")]
    Fold(#[from] projections::research::FoldError),
    /// A file or folder, with its path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing a Parquet file.
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The built-in font of the figures.
    #[error("the built-in font (DejaVu Sans) does not load")]
    Font,
    /// The measures lack a table a figure is drawn from.
    #[error("research measures: no {0} table")]
    MissingTable(String),
    /// Drawing a figure into a file.
    #[error("drawing {}: {source}", path.display())]
    Plot {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An HTTP request to a running server (with the causes reqwest's own
    /// message leaves out, such as "Connection refused").
    #[error("HTTP: {}", with_causes(.0))]
    Http(#[from] reqwest::Error),
    /// A WebSocket connection to a running server.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A GraphQL operation answered with errors.
    #[error("{operation} failed: {detail}")]
    Refused { operation: String, detail: String },
    /// Minting a bearer token.
    #[error("token: {0}")]
    Token(#[from] api::auth::AuthError),
    /// The service's own code (opening the service, migrating the store),
    /// with the full detail of an internal error.
    #[error("service ({}): {}", .0.code(), service_detail(.0))]
    Service(ApiError),
    /// An access-trail record the simulation waited for was not written.
    #[error("access trail: {0}")]
    AccessTrail(String),
    /// A worker task panicked or was cancelled.
    #[error("a worker stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// An error and the chain of its causes, each once.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    text
}

/// What an operator should see of a service error: everything.
fn service_detail(error: &ApiError) -> String {
    match error {
        ApiError::Internal(detail) => detail.clone(),
        other => other.message(),
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Error::Service(error)
    }
}

/// A failure of the store's driver is a failure of the store.
impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Store(projections::DbError::Sql(error))
    }
}

/// The tools' result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error: `file.write_all(b).at(&path)?`.
pub trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for std::result::Result<T, std::io::Error> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
