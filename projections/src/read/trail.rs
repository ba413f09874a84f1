//! The access log that people and auditors read: searches of the access
//! projection within one organisation, with the readers' display names.

use chrono::{DateTime, Utc};
use domain::trail::Basis;
use uuid::Uuid;

use super::{int, named, opt_int, opt_text, opt_time, opt_uuid, text, time, uuid, Scope};
use crate::db::{bind, ts, Db, DbError, Val};
use crate::engine::Engine;

/// One record of the access log.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub position: i64,
    pub at: DateTime<Utc>,
    pub reader_id: Uuid,
    /// The reader's display name, for registered providers.
    pub reader_name: Option<String>,
    pub reader_role: String,
    pub reader_organisation: String,
    pub subject_id: Option<Uuid>,
    pub section: String,
    pub query: String,
    pub basis: Basis,
    pub relationship_id: Option<Uuid>,
    pub basis_sequence: Option<i64>,
    pub refusal: Option<String>,
    pub detail: Option<String>,
    pub request_id: String,
    pub client_address: Option<String>,
    /// Refused attempts the record stands for (1 for a read).
    pub attempts: i64,
    /// The first of several attempts.
    pub first_at: Option<DateTime<Utc>>,
}

/// What to search for, within the scope's organisation; every field
/// narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Whose portal (or trail) was read.
    pub subject: Option<Uuid>,
    /// Who read.
    pub reader: Option<Uuid>,
    /// Reads by anyone but this person.
    pub reader_not: Option<Uuid>,
    /// `core`, ..., or `access_log`.
    pub section: Option<String>,
    /// Only reads of portal content that were let through (grant or break-glass).
    pub disclosures_only: bool,
    /// Only reads let through (`Some(true)`) or only refused attempts (`Some(false)`).
    pub allowed: Option<bool>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Before this position.
    pub before_position: Option<i64>,
}

/// In which order [`search`] returns entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// Up to `limit` entries matching `filter` in `scope`'s organisation.
pub async fn search(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    filter: &Filter,
    order: Order,
    limit: i64,
) -> Result<Vec<EntryRow>, DbError> {
    let access = engine.table(crate::access::NAME, "access_log");
    let providers = engine.table(crate::care::NAME, "care_providers");
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Val> = Vec::new();
    let mut and = |condition: &str, value: Val| {
        values.push(value);
        conditions.push(condition.replace('?', &format!("${}", values.len())));
    };
    and("a.organisation = ?", scope.organisation.into());
    if let Some(subject) = filter.subject {
        and("a.subject_id = ?", subject.to_string().into());
    }
    if let Some(reader) = filter.reader {
        and("a.reader_id = ?", reader.to_string().into());
    }
    if let Some(reader) = filter.reader_not {
        and("a.reader_id <> ?", reader.to_string().into());
    }
    if let Some(section) = &filter.section {
        and("a.section = ?", section.as_str().into());
    }
    if let Some(from) = filter.from {
        and("a.at >= ?", ts(from).into());
    }
    if let Some(to) = filter.to {
        and("a.at < ?", ts(to).into());
    }
    if let Some(position) = filter.before_position {
        and("a.position < ?", position.into());
    }
    if filter.disclosures_only {
        conditions.push("a.basis IN ('grant', 'break_glass', 'admin')".into());
    }
    match filter.allowed {
        Some(true) => conditions.push("a.basis <> 'refused'".into()),
        Some(false) => conditions.push("a.basis = 'refused'".into()),
        None => {}
    }
    let order = match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };
    let sql = format!(
        "SELECT a.position, a.at, a.reader_id, p.display_name AS reader_name, \
         a.reader_role, a.reader_organisation, a.subject_id, a.section, a.query, a.basis, \
         a.relationship_id, a.basis_sequence, a.refusal, a.detail, a.request_id, a.client_address, \
         a.attempts, a.first_at \
         FROM {access} a LEFT JOIN {providers} p ON p.provider_id = a.reader_id \
         WHERE {} ORDER BY a.position {order} LIMIT {limit}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query(&sql);
    for value in values {
        query = bind(query, value);
    }
    let t = access.as_str();
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(EntryRow {
                position: int(row, t, "position")?,
                at: time(row, t, "at")?,
                reader_id: uuid(row, t, "reader_id")?,
                reader_name: opt_text(row, t, "reader_name")?,
                reader_role: text(row, t, "reader_role")?,
                reader_organisation: text(row, t, "reader_organisation")?,
                subject_id: opt_uuid(row, t, "subject_id")?,
                section: text(row, t, "section")?,
                query: text(row, t, "query")?,
                basis: named(row, t, "basis")?,
                relationship_id: opt_uuid(row, t, "relationship_id")?,
                basis_sequence: opt_int(row, t, "basis_sequence")?,
                refusal: opt_text(row, t, "refusal")?,
                detail: opt_text(row, t, "detail")?,
                request_id: text(row, t, "request_id")?,
                client_address: opt_text(row, t, "client_address")?,
                attempts: int(row, t, "attempts")?,
                first_at: opt_time(row, t, "first_at")?,
            })
        })
        .collect()
}

/// When `reader` last read any section of `subject`'s portal in `scope`'s
/// organisation, at or before `at` (a read let through, not a caseload
/// glance).
pub async fn last_look(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    reader: Uuid,
    subject: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let access = engine.table(crate::access::NAME, "access_log");
    let row = sqlx::query(&format!(
        "SELECT MAX(at) AS last FROM {access} WHERE organisation = $1 AND subject_id = $2 \
         AND reader_id = $3 AND basis IN ('grant', 'break_glass') AND query <> 'caseload' \
         AND at <= $4"
    ))
    .bind(scope.organisation)
    .bind(subject.to_string())
    .bind(reader.to_string())
    .bind(ts(at))
    .fetch_one(&db.pool)
    .await?;
    super::opt_time(&row, &access, "last")
}
