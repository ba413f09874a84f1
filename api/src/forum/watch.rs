//! Concerns no moderator has opened are raised again, until one does.

use chrono::Utc;
use domain::forum::{Topic, TopicCommand};
use projections::read::forum as rows;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::Service;

/// Raises again every concern no moderator has opened within
/// `forum.concern_reraise_after`, every tenth of that interval (at most
/// every 30 s), until the service stops. Each raising is an event (live to
/// moderators online), an ERROR log line, a metric, and a run of
/// `forum.concern_command` if set.
pub async fn watch_concerns(svc: std::sync::Arc<Service>) {
    let every = svc.settings.forum.concern_reraise_after;
    let tick = (every / 10).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(30),
    );
    loop {
        tokio::time::sleep(tick).await;
        if let Err(error) = reraise_due(&svc).await {
            tracing::warn!(error = ?error, "cannot look for unopened forum concerns");
        }
    }
}

async fn reraise_due(svc: &std::sync::Arc<Service>) -> Result<(), ApiError> {
    let now = Utc::now();
    let before = now - svc.settings.forum.reraise_after();
    let due = rows::concerns_due(&svc.engine, &svc.db, before, 100).await?;
    for concern in due {
        // The service acts as nobody in particular, within the concern's organisation.
        let caller = Caller::acting(
            Uuid::nil(),
            crate::auth::Role::Moderator,
            &concern.organisation,
            i64::MAX,
        );
        let command = TopicCommand::RaiseConcernAgain {
            concern_id: concern.concern_id,
            every: svc.settings.forum.reraise_after(),
            at: now,
        };
        let request_id = format!("concern-watch-{}", Uuid::new_v4());
        match svc
            .run_command::<Topic>(
                &caller,
                &request_id,
                None,
                &concern.topic_id.to_string(),
                command,
            )
            .await
        {
            Ok(outcome) => {
                let round = concern.rounds + 1;
                svc.metrics.command("forum_concern_raised_again");
                tracing::error!(
                    target: "portal::forum::concern",
                    organisation = %concern.organisation,
                    concern = %concern.concern_id,
                    round,
                    raised_at = %concern.raised_at,
                    "a concern for someone's safety has not been opened by any moderator"
                );
                svc.marks.settle(outcome.checkpoint).await;
                if let Some(program) = &svc.settings.forum.concern_command {
                    run_hook(program, &concern, round).await;
                }
            }
            // Opened or resolved meanwhile: nothing to raise.
            Err(ApiError::FailedPrecondition(_)) | Err(ApiError::Conflict(_)) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Runs the organisation's hook with the concern (no text, no name) as JSON
/// on standard input; waits at most 30 s for it.
async fn run_hook(program: &std::path::Path, concern: &rows::ConcernRow, round: i64) {
    use tokio::io::AsyncWriteExt;
    let json = serde_json::json!({
        "organisation": concern.organisation,
        "concern_id": concern.concern_id,
        "topic_id": concern.topic_id,
        "post_id": concern.post_id,
        "raised_at": concern.raised_at,
        "round": round,
    })
    .to_string();
    let child = tokio::process::Command::new(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(%error, program = %program.display(), "cannot run forum.concern_command");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(json.as_bytes()).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::error!(%status, "forum.concern_command failed"),
        Ok(Err(error)) => tracing::error!(%error, "forum.concern_command failed"),
        Err(_) => tracing::error!("forum.concern_command took longer than 30 s"),
    }
}
