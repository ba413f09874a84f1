//! History: every event of a portal, indexed by what it is about (a goal with
//! its activities, the status of a life domain), for "how did this change?".

use domain::portal::PortalEvent;
use sqlx::{Any, Transaction};

use crate::db::{upsert, DbError, Val};
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
    "recorded_at",
    "actor_id",
    "actor_role",
    "request_id",
    "data",
];

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
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["history"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS history_{s} (portal_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
                 position BIGINT NOT NULL, subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL, \
                 event_type TEXT NOT NULL, at TEXT NOT NULL, recorded_at TEXT NOT NULL, actor_id TEXT NOT NULL, \
                 actor_role TEXT NOT NULL, request_id TEXT NOT NULL, data TEXT NOT NULL, \
                 PRIMARY KEY (portal_id, sequence))"
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
                stored.recorded_at.as_str().into(),
                stored.metadata.actor_id.as_str().into(),
                stored.metadata.actor_role.as_str().into(),
                stored.metadata.request_id.as_str().into(),
                stored.payload.to_string().into(),
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
