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

/// The query behind every item's history: `$1` portal id, `$2` subject
/// kind, `$3` subject id, `$4` the sequence to start after, `$5` how many, over
/// the history `table` of the live slot. Columns:
/// sequence, position, event_type, at, recorded_at, actor_id, actor_role,
/// request_id, data.
///
/// `ranked`: `$4` counts entries to skip instead of naming a sequence number,
/// for readers who must not see the portal's numbering (its gaps tell of
/// changes elsewhere in the portal).
pub fn query(backend: Backend, table: &str, ranked: bool) -> String {
    let recorded_at = match backend {
        Backend::Postgres => {
            "to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        }
        Backend::Sqlite => "e.recorded_at",
    };
    let (meta, data) = ("e.metadata ->> ", payload(backend));
    let items = by_items(backend, table);
    let (after, page) = if ranked {
        ("", "LIMIT $5 OFFSET $4")
    } else {
        (" AND h.sequence > $4", "LIMIT $5")
    };
    format!(
        "SELECT h.sequence, h.position, h.event_type, h.at, {recorded_at} AS recorded_at, \
         {meta}'actor_id' AS actor_id, {meta}'actor_role' AS actor_role, {meta}'request_id' AS request_id, \
         {data} AS data \
         FROM {table} h{items} {THEN_EVENTS} \
         WHERE h.portal_id = $1 AND h.subject_kind = $2 AND h.subject_id = $3{after} \
           AND {EVENT_OF_H} \
         ORDER BY h.sequence {page}"
    )
}

/// The sequence number of the portal's last event at or before a time, as a
/// subquery over the history `table` (`$1` portal id, `$3` a time written by
/// [`crate::db::ts`]). The state "as it stood at T" is every event up to it.
///
/// Event times never decrease along a portal's sequence (the aggregate
/// stamps them so), so this is one step down the `(portal_id, at, sequence)` index.
fn cutoff(table: &str, time: &str) -> String {
    format!(
        "COALESCE((SELECT x.sequence FROM {table} x WHERE x.portal_id = $1 AND x.at <= {time} \
         ORDER BY x.at DESC, x.sequence DESC LIMIT 1), 0)"
    )
}

/// On SQLite, `INDEXED BY` the item index: its planner would otherwise answer
/// a bound on `sequence` (or an `ORDER BY sequence`) from the primary key
/// (portal, sequence), scanning every event of a large portal. PostgreSQL
/// plans from its statistics.
fn by_items(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!(" INDEXED BY {table}_items"),
        Backend::Postgres => String::new(),
    }
}

/// Which revisions a [`plan_query`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Only the newest.
    Latest,
    /// Only the one after skipping `$4` (a count).
    Nth,
}

/// Revisions of the crisis plan as it stood at a time: `$1` portal id, `$2`
/// its subject kind (`crisis_plan`; the plan's subject id is the portal's), `$3`
/// the time. Columns: sequence, data. Each revision holds the whole plan, so
/// [`Pick::Latest`] or [`Pick::Nth`] reads one row down the item index.
pub fn plan_query(backend: Backend, table: &str, pick: Pick) -> String {
    let data = payload(backend);
    let order = match pick {
        Pick::Latest => "DESC LIMIT 1",
        Pick::Nth => "ASC LIMIT 1 OFFSET $4",
    };
    format!(
        "SELECT h.sequence, {data} AS data FROM {table} h{} {THEN_EVENTS} \
         WHERE h.portal_id = $1 AND h.subject_kind = $2 AND h.subject_id = $1 \
           AND h.event_type = 'CrisisPlanRevised' AND h.sequence <= {} AND {EVENT_OF_H} \
         ORDER BY h.sequence {order}",
        by_items(backend, table),
        cutoff(table, "$3")
    )
}

fn payload(backend: Backend) -> String {
    backend.json_text("e.payload")
}

/// The events table after the history index `h`: a `CROSS JOIN`, so that
/// SQLite reads the index first and each event by key (PostgreSQL plans it as
/// an inner join), with [`EVENT_OF_H`] in the `WHERE`.
const THEN_EVENTS: &str = "CROSS JOIN events e";
const EVENT_OF_H: &str =
    "e.aggregate_type = 'Portal' AND e.aggregate_id = h.portal_id AND e.sequence = h.sequence";

