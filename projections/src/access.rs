//! The access trail, searchable: one row per record of every `AccessTrail`
//! chain, by subject, by reader and by organisation over time. The chains
//! themselves (and their hashes) stay in the event store; `portal audit verify`
//! checks those, not this table.

use domain::trail::{AccessRecord, AGGREGATE_TYPE};
use sqlx::{Any, Transaction};

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
];

#[async_trait::async_trait]
impl Projection for Access {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["access_log"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS access_log_{s} (position BIGINT PRIMARY KEY, \
                 chain TEXT NOT NULL, sequence BIGINT NOT NULL, organisation TEXT NOT NULL, \
                 subject_id TEXT, reader_id TEXT NOT NULL, reader_role TEXT NOT NULL, \
                 reader_organisation TEXT NOT NULL, section TEXT NOT NULL, query TEXT NOT NULL, \
                 basis TEXT NOT NULL, relationship_id TEXT, basis_sequence BIGINT, refusal TEXT, \
                 detail TEXT, at TEXT NOT NULL, request_id TEXT NOT NULL, client_address TEXT)"
            ),
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

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let mut rows = Vec::new();
        for stored in events.iter().filter(|e| e.aggregate_type == AGGREGATE_TYPE) {
            let r: AccessRecord = stored.decode()?;
            rows.push(vec![
                stored.checkpoint.position.into(),
                stored.aggregate_id.as_str().into(),
                stored.sequence.into(),
                r.organisation.into(),
                r.subject_id.map(|id| id.to_string()).into(),
                r.reader_id.to_string().into(),
                r.reader_role.into(),
                r.reader_organisation.into(),
                r.section.into(),
                r.query.into(),
                r.basis.as_str().into(),
                r.relationship_id.map(|id| id.to_string()).into(),
                Val::from(r.basis_sequence),
                r.refusal.into(),
                r.detail.into(),
                ts(r.at).into(),
                r.request_id.into(),
                r.client_address.into(),
            ]);
        }
        upsert(tx, &format!("access_log_{s}"), COLS, &["position"], rows).await
    }
}
