//! Read-your-writes without making every write wait for the read models
//! (issue 16).
//!
//! A mutation answers as soon as its events are committed. What it promises
//! is kept on the read side instead: a read waits (up to
//! `projections.read_your_writes_timeout`) until the read models show every
//! acknowledged write it could see, found by [`Marks`]:
//!
//! - the caller's own writes, of any kind (their *person* mark);
//! - writes to a portal, before anyone reads that portal (the portal's mark,
//!   raised by the owner's writes: a portal's id is its owner's person id);
//! - writes to what people share (relationships, agreements, conversations,
//!   catalogues, studies), before anyone of the organisation reads (the
//!   organisation's mark);
//! - a write named by a client's consistency token (the payload's
//!   `consistencyToken`, sent back as the `Portal-Consistency` header), which
//!   also works across instances of the service.
//!
//! The marks are this process's memory: entries the read models have passed
//! are dropped, so they hold only writes still being projected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use projections::{Checkpoint, Engine};
use uuid::Uuid;

use crate::error::ApiError;

/// The projections a caller reads next after a command.
pub(crate) const READ_MODELS: &[&str] = &[
    projections::control_panel::NAME,
    projections::history::NAME,
    projections::care::NAME,
    projections::messaging::NAME,
    projections::forum::NAME,
];

/// Marks kept before the passed ones are swept out.
const SWEEP_AT: usize = 4_096;

/// The name of the request header that carries a consistency token.
pub const HEADER: &str = "portal-consistency";

/// Newest acknowledged write per person and per organisation, for reads to
/// wait for.
pub struct Marks {
    engine: Arc<Engine>,
    timeout: Duration,
    people: Mutex<HashMap<(String, Uuid), Checkpoint>>,
    organisations: Mutex<HashMap<String, Checkpoint>>,
}

/// What an acknowledged command makes the next reads wait for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach<'a> {
    /// A write to one portal: its owner and the writer read it next.
    Portal(Uuid),
    /// A write to something the organisation's people share.
    Organisation(&'a str),
}

impl Marks {
    pub fn new(engine: Arc<Engine>, timeout: Duration) -> Self {
        Marks {
            engine,
            timeout,
            people: Mutex::default(),
            organisations: Mutex::default(),
        }
    }

    /// Notes an acknowledged command of `writer` (in `organisation`) whose
    /// last event is at `at`.
    pub(crate) fn acknowledged(
        &self,
        organisation: &str,
        writer: Uuid,
        reach: Reach<'_>,
        at: Checkpoint,
    ) {
        let passed = self.passed();
        if let Ok(mut people) = self.people.lock() {
            if people.len() >= SWEEP_AT {
                people.retain(|_, mark| *mark > passed);
            }
            let mut raise = |person: Uuid| {
                let mark = people
                    .entry((organisation.to_string(), person))
                    .or_default();
                *mark = (*mark).max(at);
            };
            raise(writer);
            if let Reach::Portal(portal) = reach {
                raise(portal);
            }
        }
        if let Reach::Organisation(org) = reach {
            if let Ok(mut organisations) = self.organisations.lock() {
                let mark = organisations.entry(org.to_string()).or_default();
                *mark = (*mark).max(at);
            }
        }
    }

    /// Where every read model stands now.
    fn passed(&self) -> Checkpoint {
        self.engine.reached(READ_MODELS)
    }

    fn person_mark(&self, organisation: &str, person: Uuid) -> Checkpoint {
        self.people
            .lock()
            .ok()
            .and_then(|p| p.get(&(organisation.to_string(), person)).copied())
            .unwrap_or_default()
    }

    fn organisation_mark(&self, organisation: &str) -> Checkpoint {
        self.organisations
            .lock()
            .ok()
            .and_then(|o| o.get(organisation).copied())
            .unwrap_or_default()
    }

    /// What a request of `person` must wait for before it reads: their own
    /// writes, the organisation's shared writes, and the client's token.
    pub fn for_request(
        &self,
        organisation: &str,
        person: Uuid,
        token: Option<Checkpoint>,
    ) -> Checkpoint {
        self.person_mark(organisation, person)
            .max(self.organisation_mark(organisation))
            .max(token.unwrap_or_default())
    }

    /// What a read of `portal` must wait for: its owner's writes.
    pub fn for_portal(&self, organisation: &str, portal: Uuid) -> Checkpoint {
        self.person_mark(organisation, portal)
    }

    /// Whether the read models already show `target`.
    pub fn shown(&self, target: Checkpoint) -> bool {
        self.passed() >= target
    }

    /// Waits until the read models show `target`, up to the configured bound;
    /// returns whether they do. A read that waited in vain goes on (and may
    /// miss the write), with a warning in the log.
    pub async fn settle(&self, target: Checkpoint) -> bool {
        self.settle_for(READ_MODELS, target).await
    }

    /// Waits as [`Marks::settle`] does, for the read models `models` only
    /// (what one read reads: a forum payload waits for the forum alone).
    pub async fn settle_for(&self, models: &[&str], target: Checkpoint) -> bool {
        if self.engine.reached(models) >= target {
            return true;
        }
        let shown = self.engine.wait_for(models, target, self.timeout).await;
        if !shown {
            tracing::warn!(
                ?target,
                "read went on before the read models showed a write"
            );
        }
        shown
    }
}

/// The token a mutation's payload gives for its write.
pub fn token(at: Checkpoint) -> String {
    format!("{}.{}", at.tx_id, at.position)
}

/// What a header that holds no token is told.
pub const NOT_A_TOKEN: &str =
    "the Portal-Consistency header holds the `consistencyToken` of a mutation's payload";

/// A token as a client sent it back.
pub fn parse_token(token: &str) -> Result<Checkpoint, ApiError> {
    let bad = || ApiError::BadInput(NOT_A_TOKEN.into());
    let (tx, position) = token.trim().split_once('.').ok_or_else(bad)?;
    let (tx_id, position) = (
        tx.parse::<i64>().map_err(|_| bad())?,
        position.parse::<i64>().map_err(|_| bad())?,
    );
    if tx_id < 0 || position < 0 {
        return Err(bad());
    }
    Ok(Checkpoint { tx_id, position })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let at = Checkpoint {
            tx_id: 812,
            position: 4_021,
        };
        assert_eq!(parse_token(&token(at)).ok(), Some(at));
        for bad in [
            "",
            "12",
            "a.b",
            "1.-2",
            "-1.2",
            "1.2.3",
            "9999999999999999999999.1",
        ] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
    }
}
