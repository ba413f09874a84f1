//! History: every event of a portal, indexed by what it is about (a goal with
//! its activities, the status of a life domain), for "how did this change?".
//!
//! The index holds only what it needs to find and order events; the event
//! itself (payload, metadata, recording time) is read from the events table by
//! its primary key, so nothing is stored twice.

use domain::portal::{PortalEvent, Section};
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
    "section",
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

/// The sequence number of the portal's last event at or before `$3`, as a
/// subquery over the history `table` (`$1` portal id, `$3` a time written by
/// [`crate::db::ts`]). The state "as it stood at T" is every event up to it.
fn cutoff(table: &str, time: &str) -> String {
    format!("(SELECT COALESCE(MAX(x.sequence), 0) FROM {table} x WHERE x.portal_id = $1 AND x.at <= {time})")
}

/// Which of a section's events a [`section_query`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// All of them, oldest first.
    All,
    /// Only the newest.
    Latest,
    /// Only the one after skipping `$4` (a count).
    Nth,
}

/// The events of one section of a portal as it stood at a time: `$1` portal
/// id, `$2` section name, `$3` the time. Columns: sequence, data.
pub fn section_query(backend: Backend, table: &str, pick: Pick) -> String {
    let data = match backend {
        Backend::Postgres => "e.payload::text",
        Backend::Sqlite => "e.payload",
    };
    let order = match pick {
        Pick::All => "ASC",
        Pick::Latest => "DESC LIMIT 1",
        Pick::Nth => "ASC LIMIT 1 OFFSET $4",
    };
    format!(
        "SELECT h.sequence, {data} AS data FROM {table} h JOIN events e \
           ON e.aggregate_type = 'Portal' AND e.aggregate_id = h.portal_id AND e.sequence = h.sequence \
         WHERE h.portal_id = $1 AND h.section = $2 AND h.sequence <= {} \
         ORDER BY h.sequence {order}",
        cutoff(table, "$3")
    )
}

/// Counts per section and event type of a portal as it stood at a time:
/// `$1` portal id, `$2` the time.
/// Columns: section, event_type, n, last_at, last_sequence.
pub fn summary_query(table: &str) -> String {
    format!(
        "SELECT section, event_type, COUNT(*) AS n, MAX(at) AS last_at, MAX(sequence) AS last_sequence \
         FROM {table} WHERE portal_id = $1 AND sequence <= {} GROUP BY section, event_type",
        cutoff(table, "$2")
    )
}

/// The newest changes of a portal as it stood at a time: `$1` portal id, `$2`
/// how many, `$3` the time. Columns: sequence, section, event_type, at.
pub fn recent_query(table: &str) -> String {
    format!(
        "SELECT sequence, section, event_type, at FROM {table} \
         WHERE portal_id = $1 AND sequence <= {} ORDER BY sequence DESC LIMIT $2",
        cutoff(table, "$3")
    )
}

/// What a portal event is about: (kind, id).
pub fn subject(portal_id: &str, event: &PortalEvent) -> (&'static str, String) {
    match event {
        PortalEvent::PortalOpened { .. } => ("portal", portal_id.to_string()),
        PortalEvent::LifeDomainAdded { key, .. } => ("domain", key.clone()),
        PortalEvent::StatusRated { domain, .. } => ("status", domain.clone()),
        PortalEvent::CrisisPlanRevised { .. } => ("crisis_plan", portal_id.to_string()),
        other if other.section() != Section::Core => (
            other.section().as_str(),
            other.item_id().map(|g| g.to_string()).unwrap_or_default(),
        ),
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
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &["history"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS history_{s} (portal_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
                 position BIGINT NOT NULL, subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL, \
                 section TEXT NOT NULL, event_type TEXT NOT NULL, at TEXT NOT NULL, \
                 PRIMARY KEY (portal_id, sequence))"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS history_{s}_section ON history_{s} (portal_id, section, sequence)"
            ),
            format!("CREATE INDEX IF NOT EXISTS history_{s}_at ON history_{s} (portal_id, at)"),
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
                event.section().as_str().into(),
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
