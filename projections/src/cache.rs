//! Read-model rows kept in memory between reads (issue 16), and the record
//! of what each projection runner changed that keeps them true.
//!
//! A runner stamps every aggregate its batch touched, after the batch
//! commits and before it tells anyone (read-your-writes waits) that it got
//! there. A kept row is served only while its aggregate has no stamp newer
//! than the moment its read began; when a runner cannot say what changed
//! (another process applied the batch, or the slot was switched by a
//! rebuild) it moves the epoch and every kept row is read again. So a kept
//! row is never older than what the database showed when the runner last
//! reported progress, which is what the reads wait for.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// Aggregates whose last change is remembered before the record starts over
/// (and moves the epoch).
const TOUCHED_MAX: usize = 100_000;

/// Rows kept on a shelf before it starts over.
pub const KEPT_MAX: usize = 20_000;

/// When a read began, in a runner's record of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    epoch: u64,
    seen: u64,
}

/// What one runner changed, by aggregate id.
#[derive(Debug, Default)]
pub struct Changes {
    clock: AtomicU64,
    epoch: AtomicU64,
    touched: Mutex<HashMap<String, u64>>,
}

impl Changes {
    /// Taken before a read of the database begins.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            epoch: self.epoch.load(Ordering::SeqCst),
            seen: self.clock.load(Ordering::SeqCst),
        }
    }

    /// A committed batch changed these aggregates.
    pub(crate) fn touched<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        let Ok(mut touched) = self.touched.lock() else {
            self.unknown();
            return;
        };
        if touched.len() >= TOUCHED_MAX {
            touched.clear();
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        for id in ids {
            touched.insert(id.to_string(), now);
        }
    }

    /// Something changed that this process cannot name.
    pub(crate) fn unknown(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut touched) = self.touched.lock() {
            touched.clear();
        }
    }

    /// Whether nothing changed `id` since `stamp` was taken.
    pub fn unchanged_since(&self, id: &str, stamp: Stamp) -> bool {
        if stamp.epoch != self.epoch.load(Ordering::SeqCst) {
            return false;
        }
        self.touched
            .lock()
            .map(|t| t.get(id).is_none_or(|&at| at <= stamp.seen))
            .unwrap_or(false)
    }
}

/// Rows read from the projections, of any type, kept by (type, aggregate id,
/// query) while the projection's record of changes says they are unchanged.
#[derive(Default)]
pub struct Shelf {
    rows: Mutex<HashMap<(TypeId, Uuid, String), Entry>>,
}

type Entry = (Stamp, Arc<dyn Any + Send + Sync>);

impl Shelf {
    /// The kept `V` of aggregate `id`, if nothing changed it since.
    pub fn get<V: Any + Send + Sync>(&self, changes: &Changes, id: Uuid) -> Option<Arc<V>> {
        self.get_answer(changes, id, "")
    }

    /// Keeps `rows` of aggregate `id`, read from the database after `stamp`
    /// was taken.
    pub fn keep<V: Any + Send + Sync>(&self, id: Uuid, stamp: Stamp, rows: Arc<V>) {
        self.keep_answer(id, "", stamp, rows)
    }

    /// The kept answer `V` to `query` (the question, with its arguments)
    /// about aggregate `id`, if nothing changed the aggregate since.
    pub fn get_answer<V: Any + Send + Sync>(
        &self,
        changes: &Changes,
        id: Uuid,
        query: &str,
    ) -> Option<Arc<V>> {
        let (stamp, rows) = self
            .rows
            .lock()
            .ok()?
            .get(&(TypeId::of::<V>(), id, query.to_string()))
            .cloned()?;
        if !changes.unchanged_since(&id.to_string(), stamp) {
            return None;
        }
        rows.downcast::<V>().ok()
    }

    /// Keeps the answer to `query` about aggregate `id`, read from the
    /// database after `stamp` was taken.
    pub fn keep_answer<V: Any + Send + Sync>(
        &self,
        id: Uuid,
        query: &str,
        stamp: Stamp,
        rows: Arc<V>,
    ) {
        if let Ok(mut kept) = self.rows.lock() {
            if kept.len() >= KEPT_MAX {
                kept.clear();
            }
            kept.insert((TypeId::of::<V>(), id, query.to_string()), (stamp, rows));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Uuid, String, String) {
        let p = Uuid::from_u128(1);
        (p, p.to_string(), Uuid::from_u128(2).to_string())
    }

    #[test]
    fn a_row_read_before_a_change_is_not_served_after_it() {
        let (p, p_id, q_id) = ids();
        let changes = Changes::default();
        let shelf = Shelf::default();
        shelf.keep(p, changes.stamp(), Arc::new(1i32));
        assert_eq!(shelf.get::<i32>(&changes, p).as_deref(), Some(&1));
        // Another type under the same id is another row.
        assert_eq!(shelf.get::<u8>(&changes, p), None);
        // Another aggregate's change leaves it.
        changes.touched([q_id.as_str()].into_iter());
        assert_eq!(shelf.get::<i32>(&changes, p).as_deref(), Some(&1));
        // Its own change does not.
        changes.touched([p_id.as_str()].into_iter());
        assert_eq!(shelf.get::<i32>(&changes, p), None);
        // Read again after the change: kept again.
        shelf.keep(p, changes.stamp(), Arc::new(2i32));
        assert_eq!(shelf.get::<i32>(&changes, p).as_deref(), Some(&2));
        // A read that began before a change it may have missed is not kept.
        let racing = changes.stamp();
        changes.touched([p_id.as_str()].into_iter());
        shelf.keep(p, racing, Arc::new(3i32));
        assert_eq!(shelf.get::<i32>(&changes, p), None);
    }

    #[test]
    fn answers_to_other_questions_are_kept_apart() {
        let (p, p_id, _) = ids();
        let changes = Changes::default();
        let shelf = Shelf::default();
        shelf.keep_answer(p, "medications", changes.stamp(), Arc::new(1i32));
        shelf.keep_answer(p, "network", changes.stamp(), Arc::new(2i32));
        assert_eq!(
            shelf
                .get_answer::<i32>(&changes, p, "medications")
                .as_deref(),
            Some(&1)
        );
        assert_eq!(
            shelf.get_answer::<i32>(&changes, p, "network").as_deref(),
            Some(&2)
        );
        assert_eq!(shelf.get_answer::<i32>(&changes, p, "crisis plan"), None);
        assert_eq!(shelf.get::<i32>(&changes, p), None);
        changes.touched([p_id.as_str()].into_iter());
        assert_eq!(shelf.get_answer::<i32>(&changes, p, "network"), None);
    }

    #[test]
    fn an_unknown_change_drops_every_row() {
        let (p, _, _) = ids();
        let changes = Changes::default();
        let shelf = Shelf::default();
        shelf.keep(p, changes.stamp(), Arc::new(1i32));
        changes.unknown();
        assert_eq!(shelf.get::<i32>(&changes, p), None);
    }

    #[test]
    fn a_full_record_starts_over_without_serving_stale_rows() {
        let (p, _, _) = ids();
        let changes = Changes::default();
        let shelf = Shelf::default();
        shelf.keep(p, changes.stamp(), Arc::new(1i32));
        let ids: Vec<String> = (0..TOUCHED_MAX).map(|i| format!("x{i}")).collect();
        changes.touched(ids.iter().map(String::as_str));
        // p was never touched, but the record forgot what it held.
        changes.touched(["y"].into_iter());
        assert_eq!(shelf.get::<i32>(&changes, p), None);
    }
}
