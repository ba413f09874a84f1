//! Care: provider profiles, relationships and the grants currently given,
//! for lists (a user's team, a provider's caseload). Access decisions never
//! read this: they fold the relationship's own events, so a revocation holds
//! for the very next read whatever the projection's lag.

use domain::care::{CareEvent, ProviderEvent, PROVIDER_TYPE, RELATIONSHIP_TYPE};
use sqlx::{Any, Transaction};

use crate::db::{execute as exec, ts, upsert, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The care projection.
pub struct Care;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "care";

#[async_trait::async_trait]
impl Projection for Care {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        // 2: erasures (issue 18).
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "care_providers",
            "care_relationships",
            "care_grants",
            "erasures",
        ]
    }

    fn create(&self, s: &str) -> Vec<String> {
        let mut tables = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS care_providers_{s} (provider_id TEXT PRIMARY KEY, \
                 organisation TEXT NOT NULL, display_name TEXT NOT NULL, profession TEXT NOT NULL, \
                 registered_at TEXT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS care_relationships_{s} (relationship_id TEXT PRIMARY KEY, \
                 user_id TEXT NOT NULL, provider_id TEXT NOT NULL, organisation TEXT NOT NULL, \
                 state TEXT NOT NULL, invited_by TEXT NOT NULL, invited_at TEXT NOT NULL, \
                 expires_at TEXT, since TEXT, ended_at TEXT, updated_at TEXT NOT NULL, \
                 break_glass_until TEXT)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS care_grants_{s} (relationship_id TEXT NOT NULL, \
                 section TEXT NOT NULL, granted_at TEXT NOT NULL, until TEXT, \
                 PRIMARY KEY (relationship_id, section))"
            ),
        ];
        tables.extend(crate::erasure::create(s));
        tables
    }

    fn indexes(&self, s: &str) -> Vec<String> {
        let mut indexes = vec![
            format!(
                "CREATE INDEX IF NOT EXISTS care_providers_{s}_org ON care_providers_{s} (organisation, display_name)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS care_relationships_{s}_user ON care_relationships_{s} (user_id)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS care_relationships_{s}_provider ON care_relationships_{s} (provider_id)"
            ),
        ];
        indexes.extend(crate::erasure::indexes(s));
        indexes
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&[
            PROVIDER_TYPE,
            RELATIONSHIP_TYPE,
            domain::erasure::ERASURE_TYPE,
        ])
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        for stored in events {
            if stored.aggregate_type == domain::erasure::ERASURE_TYPE {
                crate::erasure::apply(tx, s, stored).await?;
            }
            if let Some(erased) = crate::erasure::erased_by(stored) {
                // A provider's name is theirs (what a rebuild reads once
                // their key is gone).
                exec(
                    tx,
                    &format!(
                        "UPDATE care_providers_{s} SET display_name = '' \
                         WHERE provider_id = $1 AND organisation = $2"
                    ),
                    vec![erased.person.to_string().into(), erased.organisation.into()],
                )
                .await?;
                continue;
            }
            match stored.aggregate_type.as_str() {
                PROVIDER_TYPE => provider(tx, s, stored).await?,
                RELATIONSHIP_TYPE => relationship(tx, s, stored).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

async fn provider(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    let id = stored.aggregate_id.as_str();
    match stored.decode::<ProviderEvent>()? {
        ProviderEvent::ProviderRegistered {
            organisation,
            display_name,
            profession,
            at,
        } => {
            upsert(
                tx,
                &format!("care_providers_{s}"),
                &[
                    "provider_id",
                    "organisation",
                    "display_name",
                    "profession",
                    "registered_at",
                ],
                &["provider_id"],
                vec![vec![
                    id.into(),
                    organisation.into(),
                    display_name.into(),
                    name(&profession).into(),
                    ts(at).into(),
                ]],
            )
            .await
        }
        ProviderEvent::ProviderProfileChanged {
            display_name,
            profession,
            ..
        } => {
            exec(
                tx,
                &format!(
                    "UPDATE care_providers_{s} SET display_name = $1, profession = $2 WHERE provider_id = $3"
                ),
                vec![display_name.into(), name(&profession).into(), id.into()],
            )
            .await
        }
    }
}

/// The snake_case name serde gives a unit enum variant.
fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn relationship(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    let id = stored.aggregate_id.as_str();
    let (rels, grants) = (
        format!("care_relationships_{s}"),
        format!("care_grants_{s}"),
    );
    let set_state = |state: &str| {
        format!("UPDATE {rels} SET state = '{state}', expires_at = NULL, updated_at = $1")
    };
    let clear_grants = format!("DELETE FROM {grants} WHERE relationship_id = $1");
    match stored.decode::<CareEvent>()? {
        CareEvent::Invited {
            user_id,
            provider_id,
            organisation,
            by,
            expires_at,
            at,
            ..
        } => {
            upsert(
                tx,
                &rels,
                &[
                    "relationship_id",
                    "user_id",
                    "provider_id",
                    "organisation",
                    "state",
                    "invited_by",
                    "invited_at",
                    "expires_at",
                    "since",
                    "ended_at",
                    "updated_at",
                    "break_glass_until",
                ],
                &["relationship_id"],
                vec![vec![
                    id.into(),
                    user_id.to_string().into(),
                    provider_id.to_string().into(),
                    organisation.into(),
                    "invited".into(),
                    by.as_str().into(),
                    ts(at).into(),
                    ts(expires_at).into(),
                    Val::NullText,
                    Val::NullText,
                    ts(at).into(),
                    Val::NullText,
                ]],
            )
            .await?;
            exec(tx, &clear_grants, vec![id.into()]).await
        }
        CareEvent::InvitationAccepted { at, .. } => {
            let sql = format!(
                "{}, since = $1 WHERE relationship_id = $2",
                set_state("active")
            );
            exec(tx, &sql, vec![ts(at).into(), id.into()]).await
        }
        CareEvent::InvitationDeclined { at, .. } => {
            let sql = format!(
                "{}, ended_at = $1 WHERE relationship_id = $2",
                set_state("declined")
            );
            exec(tx, &sql, vec![ts(at).into(), id.into()]).await
        }
        CareEvent::RelationshipEnded { at, .. } => {
            let sql = format!(
                "{}, ended_at = $1, break_glass_until = NULL WHERE relationship_id = $2",
                set_state("ended")
            );
            exec(tx, &sql, vec![ts(at).into(), id.into()]).await?;
            exec(tx, &clear_grants, vec![id.into()]).await
        }
        CareEvent::ConsentGranted { section, until, at } => {
            upsert(
                tx,
                &grants,
                &["relationship_id", "section", "granted_at", "until"],
                &["relationship_id", "section"],
                vec![vec![
                    id.into(),
                    section.as_str().into(),
                    ts(at).into(),
                    until.map(ts).into(),
                ]],
            )
            .await?;
            touch(tx, &rels, at, id).await
        }
        CareEvent::ConsentRevoked { section, at } => {
            exec(
                tx,
                &format!("DELETE FROM {grants} WHERE relationship_id = $1 AND section = $2"),
                vec![id.into(), section.as_str().into()],
            )
            .await?;
            touch(tx, &rels, at, id).await
        }
        CareEvent::BreakGlassOpened { until, at, .. } => {
            exec(
                tx,
                &format!(
                    "UPDATE {rels} SET break_glass_until = $1, updated_at = $2 WHERE relationship_id = $3"
                ),
                vec![ts(until).into(), ts(at).into(), id.into()],
            )
            .await
        }
    }
}

async fn touch(
    tx: &mut Transaction<'_, Any>,
    rels: &str,
    at: chrono::DateTime<chrono::Utc>,
    id: &str,
) -> Result<(), DbError> {
    exec(
        tx,
        &format!("UPDATE {rels} SET updated_at = $1 WHERE relationship_id = $2"),
        vec![ts(at).into(), id.into()],
    )
    .await
}
