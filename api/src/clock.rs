//! The service's clock, passed in with each request: the HTTP layer and the
//! WebSocket pass the wall clock; the simulator passes each action's own
//! time (it plays two years of use in minutes that way). Resolvers take the
//! time from the request (`context::now`), never from a global.

use chrono::{DateTime, SubsecRound, Utc};

/// Where a request's "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The wall clock, read at each question.
    #[default]
    Wall,
    /// A fixed time: everything the request does happens then.
    At(DateTime<Utc>),
}

impl Clock {
    /// The time a command happens, to the microsecond: the precision every
    /// store and read model keeps, so that reads from events and from read
    /// models show the same instant.
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::Wall => wall(),
            Clock::At(at) => at,
        }
    }
}

/// The wall clock, to the microsecond.
pub fn wall() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_can_run_on_its_own_clock() {
        let before = wall();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        assert_eq!(Clock::At(at).now(), at);
        let now = Clock::Wall.now();
        assert!(now >= before);
        assert_eq!(now, now.trunc_subsecs(6));
    }
}