/// The payload of history row `h`, looked up by primary key: for queries
/// that return few rows of a large portal, where a join might be planned as a
/// scan of all the portal's events.
fn payload_of_h(backend: Backend) -> String {
    format!(
        "(SELECT {} FROM events e WHERE e.aggregate_type = 'Portal' AND e.aggregate_id = h.portal_id \
         AND e.sequence = h.sequence)",
        payload(backend)
    )
}

/// What the control panel needs of the core section as it stood at a time,
/// and no more: `$1` portal id, `$2` the time.
/// Opening, life domains, the events of goals still active then, and the
/// latest status rating of each domain. Columns: sequence, data.
pub fn panel_query(backend: Backend, table: &str) -> String {
    let (data, c) = (payload_of_h(backend), cutoff(table, "$2"));
    let items = by_items(backend, table);
    format!(
        "SELECT h.sequence, {data} AS data FROM {table} h{items} \
         WHERE h.portal_id = $1 AND h.subject_kind IN ('portal', 'domain', 'goal') \
           AND h.sequence <= {c} \
           AND NOT (h.subject_kind = 'goal' AND h.subject_id IN (SELECT g.subject_id FROM {table} g{items} \
                WHERE g.portal_id = $1 AND g.subject_kind = 'goal' \
                  AND g.event_type IN ('GoalAchieved', 'GoalAbandoned') AND g.sequence <= {c})) \
         UNION ALL \
         SELECT h.sequence, {data} AS data FROM {table} h \
         WHERE h.portal_id = $1 AND h.subject_kind = 'status' AND h.sequence IN (SELECT MAX(s.sequence) \
                FROM {table} s WHERE s.portal_id = $1 AND s.subject_kind = 'status' AND s.sequence <= {c} \
                GROUP BY s.subject_id) \
         ORDER BY 1"
    )
}

/// How many events of each subject of one kind a portal had at a time: `$1`
/// portal id, `$2` subject kind, `$3` the time. Columns: subject_id, n.
pub fn subject_counts_query(table: &str) -> String {
    format!(
        "SELECT subject_id, COUNT(*) AS n FROM {table} \
         WHERE portal_id = $1 AND subject_kind = $2 AND sequence <= {} GROUP BY subject_id",
        cutoff(table, "$3")
    )
}

/// How many events of each type one section of a portal had at a time: `$1`
/// portal id, `$2` section, `$3` the time. Columns: event_type, n.
pub fn type_counts_query(table: &str) -> String {
    format!(
        "SELECT event_type, COUNT(*) AS n FROM {table} \
         WHERE portal_id = $1 AND section = $2 AND sequence <= {} GROUP BY event_type",
        cutoff(table, "$3")
    )
}

/// The events of the newest `$4` items of one toolbox section (newest by
/// their first event, `first_event`) as they stood at a time: `$1` portal id,
/// `$2` section (also the items' subject kind), `$3` the time. Columns:
/// sequence, data. Reads `$4` items' events, however long the section: the
/// `CROSS JOIN` makes SQLite start from the `$4` newest items (PostgreSQL
/// plans it as an inner join).
pub fn newest_items_query(backend: Backend, table: &str, first_event: &str) -> String {
    let (data, c) = (payload_of_h(backend), cutoff(table, "$3"));
    format!(
        "SELECT h.sequence, {data} AS data FROM \
           (SELECT f.subject_id FROM {table} f WHERE f.portal_id = $1 AND f.section = $2 \
              AND f.event_type = '{first_event}' AND f.sequence <= {c} AND f.sequence < $5 \
            ORDER BY f.sequence DESC LIMIT $4 OFFSET $6) n \
         CROSS JOIN {table} h{} \
         WHERE h.portal_id = $1 AND h.subject_kind = $2 AND h.subject_id = n.subject_id \
           AND h.sequence <= {c} \
         ORDER BY h.sequence",
        by_items(backend, table)
    )
}

