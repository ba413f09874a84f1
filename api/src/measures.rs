//! A study's measures kept in memory for `studyMeasures`: the research fold
//! (`projections::research`) following the global stream.

use std::collections::HashSet;

use domain::study::{enrolled_now, EnrolmentEvent, StudyInfo};
use projections::research::{Fold, Table};
use projections::stream;
use projections::Checkpoint;
use uuid::Uuid;

use crate::error::ApiError;

/// The research measures, kept in memory by following the global stream:
/// built on the first question (from every event), brought up to date
/// from the last event seen on each one after. See docs/research.md.
#[derive(Default)]
pub struct Measures {
    state: tokio::sync::Mutex<(Fold, Checkpoint)>,
}

/// Events read per batch while catching up.
const CATCH_UP_BATCH: i64 = 5_000;

/// Longest wait for events committed before a question but held back
/// behind a transaction still in flight.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Measures {
    /// Every table of `study` now, after catching up with the stream,
    /// leaving out everyone who has withdrawn (read after catching up, so a
    /// withdrawal the fold has seen always applies).
    pub async fn tables(
        &self,
        db: &projections::Db,
        enrolments: &[EnrolmentEvent],
        visit_gap: chrono::Duration,
        study: &StudyInfo,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Table>, ApiError> {
        let mut state = self.state.lock().await;
        // Everything committed before the question is folded: the reader
        // holds back events behind a transaction still in flight (a usage
        // batch), so an empty batch is not yet the end while events lie
        // beyond the checkpoint; those are waited for, within a bound.
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        loop {
            let batch = stream::read_batch(db, state.1, CATCH_UP_BATCH).await?;
            if batch.is_empty() {
                if stream::count_after(db, state.1).await? == 0
                    || tokio::time::Instant::now() >= deadline
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            for e in &batch {
                state
                    .0
                    .apply(
                        e.checkpoint.position,
                        &e.aggregate_type,
                        &e.aggregate_id,
                        &e.event_type,
                        &e.payload,
                    )
                    .map_err(ApiError::internal)?;
                state.1 = e.checkpoint;
            }
        }
        let withdrawn: HashSet<Uuid> = enrolled_now(enrolments)
            .into_iter()
            .filter(|((s, _), now)| *s == study.study_id && !now)
            .map(|((_, p), _)| p)
            .collect();
        Ok(state.0.tables(study, at, visit_gap, &withdrawn))
    }
}
