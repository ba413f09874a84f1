//! Typed readers of the read models: each takes the organisation it reads
//! within (there is no way to call one without it) and returns typed rows;
//! resolvers hold no SQL of their own. (Being moved here one projection at
//! a time: the care relationships first.)

pub mod care;
pub mod caseload;

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