/// The newest items of a section, as [`newest_items_query`] picks them,
/// with the sequence of each one's first event: `$1` portal id, `$2`
/// section, `$3` the time, `$4` how many, `$5` only first events before this
/// sequence, `$6` after skipping this many. Columns: subject_id, sequence
/// (newest first).
pub fn newest_item_keys_query(table: &str, first_event: &str) -> String {
    let c = cutoff(table, "$3");
    format!(
        "SELECT f.subject_id, f.sequence FROM {table} f WHERE f.portal_id = $1 AND f.section = $2 \
           AND f.event_type = '{first_event}' AND f.sequence <= {c} AND f.sequence < $5 \
         ORDER BY f.sequence DESC LIMIT $4 OFFSET $6"
    )
}

/// The newest event of each type of each item of a toolbox section as it
/// stood at a time: `$1` portal id, `$2` section (its items' subject kind), `$3` the time. Columns:
/// sequence, data. Where an item's state is set by the newest event of each
/// kind (medications, people), folding these gives the same items as folding
/// every event, from an index scan and a few rows per item.
pub fn latest_per_type_query(backend: Backend, table: &str) -> String {
    let (data, c) = (payload_of_h(backend), cutoff(table, "$3"));
    format!(
        "SELECT h.sequence, {data} AS data FROM {table} h \
         WHERE h.portal_id = $1 AND h.sequence IN (SELECT MAX(l.sequence) FROM {table} l \
               WHERE l.portal_id = $1 AND l.subject_kind = $2 AND l.sequence <= {c} \
               GROUP BY l.subject_id, l.event_type) \
         ORDER BY h.sequence"
    )
}

/// How many events of one type each item of a section had at a time: `$1`
/// portal id, `$2` section (its items' subject kind), `$3` the time, `$4` event type. Columns: subject_id, n.
pub fn item_counts_query(backend: Backend, table: &str) -> String {
    format!(
        "SELECT subject_id, COUNT(*) AS n FROM {table}{} \
         WHERE portal_id = $1 AND subject_kind = $2 AND sequence <= {} AND event_type = $4 GROUP BY subject_id",
        by_items(backend, table),
        cutoff(table, "$3")
    )
}

/// Counts per section and event type of a portal as it stood at a time:
/// `$1` portal id, `$2` the time. Columns: section, event_type, n, last_at
/// (the time of the newest such event). Counted on an index, no rows read.
pub fn summary_query(table: &str) -> String {
    format!(
        "SELECT c.section, c.event_type, c.n, l.at AS last_at FROM \
           (SELECT section, event_type, COUNT(*) AS n, MAX(sequence) AS last_sequence FROM {table} \
            WHERE portal_id = $1 AND sequence <= {} GROUP BY section, event_type) c \
         JOIN {table} l ON l.portal_id = $1 AND l.sequence = c.last_sequence",
        cutoff(table, "$2")
    )
}

/// The newest changes of a portal as it stood at a time: `$1` portal id, `$2`
/// how many, `$3` the time. Columns: sequence, section, event_type, at.
pub fn recent_query(table: &str, section_only: bool) -> String {
    // `$4`: only changes before this sequence; `$5`: skip this many; `$6`:
    // the one section to show (someone other than the owner reading).
    let section = if section_only {
        " AND section = $6"
    } else {
        ""
    };
    format!(
        "SELECT sequence, section, event_type, at FROM {table} \
         WHERE portal_id = $1 AND sequence <= {} AND sequence < $4{section} \
         ORDER BY sequence DESC LIMIT $2 OFFSET $5",
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
        6
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
        ]
    }

    fn indexes(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE INDEX IF NOT EXISTS history_{s}_at ON history_{s} (portal_id, at, sequence)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS history_{s}_types ON history_{s} (portal_id, section, event_type, sequence)"
            ),
            // One index per item (goal, domain status, medication, person,
            // exercise entry, crisis plan) and kind of event: item histories,
            // the newest event of each kind, counts per item.
            format!(
                "CREATE INDEX IF NOT EXISTS history_{s}_items ON history_{s} (portal_id, subject_kind, subject_id, event_type, sequence)"
            ),
        ]
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&["Portal"])
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
