//! Erasures, as the erasure projection keeps them (issue 18).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::text;
use crate::db::{ts, Db, DbError};
use crate::engine::Engine;

/// Requests that fell due by `now` and are not carried out: (person,
/// organisation). Across organisations: the service's own watch.
pub async fn due(
    engine: &Engine,
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>, DbError> {
    let table = engine.table(crate::care::NAME, "erasures");
    let rows = sqlx::query(&format!(
        "SELECT person_id, organisation FROM {table} \
         WHERE due_at IS NOT NULL AND due_at <= $1 AND erased_at IS NULL ORDER BY due_at LIMIT 500"
    ))
    .bind(ts(now))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id = text(row, &table, "person_id")?;
            let person = Uuid::parse_str(&id).map_err(|e| DbError::Malformed {
                table: table.clone(),
                reason: e.to_string(),
            })?;
            Ok((person, text(row, &table, "organisation")?))
        })
        .collect()
}

/// Which of `people` of `organisation` were erased.
pub async fn erased_among(
    engine: &Engine,
    db: &Db,
    organisation: &str,
    people: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, DbError> {
    let table = engine.table(crate::care::NAME, "erasures");
    let mut erased = std::collections::HashSet::new();
    for chunk in people.chunks(500) {
        let sql = format!(
            "SELECT person_id FROM {table} WHERE erased_at IS NOT NULL AND organisation = $1 \
             AND person_id IN ({})",
            crate::db::params(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(organisation);
        for person in chunk {
            query = query.bind(person.to_string());
        }
        for row in query.fetch_all(&db.pool).await? {
            if let Ok(person) = Uuid::parse_str(&text(&row, &table, "person_id")?) {
                erased.insert(person);
            }
        }
    }
    Ok(erased)
}
