//! What a provider's caseload shows of each portal: when the provider last
//! read each section (from the access trail) and how many changes each has
//! had since (from the history index). Two queries for the whole caseload,
//! whatever its size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::portal::Section;
use uuid::Uuid;

use super::{malformed, opt_time, text, uuid, Scope};
use crate::db::{params, Db, DbError};
use crate::engine::Engine;

/// One section of one portal on a caseload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionActivity {
    /// When the reader last read it (a granted or break-glass read).
    pub last_looked_at: Option<DateTime<Utc>>,
    /// Events in it since then (all of them, if never).
    pub changes: i64,
}

/// By (portal, section): when `reader` last read each section of each of
/// `portals` within `scope`, and the changes since. Sections neither read
/// nor changed are absent (nothing to show: never looked, no changes).
pub async fn activity(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    portals: &[Uuid],
) -> Result<HashMap<(Uuid, Section), SectionActivity>, DbError> {
    let mut out: HashMap<(Uuid, Section), SectionActivity> = HashMap::new();
    if portals.is_empty() {
        return Ok(out);
    }
    let access = engine.table(crate::access::NAME, "access_log");
    let history = engine.table(crate::history::NAME, "history");
    let ids: Vec<String> = portals.iter().map(Uuid::to_string).collect();
    let looks = format!(
        "SELECT subject_id, section, MAX(at) AS last FROM {access} \
         WHERE organisation = $1 AND reader_id = $2 AND basis IN ('grant', 'break_glass') \
         AND query <> 'caseload' AND subject_id IN ({}) GROUP BY subject_id, section",
        params(3, ids.len())
    );
    let section_of = |table: &str, row: &sqlx::any::AnyRow| -> Result<Section, DbError> {
        let name = text(row, table, "section")?;
        Section::parse(&name)
            .ok_or_else(|| malformed(table, "section", format!("unknown section `{name}`")))
    };
    let mut query = sqlx::query(&looks)
        .bind(scope.organisation)
        .bind(reader.to_string());
    for id in &ids {
        query = query.bind(id);
    }
    for row in query.fetch_all(&db.pool).await? {
        let key = (
            uuid(&row, &access, "subject_id")?,
            section_of(&access, &row)?,
        );
        out.entry(key).or_default().last_looked_at = opt_time(&row, &access, "last")?;
    }
    let changes = format!(
        "SELECT h.portal_id, h.section, COUNT(*) AS changes FROM {history} h \
         LEFT JOIN ({looks}) l ON l.subject_id = h.portal_id AND l.section = h.section \
         WHERE h.portal_id IN ({}) AND (l.last IS NULL OR h.at > l.last) \
         GROUP BY h.portal_id, h.section",
        params(3 + ids.len(), ids.len())
    );
    let mut query = sqlx::query(&changes)
        .bind(scope.organisation)
        .bind(reader.to_string());
    for id in ids.iter().chain(&ids) {
        query = query.bind(id);
    }
    for row in query.fetch_all(&db.pool).await? {
        let key = (
            uuid(&row, &history, "portal_id")?,
            section_of(&history, &row)?,
        );
        let changes: i64 =
            sqlx::Row::try_get(&row, "changes").map_err(|e| malformed(&history, "changes", e))?;
        out.entry(key).or_default().changes = changes;
    }
    Ok(out)
}
