//! Messaging: each thread and each participant's read receipt, for lists
//! with unread counts. Who may read a thread's messages is decided from the
//! events, never from here.

use domain::messaging::{ConversationEvent, CONVERSATION_TYPE};
use sqlx::{Any, Transaction};

use crate::db::{execute as exec, ts, upsert, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The messaging projection.
pub struct Messaging;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "messaging";

#[async_trait::async_trait]
impl Projection for Messaging {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["msg_threads", "msg_participants"]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS msg_threads_{s} (conversation_id TEXT PRIMARY KEY, \
                 organisation TEXT NOT NULL, user_id TEXT NOT NULL, subject TEXT NOT NULL, \
                 started_by TEXT NOT NULL, started_at TEXT NOT NULL, last_at TEXT NOT NULL, \
                 messages BIGINT NOT NULL, closed BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS msg_participants_{s} (conversation_id TEXT NOT NULL, \
                 participant_id TEXT NOT NULL, side TEXT NOT NULL, read_count BIGINT NOT NULL, \
                 PRIMARY KEY (conversation_id, participant_id))"
            ),
        ]
    }

    fn indexes(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE INDEX IF NOT EXISTS msg_participants_{s}_who ON msg_participants_{s} (participant_id)"
            ),
        ]
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&[CONVERSATION_TYPE, domain::erasure::ERASURE_TYPE])
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let (threads, people) = (format!("msg_threads_{s}"), format!("msg_participants_{s}"));
        for stored in events {
            if let Some(erased) = crate::erasure::erased_by(stored) {
                // A subject is its starter's words.
                exec(
                    tx,
                    &format!(
                        "UPDATE {threads} SET subject = '' WHERE started_by = $1 AND organisation = $2"
                    ),
                    vec![erased.person.to_string().into(), erased.organisation.into()],
                )
                .await?;
                continue;
            }
            if stored.aggregate_type != CONVERSATION_TYPE {
                continue;
            }
            let id = stored.aggregate_id.as_str();
            match stored.decode::<ConversationEvent>()? {
                ConversationEvent::ConversationStarted {
                    organisation,
                    user_id,
                    providers,
                    subject,
                    started_by,
                    at,
                    ..
                } => {
                    upsert(
                        tx,
                        &threads,
                        &[
                            "conversation_id",
                            "organisation",
                            "user_id",
                            "subject",
                            "started_by",
                            "started_at",
                            "last_at",
                            "messages",
                            "closed",
                        ],
                        &["conversation_id"],
                        vec![vec![
                            id.into(),
                            organisation.into(),
                            user_id.to_string().into(),
                            subject.into(),
                            started_by.to_string().into(),
                            ts(at).into(),
                            ts(at).into(),
                            0.into(),
                            0.into(),
                        ]],
                    )
                    .await?;
                    let mut rows = vec![vec![
                        Val::from(id),
                        user_id.to_string().into(),
                        "service_user".into(),
                        0.into(),
                    ]];
                    for provider in providers {
                        rows.push(vec![
                            id.into(),
                            provider.to_string().into(),
                            "provider".into(),
                            0.into(),
                        ]);
                    }
                    upsert(
                        tx,
                        &people,
                        &["conversation_id", "participant_id", "side", "read_count"],
                        &["conversation_id", "participant_id"],
                        rows,
                    )
                    .await?;
                }
                ConversationEvent::MessagePosted { by, at, .. } => {
                    exec(
                        tx,
                        &format!(
                            "UPDATE {threads} SET messages = messages + 1, last_at = $1 WHERE conversation_id = $2"
                        ),
                        vec![ts(at).into(), id.into()],
                    )
                    .await?;
                    // One has read what one wrote, and everything before it.
                    exec(
                        tx,
                        &format!(
                            "UPDATE {people} SET read_count = (SELECT messages FROM {threads} WHERE conversation_id = $1) \
                             WHERE conversation_id = $1 AND participant_id = $2"
                        ),
                        vec![id.into(), by.to_string().into()],
                    )
                    .await?;
                }
                ConversationEvent::MessagesRead { by, count, .. } => {
                    exec(
                        tx,
                        &format!(
                            "UPDATE {people} SET read_count = $1 WHERE conversation_id = $2 AND participant_id = $3"
                        ),
                        vec![(count as i64).into(), id.into(), by.to_string().into()],
                    )
                    .await?;
                }
                ConversationEvent::ProviderRemoved { provider, .. } => {
                    exec(
                        tx,
                        &format!(
                            "UPDATE {people} SET side = 'removed' WHERE conversation_id = $1 AND participant_id = $2"
                        ),
                        vec![id.into(), provider.to_string().into()],
                    )
                    .await?;
                }
                ConversationEvent::ConversationClosed { .. } => {
                    exec(
                        tx,
                        &format!("UPDATE {threads} SET closed = 1 WHERE conversation_id = $1"),
                        vec![id.into()],
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}
