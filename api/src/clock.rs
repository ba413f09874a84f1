//! The service's clock. Commands and reads take the time from [`now`]; a
//! task may run on a clock of its own (the simulator plays two years of use
//! in minutes that way) by running inside [`SIMULATED`]`.scope(..)` and
//! setting it. The serving path knows nothing of who sets it.

use std::cell::Cell;

use chrono::{DateTime, SubsecRound, Utc};

tokio::task_local! {
    /// A task's own time (microseconds since the epoch); 0 means "not set":
    /// the wall clock then.
    pub static SIMULATED: Cell<i64>;
}

/// The time a command happens, to the microsecond: the precision every
/// store and read model keeps, so that reads from events and from read models
/// show the same instant.
pub fn now() -> DateTime<Utc> {
    if let Ok(Some(at)) = SIMULATED.try_with(|c| DateTime::from_timestamp_micros(c.get())) {
        if at.timestamp_micros() != 0 {
            return at;
        }
    }
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_can_run_on_its_own_clock() {
        let wall = now();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        let inside = SIMULATED
            .scope(Cell::new(0), async move {
                let unset = now();
                SIMULATED.with(|c| c.set(at.timestamp_micros()));
                (unset, now())
            })
            .await;
        assert!(inside.0 >= wall);
        assert_eq!(inside.1, at);
        assert!(now() >= wall);
    }
}
