//! Folded aggregates kept between commands, so that a write costs the same
//! on a portal of 10,000 events as on a new one (issue 16).
//!
//! cqrs-es in event-store mode loads and folds every event of an aggregate
//! for every command. [`Cached`] is an `EventStore` for cqrs-es that keeps
//! the folded aggregate and its sequence number after each command it
//! committed, and on the next command reads only the events after that
//! sequence (the repositories' own `get_last_events`), so events another
//! instance appended since are folded in. The event store stays the only
//! truth: the append still fails on the (aggregate, sequence) key if the
//! aggregate moved on, and a failed commit drops the entry.

use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};

/// Aggregates kept per type; past this the cache starts over.
pub const CACHED_MAX: usize = 2_000;

/// A cqrs-es event store that keeps folded aggregates between commands.
pub struct Cached<R: PersistedEventRepository, A: Aggregate> {
    store: PersistedEventStore<R, A>,
    /// A second handle on the same database, for the tail reads.
    tail: R,
    folded: Mutex<HashMap<String, (A, usize)>>,
}

impl<R: PersistedEventRepository, A: Aggregate> Cached<R, A> {
    /// Event-store mode over `repo`, reading tails through `tail` (a
    /// repository on the same pool).
    pub fn new(repo: R, tail: R) -> Self {
        Cached {
            store: PersistedEventStore::new_event_store(repo),
            tail,
            folded: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, id: &str) -> Option<(A, usize)> {
        self.folded.lock().ok()?.remove(id)
    }

    fn keep(&self, id: &str, aggregate: A, sequence: usize) {
        if let Ok(mut folded) = self.folded.lock() {
            if folded.len() >= CACHED_MAX {
                folded.clear();
            }
            folded.insert(id.to_string(), (aggregate, sequence));
        }
    }
}

impl<R, A> EventStore<A> for Cached<R, A>
where
    R: PersistedEventRepository,
    A: Aggregate + Clone + Send + Sync,
{
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.store.load_events(aggregate_id).await
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<EventStoreAggregateContext<A>, AggregateError<A::Error>> {
        // Taken out while the command runs: two commands on one aggregate at
        // once, the second folds from the store (and one of them conflicts).
        let Some((mut aggregate, mut sequence)) = self.take(aggregate_id) else {
            return self.store.load_aggregate(aggregate_id).await;
        };
        let newer = self
            .tail
            .get_last_events::<A>(aggregate_id, sequence)
            .await?;
        for serialized in newer {
            let envelope: EventEnvelope<A> = serialized.try_into()?;
            sequence = envelope.sequence;
            aggregate.apply(envelope.payload);
        }
        Ok(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: EventStoreAggregateContext<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let id = context.aggregate_id.clone();
        // cqrs-es 0.5 applies each event to the aggregate as the command
        // writes it (`EventSink::write`): the context already holds the state
        // after `events`, the one the next command starts from.
        let (next, sequence) = (context.aggregate.clone(), context.current_sequence);
        let added = events.len();
        let committed = self.store.commit(events, context, metadata).await?;
        // (A failed commit returned above, and the entry stays out.)
        self.keep(&id, next, sequence + added);
        Ok(committed)
    }
}
