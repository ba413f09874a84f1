//! One SQL path for both stores, through sqlx's `Any` driver.
//!
//! The projections and read queries use SQL that PostgreSQL and SQLite both
//! accept (`$n` parameters, `ON CONFLICT ... DO UPDATE`), and portable column
//! types: integers, text, and UTC timestamps as fixed-width RFC 3339 text so they
//! sort as strings. Only the event-stream read differs per store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Transaction};

/// Which store a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: production.
    Postgres,
    /// SQLite: the embedded default.
    Sqlite,
}

impl Backend {
    /// The backend a database URL names.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::Config(
                "database URL must start with postgres://, postgresql:// or sqlite:".into(),
            ))
        }
    }

    /// A `json` column read as its stored text: PostgreSQL hands json back
    /// as json, SQLite keeps the text as written.
    pub fn json_text(self, column: &str) -> String {
        match self {
            Backend::Postgres => format!("{column}::text"),
            Backend::Sqlite => column.to_string(),
        }
    }
}

/// Errors of the read side.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("corrupt event {position}: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("read model {table}: {reason}")]
    Malformed { table: String, reason: String },
    #[error("checkpoint of `{0}` moved under us; another runner is active")]
    CheckpointMoved(String),
}

impl From<crate::vault::VaultError> for DbError {
    fn from(e: crate::vault::VaultError) -> Self {
        match e {
            crate::vault::VaultError::Sql(e) => DbError::Sql(e),
            other => DbError::Config(other.to_string()),
        }
    }
}

/// A pool onto either store.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Person keys: every payload this crate reads is opened through it
    /// (locked, sealed payloads are an error, until the service unlocks it).
    pub vault: crate::vault::Vault,
}

impl Db {
    /// Connects with `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        // Statement logging would print every multi-row upsert in full.
        use sqlx::ConnectOptions;
        let options = sqlx::any::AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out by default: a round
            // trip per query (issue 16's profile). A connection that died is
            // found by the query itself and dropped; `max_lifetime` renews them.
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    relax_durability(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let vault = crate::vault::Vault::new(pool.clone());
        Ok(Db {
            pool,
            backend,
            vault,
        })
    }
}

/// This pool writes only read models, which can always be rebuilt from the
/// events and whose checkpoint commits with their rows: a crash may lose the
/// last few projection commits, never their consistency, and the runner
/// re-applies them. So these commits skip the wait for the disk flush
/// (PostgreSQL `synchronous_commit = off`; SQLite `synchronous = NORMAL` in WAL
/// mode). Event appends go through the event store's own pool, fully durable.
///
/// On SQLite it also turns `secure_delete` on: what a read model blanks on an
/// erasure (and a destroyed key) is overwritten in the file, not left in its
/// free pages (issue 18).
async fn relax_durability(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    if conn.backend_name() == "SQLite" {
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        conn.execute("PRAGMA secure_delete = ON").await?;
    } else {
        conn.execute("SET synchronous_commit = off").await?;
    }
    Ok(())
}

/// A value bound into a portable statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Text(String),
    /// NULL in an integer column (PostgreSQL needs the type).
    NullInt,
    /// NULL in a text column.
    NullText,
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Val::NullInt, Val::Int)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        v.map_or(Val::NullText, Val::Text)
    }
}

/// Binds a value with its type, NULLs included.
pub fn bind<'q>(q: Query<'q, Any, AnyArguments<'q>>, v: Val) -> Query<'q, Any, AnyArguments<'q>> {
    match v {
        Val::Int(i) => q.bind(i),
        Val::Text(s) => q.bind(s),
        Val::NullInt => q.bind(None::<i64>),
        Val::NullText => q.bind(None::<String>),
    }
}

/// `$start, $start+1, ...` for `n` parameters.
pub fn params(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for `n` parameters starting at `start`, as the connection's
/// store binds them fastest. SQLite looks up each named parameter (`$n`) with a
/// linear scan, which makes a statement with thousands of them quadratic; its
/// anonymous `?` binds in order at no cost.
fn placeholders(tx: &Transaction<'_, Any>, start: usize, n: usize) -> String {
    if tx.backend_name() == "SQLite" {
        vec!["?"; n].join(", ")
    } else {
        params(start, n)
    }
}

/// Runs one statement with its values in the transaction.
pub async fn execute(
    tx: &mut Transaction<'_, Any>,
    sql: &str,
    vals: Vec<Val>,
) -> Result<(), DbError> {
    let mut q = sqlx::query(sql);
    for v in vals {
        q = bind(q, v);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Inserts or replaces rows in one statement per chunk. `key` columns are the
/// conflict target; every other column is overwritten.
pub async fn upsert(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    columns: &[&str],
    key: &[&str],
    rows: Vec<Vec<Val>>,
) -> Result<(), DbError> {
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let conflict = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    insert_rows(
        tx,
        table,
        columns,
        rows,
        &format!("ON CONFLICT ({}) {conflict}", key.join(", ")),
    )
    .await
}

/// Inserts rows in one statement per chunk, each statement ending with
/// `on_conflict` (an `ON CONFLICT ...` clause, or nothing). No two rows of
/// one call may have the same key when the clause updates.
pub async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Val>>,
    on_conflict: &str,
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Stay far below both stores' parameter limits (SQLite 32766, PostgreSQL 65535).
    let per_chunk = (30_000 / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_chunk).collect();
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                format!(
                    "({})",
                    placeholders(tx, r * columns.len() + 1, columns.len())
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} {on_conflict}",
            columns.join(", "),
            values.join(", "),
        );
        let mut q = sqlx::query(&sql);
        for v in chunk.into_iter().flatten() {
            q = bind(q, v);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Fetches rows of `select` whose `column` is one of `keys`, in chunks.
pub async fn fetch_in(
    tx: &mut Transaction<'_, Any>,
    select: &str,
    column: &str,
    keys: &[String],
) -> Result<Vec<AnyRow>, DbError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(5_000) {
        let sql = format!(
            "{select} WHERE {column} IN ({})",
            placeholders(tx, 1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// A UTC time as fixed-width RFC 3339 text (microseconds, `Z`), which sorts
/// correctly as a string in both stores.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
