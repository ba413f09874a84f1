//! The access trail, searchable: one row per record of every `AccessTrail`
//! chain, by subject, by reader and by organisation over time. The chains
//! themselves (and their hashes) stay in the event store; `portal audit verify`
//! checks those, not this table.

use domain::trail::{AccessRecord, AGGREGATE_TYPE};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{ts, upsert, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The access projection.
pub struct Access;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "access";

/// Columns of `access_log`, in insert order.
pub const COLS: &[&str] = &[
    "position",
    "chain",
    "sequence",
    "organisation",
    "subject_id",
    "reader_id",
    "reader_role",
    "reader_organisation",
    "section",
    "query",
    "basis",
    "relationship_id",
    "basis_sequence",
    "refusal",
    "detail",
    "at",
    "request_id",
    "client_address",
    "attempts",
    "first_at",
];

/// One row of the access log: what the projection writes for a record, and
/// what `portal audit verify` reads back to compare with the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub position: i64,
    pub chain: String,
    pub sequence: i64,
    pub organisation: String,
    pub subject_id: Option<String>,
    pub reader_id: String,
    pub reader_role: String,
    pub reader_organisation: String,
    pub section: String,
    pub query: String,
    pub basis: String,
    pub relationship_id: Option<String>,
    pub basis_sequence: Option<i64>,
    pub refusal: Option<String>,
    pub detail: Option<String>,
    pub at: String,
    pub request_id: String,
    pub client_address: Option<String>,
    /// Refused attempts the record stands for (1 for a read).
    pub attempts: i64,
    /// The first of several attempts.
    pub first_at: Option<String>,
}

impl LogRow {
    /// The row of record `r`, stored at `position` as record `sequence` of `chain`.
    pub fn of(position: i64, chain: &str, sequence: i64, r: AccessRecord) -> Self {
        LogRow {
            position,
            chain: chain.to_string(),
            sequence,
            organisation: r.organisation,
            subject_id: r.subject_id.map(|id| id.to_string()),
            reader_id: r.reader_id.to_string(),
            reader_role: r.reader_role,
            reader_organisation: r.reader_organisation,
            section: r.section,
            query: r.query,
            basis: r.basis.as_str().to_string(),
            relationship_id: r.relationship_id.map(|id| id.to_string()),
            basis_sequence: r.basis_sequence,
            refusal: r.refusal,
            detail: r.detail,
            at: ts(r.at),
            request_id: r.request_id,
            client_address: r.client_address,
            attempts: i64::from(r.attempts),
            first_at: r.first_at.map(ts),
        }
    }

    /// Reads a row selected with its columns prefixed by `prefix` (as
    /// [`LogRow::select`] names them); `None` when the row is absent (a
    /// left join found nothing).
    pub fn read(row: &AnyRow, prefix: &str) -> Result<Option<Self>, sqlx::Error> {
        let col = |c: &str| format!("{prefix}{c}");
        let Some(position) = row.try_get::<Option<i64>, _>(col("position").as_str())? else {
            return Ok(None);
        };
        let text = |c: &str| row.try_get::<String, _>(col(c).as_str());
        let maybe = |c: &str| row.try_get::<Option<String>, _>(col(c).as_str());
        Ok(Some(LogRow {
            position,
            chain: text("chain")?,
            sequence: row.try_get(col("sequence").as_str())?,
            organisation: text("organisation")?,
            subject_id: maybe("subject_id")?,
            reader_id: text("reader_id")?,
            reader_role: text("reader_role")?,
            reader_organisation: text("reader_organisation")?,
            section: text("section")?,
            query: text("query")?,
            basis: text("basis")?,
            relationship_id: maybe("relationship_id")?,
            basis_sequence: row.try_get(col("basis_sequence").as_str())?,
            refusal: maybe("refusal")?,
            detail: maybe("detail")?,
            at: text("at")?,
            request_id: text("request_id")?,
            client_address: maybe("client_address")?,
            attempts: row.try_get(col("attempts").as_str())?,
            first_at: maybe("first_at")?,
        }))
    }

