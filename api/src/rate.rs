//! Per-person limits on `governor`'s keyed GCRA limiter (a maintained
//! crate, not a hand-made counter).
//!
//! - Writes: each person of each organisation may make `server.write_burst`
//!   writes at once and `server.writes_per_minute` sustained; past that a
//!   mutation is refused with RATE_LIMITED and a time to retry, before
//!   anything is decided or stored. Replays of an idempotency key cost nothing.
//! - Refused reads: a reader refused more than `server.refusals_per_minute`
//!   times in a minute gets RATE_LIMITED for every further refused read
//!   (each still recorded, coalesced), so probing other people's portals
//!   costs the prober.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::error::ApiError;

/// People remembered before those with a full allowance are forgotten.
const REMEMBERED_MAX: usize = 100_000;

/// The limiter, or none when the limit is off.
pub struct PersonLimit {
    limiter: Option<DefaultKeyedRateLimiter<(String, Uuid)>>,
    clock: DefaultClock,
    /// What is counted, for the message: "writes", "refused reads".
    what: &'static str,
}

impl PersonLimit {
    /// `per_minute` of `what` sustained (0: no limit), `burst` at once.
    pub fn new(what: &'static str, per_minute: u32, burst: u32) -> PersonLimit {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        PersonLimit {
            limiter,
            clock: DefaultClock::default(),
            what,
        }
    }

    /// Takes one from the person's allowance, or says when there is one again.
    pub fn take(&self, organisation: &str, person: Uuid) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > REMEMBERED_MAX {
            limiter.retain_recent();
        }
        limiter
            .check_key(&(organisation.to_string(), person))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::RateLimited(format!(
                    "too many {} in a short time: retry in {} ms",
                    self.what,
                    wait.as_millis().max(1)
                ))
            })
    }
}

/// How many of something each key holds at once (sockets or requests in
/// flight per person, connections per address), to hold them to a number.
#[derive(Debug)]
pub struct Holds<K: Eq + Hash + Clone> {
    open: Mutex<HashMap<K, usize>>,
}

impl<K: Eq + Hash + Clone> Default for Holds<K> {
    fn default() -> Self {
        Holds {
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// One thing held by a key; counted until dropped.
#[derive(Debug)]
pub struct Held<K: Eq + Hash + Clone> {
    holds: Arc<Holds<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Holds<K> {
    /// Counts one more for `key`, or `None` if it holds `max` already.
    pub fn hold(self: &Arc<Self>, key: K, max: usize) -> Option<Held<K>> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key.clone()).or_default();
        if *n >= max {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Held {
            holds: Arc::clone(self),
            key,
        })
    }

    /// How many `key` holds now.
    pub fn count(&self, key: &K) -> usize {
        self.open
            .lock()
            .ok()
            .and_then(|open| open.get(key).copied())
            .unwrap_or(0)
    }
}

impl<K: Eq + Hash + Clone> Drop for Held<K> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.holds.open.lock() {
            if let Some(n) = open.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_per_person() {
        let limit = PersonLimit::new("writes", 60, 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            assert!(limit.take("org", a).is_ok());
        }
        let refused = limit.take("org", a);
        assert!(
            matches!(refused, Err(ApiError::RateLimited(_))),
            "{refused:?}"
        );
        // Another person, and the same person id in another organisation, are apart.
        assert!(limit.take("org", b).is_ok());
        assert!(limit.take("other", a).is_ok());
    }

    #[test]
    fn holds_count_until_dropped() {
        let holds: Arc<Holds<&str>> = Arc::default();
        let a = holds.hold("a", 2).expect("one");
        let b = holds.hold("a", 2).expect("two");
        assert!(holds.hold("a", 2).is_none(), "a third is refused");
        assert!(holds.hold("b", 2).is_some(), "another key is apart");
        drop(a);
        assert_eq!(holds.count(&"a"), 1);
        let _c = holds.hold("a", 2).expect("room again");
        drop(b);
        assert!(holds.hold("z", 0).is_none());
        assert_eq!(holds.count(&"z"), 0, "nothing is left behind");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = PersonLimit::new("writes", 0, 1);
        let a = Uuid::new_v4();
        for _ in 0..1_000 {
            assert!(limit.take("org", a).is_ok());
        }
    }
}
