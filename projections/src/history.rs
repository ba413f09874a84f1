//! History: every event of a portal, indexed by what it is about (a goal with
//! its activities, the status of a life domain), for "how did this change?".
//!
//! The index holds only what it needs to find and order events; the event
//! itself (payload, metadata, recording time) is read from the events table by
//! its primary key, so nothing is stored twice.

use domain::portal::PortalEvent;
use sqlx::{Any, Transaction};

use crate::db::{upsert, Backend, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The history projection.
pub struct History;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "history";

const COLS: &[&str] = &[
    "portal_id",
    "sequence",
    "position",
    "subject_kind",
    "subject_id",
    "event_type",
    "at",
];

/// The query behind goal and status histories: `$1` portal id, `$2` subject
/// kind, `$3` subject id, over the history `table` of the live slot. Columns:
/// sequence, position, event_type, at, recorded_at, actor_id, actor_role,
/// request_id, data.
pub fn query(backend: Backend, table: &str) -> String {
    let (recorded_at, meta, data) = match backend {
        Backend::Postgres => (
            "to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            "e.metadata ->> ",
            "e.payload::text",
        ),
        Backend::Sqlite => ("e.recorded_at", "e.metadata ->> ", "e.payload"),
    };
    format!(
        "SELECT h.sequence, h.position, h.event_type, h.at, {recorded_at} AS recorded_at, \
         {meta}'actor_id' AS actor_id, {meta}'actor_role' AS actor_role, {meta}'request_id' AS request_id, \
         {data} AS data \
         FROM {table} h JOIN events e \
           ON e.aggregate_type = 'Portal' AND e.aggregate_id = h.portal_id AND e.sequence = h.sequence \
         WHERE h.portal_id = $1 AND h.subject_kind = $2 AND h.subject_id = $3 ORDER BY h.sequence"
    )
}

/// What a portal event is about: (kind, id).
pub fn subject(portal_id: &str, event: &PortalEvent) -> (&'static str, String) {
    match event {
        PortalEvent::PortalOpened { .. } => ("portal", portal_id.to_string()),
        PortalEvent::LifeDomainAdded { key, .. } => ("domain", key.clone()),
        PortalEvent::StatusRated { domain, .. } => ("status", domain.clone()),
        other => (
            "goal",
            other.goal_id().map(|g| g.to_string()).unwrap_or_default(),
        ),
    }
}

#[async_trait::async_trait]
impl Projection for History {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &["history"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS history_{s} (portal_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
                 position BIGINT NOT NULL, subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL, \
                 event_type TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (portal_id, sequence))"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS history_{s}_subject ON history_{s} (portal_id, subject_kind, subject_id, sequence)"
            ),
        ]
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let mut rows = Vec::with_capacity(events.len());
        for stored in events.iter().filter(|e| e.aggregate_type == "Portal") {
            let event: PortalEvent = stored.decode()?;
            let (kind, id) = subject(&stored.aggregate_id, &event);
            rows.push(vec![
                Val::from(stored.aggregate_id.as_str()),
                stored.sequence.into(),
                stored.checkpoint.position.into(),
                kind.into(),
                id.into(),
                stored.event_type.as_str().into(),
                crate::db::ts(event.at()).into(),
            ]);
        }
        upsert(
            tx,
            &format!("history_{s}"),
            COLS,
            &["portal_id", "sequence"],
            rows,
        )
        .await
    }
}