    /// The select list of every column of table alias `table`, each named
    /// `<prefix><column>`.
    pub fn select(table: &str, prefix: &str) -> String {
        COLS.iter()
            .map(|c| format!("{table}.{c} AS {prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of the columns in which `self` and `other` differ.
    pub fn differences(&self, other: &LogRow) -> Vec<&'static str> {
        let a = self.clone().values();
        let b = other.clone().values();
        COLS.iter()
            .zip(a.iter().zip(&b))
            .filter(|(_, (x, y))| x != y)
            .map(|(c, _)| *c)
            .collect()
    }

    fn values(self) -> Vec<Val> {
        vec![
            self.position.into(),
            self.chain.into(),
            self.sequence.into(),
            self.organisation.into(),
            self.subject_id.into(),
            self.reader_id.into(),
            self.reader_role.into(),
            self.reader_organisation.into(),
            self.section.into(),
            self.query.into(),
            self.basis.into(),
            self.relationship_id.into(),
            Val::from(self.basis_sequence),
            self.refusal.into(),
            self.detail.into(),
            self.at.into(),
            self.request_id.into(),
            self.client_address.into(),
            self.attempts.into(),
            self.first_at.into(),
        ]
    }
}

#[async_trait::async_trait]
impl Projection for Access {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        // 2: refused attempts coalesced into one record (attempts, first_at).
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &["access_log"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![format!(
            "CREATE TABLE IF NOT EXISTS access_log_{s} (position BIGINT PRIMARY KEY, \
                 chain TEXT NOT NULL, sequence BIGINT NOT NULL, organisation TEXT NOT NULL, \
                 subject_id TEXT, reader_id TEXT NOT NULL, reader_role TEXT NOT NULL, \
                 reader_organisation TEXT NOT NULL, section TEXT NOT NULL, query TEXT NOT NULL, \
                 basis TEXT NOT NULL, relationship_id TEXT, basis_sequence BIGINT, refusal TEXT, \
                 detail TEXT, at TEXT NOT NULL, request_id TEXT NOT NULL, client_address TEXT, \
                 attempts BIGINT NOT NULL, first_at TEXT)"
        )]
    }

    fn indexes(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE INDEX IF NOT EXISTS access_log_{s}_subject ON access_log_{s} (subject_id, at, position)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS access_log_{s}_reader ON access_log_{s} (reader_id, at, position)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS access_log_{s}_org ON access_log_{s} (organisation, at, position)"
            ),
        ]
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&[AGGREGATE_TYPE, domain::erasure::ERASURE_TYPE])
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let table = format!("access_log_{s}");
        let mut rows = Vec::new();
        for stored in events {
            if let Some(erased) = crate::erasure::erased_by(stored) {
                // A detail is sealed with its subject's key (the reader's
                // for a search of no one): what a rebuild reads is none.
                upsert(tx, &table, COLS, &["position"], std::mem::take(&mut rows)).await?;
                crate::db::execute(
                    tx,
                    &format!(
                        "UPDATE {table} SET detail = NULL WHERE ((subject_id = $1 AND organisation = $2) \
                         OR (subject_id IS NULL AND reader_id = $1 AND reader_organisation = $2)) \
                         AND position IN (SELECT position FROM events WHERE aggregate_type = 'AccessTrail' \
                           AND CAST(payload AS TEXT) LIKE '%\"$sealed\"%')"
                    ),
                    vec![erased.person.to_string().into(), erased.organisation.into()],
                )
                .await?;
                continue;
            }
            if stored.aggregate_type != AGGREGATE_TYPE {
                continue;
            }
            let record: AccessRecord = stored.decode()?;
            let position = stored.checkpoint.position;
            rows.push(LogRow::of(position, &stored.aggregate_id, stored.sequence, record).values());
        }
        upsert(tx, &table, COLS, &["position"], rows).await
    }

    /// The log people read is evidence: a rebuild may not lose a row.
    fn kept_on_rebuild(&self) -> Option<&'static str> {
        Some("position")
    }
}
