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

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Aggregates whose last change is remembered before the record starts over
/// (and moves the epoch).
const TOUCHED_MAX: usize = 100_000;

/// Rows kept per cache before it starts over.
pub const KEPT_MAX: usize = 10_000;

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

/// Rows read from one projection, kept by key while the projection's
/// record of changes says they are unchanged.
pub struct Kept<K, V> {
    rows: Mutex<HashMap<K, (Stamp, Arc<V>)>>,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Kept {
            rows: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone + ToString, V> Kept<K, V> {
    /// The kept rows of `key`, if nothing changed its aggregate since.
    pub fn get(&self, changes: &Changes, key: &K) -> Option<Arc<V>> {
        let (stamp, rows) = self.rows.lock().ok()?.get(key).cloned()?;
        changes
            .unchanged_since(&key.to_string(), stamp)
            .then_some(rows)
    }

    /// Keeps `rows` of `key`, read from the database after `stamp` was taken.
    pub fn keep(&self, key: K, stamp: Stamp, rows: Arc<V>) {
        if let Ok(mut kept) = self.rows.lock() {
            if kept.len() >= KEPT_MAX {
                kept.clear();
            }
            kept.insert(key, (stamp, rows));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_read_before_a_change_is_not_served_after_it() {
        let changes = Changes::default();
        let kept: Kept<String, i32> = Kept::default();
        let before = changes.stamp();
        kept.keep("p".into(), before, Arc::new(1));
        assert_eq!(kept.get(&changes, &"p".into()).as_deref(), Some(&1));
        // Another aggregate's change leaves it.
        changes.touched(["q"].into_iter());
        assert_eq!(kept.get(&changes, &"p".into()).as_deref(), Some(&1));
        // Its own change does not.
        changes.touched(["p"].into_iter());
        assert_eq!(kept.get(&changes, &"p".into()), None);
        // Read again after the change: kept again.
        kept.keep("p".into(), changes.stamp(), Arc::new(2));
        assert_eq!(kept.get(&changes, &"p".into()).as_deref(), Some(&2));
        // A read that began before a change it may have missed is not kept.
        let racing = changes.stamp();
        changes.touched(["p"].into_iter());
        kept.keep("p".into(), racing, Arc::new(3));
        assert_eq!(kept.get(&changes, &"p".into()), None);
    }

    #[test]
    fn an_unknown_change_drops_every_row() {
        let changes = Changes::default();
        let kept: Kept<String, i32> = Kept::default();
        kept.keep("p".into(), changes.stamp(), Arc::new(1));
        changes.unknown();
        assert_eq!(kept.get(&changes, &"p".into()), None);
    }

    #[test]
    fn a_full_record_starts_over_without_serving_stale_rows() {
        let changes = Changes::default();
        let kept: Kept<String, i32> = Kept::default();
        kept.keep("p".into(), changes.stamp(), Arc::new(1));
        let ids: Vec<String> = (0..TOUCHED_MAX).map(|i| format!("x{i}")).collect();
        changes.touched(ids.iter().map(String::as_str));
        // "p" was never touched, but the record forgot what it held.
        changes.touched(["y"].into_iter());
        assert_eq!(kept.get(&changes, &"p".into()), None);
    }
}
