//! Durability asserted, not assumed: at start the service reads how the
//! store commits and refuses to serve when an acknowledged write or trail
//! record could be lost in a crash (unless `store.allow_unsafe_commits`).
//!
//! PostgreSQL must run with `fsync`, `full_page_writes` and a
//! `synchronous_commit` that waits for the local flush (`on`, `local`,
//! `remote_write`, `remote_apply`). SQLite must keep a journal on disk (not
//! `off` or `memory`) and sync at least FULL (in WAL mode NORMAL loses the
//! last commits on power loss). The service sets SQLite's modes itself, and
//! the trail's connection sets its own; this reads back what the store
//! actually does, so a changed default, a database-level override or a
//! misconfigured server is caught.

use projections::Backend;
use sqlx::{PgPool, SqlitePool};

use crate::error::ApiError;

/// How a PostgreSQL store commits, as its settings say.
pub async fn postgres(pool: &PgPool) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut values = Vec::new();
    for name in ["fsync", "full_page_writes", "synchronous_commit"] {
        let value: String = sqlx::query_scalar(&format!("SHOW {name}"))
            .fetch_one(pool)
            .await?;
        values.push((name, value));
    }
    Ok(values)
}

/// How a SQLite store commits, as a connection of its pool says.
pub async fn sqlite(pool: &SqlitePool) -> Result<Vec<(&'static str, String)>, ApiError> {
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await?;
    Ok(vec![
        ("journal_mode", journal.to_lowercase()),
        ("synchronous", synchronous.to_string()),
    ])
}

/// The settings among `values` that let a commit be acknowledged before it
/// is on disk, as `name = value`.
pub fn unsafe_settings(backend: Backend, values: &[(&'static str, String)]) -> Vec<String> {
    let safe = |name: &str, value: &str| match (backend, name) {
        (Backend::Postgres, "fsync" | "full_page_writes") => value == "on",
        (Backend::Postgres, "synchronous_commit") => {
            matches!(value, "on" | "local" | "remote_write" | "remote_apply")
        }
        (Backend::Sqlite, "journal_mode") => !matches!(value, "off" | "memory"),
        // 2 = FULL, 3 = EXTRA.
        (Backend::Sqlite, "synchronous") => value.parse::<i64>().is_ok_and(|n| n >= 2),
        _ => true,
    };
    values
        .iter()
        .filter(|(name, value)| !safe(name, value))
        .map(|(name, value)| format!("{name} = {value}"))
        .collect()
}

/// Refuses to go on with a store that does not flush commits, unless
/// allowed; then it warns.
pub fn enforce(problems: &[String], allow: bool) -> Result<(), ApiError> {
    if problems.is_empty() {
        return Ok(());
    }
    let list = problems.join(", ");
    if allow {
        tracing::warn!(
            settings = %list,
            "the store does not flush every commit to disk: acknowledged writes and access-trail \
             records can be lost in a crash (allowed by store.allow_unsafe_commits)"
        );
        return Ok(());
    }
    Err(ApiError::internal(format!(
        "the store does not flush every commit to disk ({list}): acknowledged writes and \
         access-trail records could be lost in a crash. Fix the database's settings, or set \
         PORTAL_ALLOW_UNSAFE_COMMITS=true (store.allow_unsafe_commits) to serve anyway"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(n, v)| (*n, v.to_string())).collect()
    }

    #[test]
    fn postgres_must_flush_every_commit() {
        let good = values(&[
            ("fsync", "on"),
            ("full_page_writes", "on"),
            ("synchronous_commit", "on"),
        ]);
        assert!(unsafe_settings(Backend::Postgres, &good).is_empty());
        for commit in ["local", "remote_write", "remote_apply"] {
            let mut v = good.clone();
            v[2].1 = commit.into();
            assert!(
                unsafe_settings(Backend::Postgres, &v).is_empty(),
                "{commit}"
            );
        }
        let bad = values(&[
            ("fsync", "off"),
            ("full_page_writes", "off"),
            ("synchronous_commit", "off"),
        ]);
        assert_eq!(
            unsafe_settings(Backend::Postgres, &bad),
            [
                "fsync = off",
                "full_page_writes = off",
                "synchronous_commit = off"
            ]
        );
    }

    #[test]
    fn sqlite_must_keep_a_journal_and_sync_fully() {
        for journal in ["wal", "delete", "truncate", "persist"] {
            let v = values(&[("journal_mode", journal), ("synchronous", "2")]);
            assert!(unsafe_settings(Backend::Sqlite, &v).is_empty(), "{journal}");
        }
        let v = values(&[("journal_mode", "memory"), ("synchronous", "1")]);
        assert_eq!(
            unsafe_settings(Backend::Sqlite, &v),
            ["journal_mode = memory", "synchronous = 1"]
        );
        let v = values(&[("journal_mode", "off"), ("synchronous", "0")]);
        assert_eq!(unsafe_settings(Backend::Sqlite, &v).len(), 2);
    }

    #[test]
    fn unsafe_stores_are_refused_unless_allowed() {
        let problems = vec!["fsync = off".to_string()];
        assert!(enforce(&problems, false).is_err());
        assert!(enforce(&problems, true).is_ok());
        assert!(enforce(&[], false).is_ok());
    }
}
