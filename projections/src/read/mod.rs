//! Typed readers of the read models: each takes the organisation it reads
//! within (there is no way to call one without it) and returns typed rows;
//! resolvers hold no SQL of their own. A portal's sections are read
//! through a [`portal::Portal`], which only [`portal::locate`] makes, within
//! a scope.

pub mod care;
pub mod caseload;
pub mod erasure;
pub mod forum;
pub mod history;
pub mod messaging;
pub mod panel;
pub mod portal;
pub mod trail;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::db::DbError;

/// Within which organisation a reader reads: required by every reader.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub organisation: &'a str,
}

fn malformed(table: &str, column: &str, reason: impl std::fmt::Display) -> DbError {
    DbError::Malformed {
        table: table.to_string(),
        reason: format!("{column}: {reason}"),
    }
}

pub(crate) fn text(row: &AnyRow, table: &str, column: &str) -> Result<String, DbError> {
    row.try_get(column).map_err(|e| malformed(table, column, e))
}

pub(crate) fn opt_text(row: &AnyRow, table: &str, column: &str) -> Result<Option<String>, DbError> {
    row.try_get(column).map_err(|e| malformed(table, column, e))
}

pub(crate) fn uuid(row: &AnyRow, table: &str, column: &str) -> Result<Uuid, DbError> {
    Uuid::parse_str(&text(row, table, column)?).map_err(|e| malformed(table, column, e))
}

fn parse_time(table: &str, column: &str, value: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| malformed(table, column, e))
}

pub(crate) fn time(row: &AnyRow, table: &str, column: &str) -> Result<DateTime<Utc>, DbError> {
    parse_time(table, column, &text(row, table, column)?)
}

pub(crate) fn opt_time(
    row: &AnyRow,
    table: &str,
    column: &str,
) -> Result<Option<DateTime<Utc>>, DbError> {
    opt_text(row, table, column)?
        .map(|t| parse_time(table, column, &t))
        .transpose()
}

pub(crate) fn int(row: &AnyRow, table: &str, column: &str) -> Result<i64, DbError> {
    row.try_get(column).map_err(|e| malformed(table, column, e))
}

pub(crate) fn opt_int(row: &AnyRow, table: &str, column: &str) -> Result<Option<i64>, DbError> {
    row.try_get(column).map_err(|e| malformed(table, column, e))
}

pub(crate) fn opt_uuid(row: &AnyRow, table: &str, column: &str) -> Result<Option<Uuid>, DbError> {
    opt_text(row, table, column)?
        .map(|s| Uuid::parse_str(&s).map_err(|e| malformed(table, column, e)))
        .transpose()
}

/// A stored enum by its serde name (snake_case); an unknown name is an
/// error, never a default.
pub(crate) fn named<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    table: &str,
    column: &str,
) -> Result<T, DbError> {
    let name = text(row, table, column)?;
    serde_json::from_value(serde_json::Value::String(name.clone()))
        .map_err(|_| malformed(table, column, format!("unknown value `{name}`")))
}

#[cfg(test)]
mod tests {
    use domain::care::RelationshipState;

    use super::*;
    use crate::db::Db;

    /// Stored values come back typed; one that does not parse is an error
    /// naming the table and column, never a default.
    #[tokio::test]
    async fn stored_values_that_do_not_parse_are_errors() {
        let db = Db::connect("sqlite::memory:", 1)
            .await
            .expect("in-memory store");
        let row = sqlx::query(
            "SELECT 'active' AS good, 'withdrawn' AS bad, 'not-a-uuid' AS id, \
             '2026-11-28T10:00:00Z' AS at, 'yesterday' AS later",
        )
        .fetch_one(&db.pool)
        .await
        .expect("a row");
        let state: RelationshipState = named(&row, "t", "good").expect("a state");
        assert_eq!(state, RelationshipState::Active);
        let error = named::<RelationshipState>(&row, "t", "bad").expect_err("unknown state");
        assert!(error.to_string().contains("withdrawn"), "{error}");
        assert!(error.to_string().contains("bad"), "{error}");
        assert!(uuid(&row, "t", "id").is_err());
        assert!(time(&row, "t", "at").is_ok());
        assert!(time(&row, "t", "later").is_err());
    }
}
