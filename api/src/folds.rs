//! Aggregates kept folded between reads, by type and id, with the sequence
//! number of the last event applied: `Service::folded` brings one up to date
//! with the events appended since, so a forum of a thousand members is not
//! folded from its first event at every post.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most aggregates kept before the cache starts over.
const KEPT_MAX: usize = 20_000;

type Entry = (i64, Box<dyn Any + Send + Sync>);

/// Folded aggregates of any type.
#[derive(Default)]
pub struct Folds {
    kept: Mutex<HashMap<(TypeId, String), Entry>>,
    /// The erasures seen when the cache was last emptied for one.
    erasures: std::sync::atomic::AtomicU64,
}

impl Folds {
    /// Empties the cache if an erasure happened since it last did
    /// (`erasures`: `projections::vault::Vault::erasures_seen`): a folded
    /// aggregate may hold an erased person's texts.
    pub fn after_erasures(&self, erasures: u64) {
        use std::sync::atomic::Ordering;
        if self.erasures.swap(erasures, Ordering::SeqCst) != erasures {
            if let Ok(mut kept) = self.kept.lock() {
                kept.clear();
            }
        }
    }

    /// The kept fold of `id` and the sequence it is at; a fresh aggregate
    /// at 0 when none is kept.
    pub fn get<A: Clone + Default + Send + Sync + 'static>(&self, id: &str) -> (i64, A) {
        let Ok(kept) = self.kept.lock() else {
            return (0, A::default());
        };
        kept.get(&(TypeId::of::<A>(), id.to_string()))
            .and_then(|(sequence, folded)| {
                folded
                    .downcast_ref::<A>()
                    .map(|folded| (*sequence, folded.clone()))
            })
            .unwrap_or_else(|| (0, A::default()))
    }

    /// Keeps `folded` as `id` at `sequence`, unless a later one is kept.
    pub fn keep<A: Send + Sync + 'static>(&self, id: &str, sequence: i64, folded: A) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.len() >= KEPT_MAX {
            kept.clear();
        }
        let key = (TypeId::of::<A>(), id.to_string());
        if kept.get(&key).is_some_and(|(at, _)| *at >= sequence) {
            return;
        }
        kept.insert(key, (sequence, Box::new(folded)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_fold_by_type_and_id() {
        let folds = Folds::default();
        assert_eq!(folds.get::<Vec<u8>>("a"), (0, vec![]));
        folds.keep("a", 2, vec![1u8, 2]);
        folds.keep("a", 1, vec![1u8]);
        assert_eq!(folds.get::<Vec<u8>>("a"), (2, vec![1, 2]));
        // Another type under the same id is another aggregate.
        assert_eq!(folds.get::<Vec<u16>>("a"), (0, vec![]));
    }
}
