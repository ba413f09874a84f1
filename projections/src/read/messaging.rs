//! A person's message threads, with what they have read of each.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{int, text, time, uuid, Scope};
use crate::db::{Db, DbError};
use crate::engine::Engine;
use crate::messaging::NAME;

/// Most threads one list returns.
pub const THREADS_MAX: i64 = 500;

/// A thread as one of its participants sees it in their list.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRow {
    pub conversation_id: Uuid,
    /// The service user the thread is with.
    pub user_id: Uuid,
    pub subject: String,
    pub started_by: Uuid,
    pub last_at: DateTime<Utc>,
    /// Messages in it.
    pub messages: i64,
    /// How many of them the participant has read.
    pub read_count: i64,
}

/// The threads `participant` is (or was) in within `scope`, newest activity
/// first, at most [`THREADS_MAX`].
pub async fn threads(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    participant: Uuid,
) -> Result<Vec<ThreadRow>, DbError> {
    let (threads, people) = (
        engine.table(NAME, "msg_threads"),
        engine.table(NAME, "msg_participants"),
    );
    let rows = sqlx::query(&format!(
        "SELECT t.conversation_id, t.user_id, t.subject, t.started_by, t.last_at, t.messages, p.read_count \
         FROM {people} p JOIN {threads} t ON t.conversation_id = p.conversation_id \
         WHERE p.participant_id = $1 AND t.organisation = $2 \
         ORDER BY t.last_at DESC, t.conversation_id LIMIT {THREADS_MAX}"
    ))
    .bind(participant.to_string())
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    let t = threads.as_str();
    rows.iter()
        .map(|row| {
            Ok(ThreadRow {
                conversation_id: uuid(row, t, "conversation_id")?,
                user_id: uuid(row, t, "user_id")?,
                subject: text(row, t, "subject")?,
                started_by: uuid(row, t, "started_by")?,
                last_at: time(row, t, "last_at")?,
                messages: int(row, t, "messages")?,
                read_count: int(row, &people, "read_count")?,
            })
        })
        .collect()
}

/// The threads with service user `user` that `provider` is (or was) in,
/// within `scope`, by id.
pub async fn shared(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    user: Uuid,
    provider: Uuid,
) -> Result<Vec<Uuid>, DbError> {
    let (threads, people) = (
        engine.table(NAME, "msg_threads"),
        engine.table(NAME, "msg_participants"),
    );
    let rows = sqlx::query(&format!(
        "SELECT t.conversation_id FROM {people} p JOIN {threads} t ON t.conversation_id = p.conversation_id \
         WHERE p.participant_id = $1 AND t.user_id = $2 AND t.organisation = $3 \
         ORDER BY t.conversation_id"
    ))
    .bind(provider.to_string())
    .bind(user.to_string())
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| uuid(row, &threads, "conversation_id"))
        .collect()
}
