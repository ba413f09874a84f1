//! Read models and the engine that feeds them from the global event stream.
//!
//! Each projection reads events in global order, in batches, applies them to its
//! own tables and advances its checkpoint in the same transaction. It survives a
//! crash at any point, can be rebuilt into a fresh slot while the service runs,
//! and reports its lag. See `docs/projections.md`.
#![forbid(unsafe_code)]

pub mod access;
pub mod cache;
pub mod care;
pub mod control_panel;
pub mod db;
pub mod engine;
pub mod erasure;
pub mod forum;
pub mod history;
pub mod messaging;
pub mod read;
pub mod research;
pub mod stream;
pub mod vault;

pub use db::{Backend, Db, DbError};
pub use engine::{Engine, Projection, ProjectionStatus};
pub use stream::{Checkpoint, EventMetadata, StoredEvent};

/// The projections this service runs, in start order.
pub fn all() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(control_panel::ControlPanel),
        std::sync::Arc::new(history::History),
        std::sync::Arc::new(care::Care),
        std::sync::Arc::new(access::Access),
        std::sync::Arc::new(messaging::Messaging),
        std::sync::Arc::new(forum::Forum),
    ]
}
