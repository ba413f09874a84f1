//! Erasures (issue 18): where each person's erasure stands, and how every
//! projection takes a `PersonErased` in its stride.
//!
//! Every projection that holds a person's texts in clear blanks them when
//! it meets `PersonErased` in the stream, to exactly what a rebuild would
//! make of the same events once the person's key is gone (their sealed
//! fields open to the declared erased values). So a rebuild after an
//! erasure gives the rows the live runner left (`tests/tests/erasure.rs`).
//!
//! A projection's batch may hold events before and after an erasure:
//! [`segments`] cuts it so that the blanking runs in the stream's order.
//!
//! Where each erasure stands is kept by the care projection (table
//! `erasures`, [`create`] and [`apply`]): a runner of its own would add a
//! commit per batch, which on SQLite's single writer cost a fifth of the
//! writes (`docs/benchmarks.md`, issue 18).

use domain::erasure::{ErasureEvent, ERASURE_TYPE};
use sqlx::{Any, Transaction};
use uuid::Uuid;

use crate::db::{execute as exec, ts, upsert, DbError};
use crate::stream::StoredEvent;

/// A batch cut at its erasures.
pub enum Segment<'a> {
    /// Events to apply as usual.
    Events(&'a [StoredEvent]),
    /// A person erased here: who, of which organisation, and when (the
    /// event's own time, as stored).
    Erased(Erased),
}

/// A person's erasure as the projections apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct Erased {
    pub person: Uuid,
    pub organisation: String,
    pub at: String,
}

/// The erasure a stored event records, if it is a `PersonErased`.
pub fn erased_by(event: &StoredEvent) -> Option<Erased> {
    if event.aggregate_type != ERASURE_TYPE || event.event_type != "PersonErased" {
        return None;
    }
    match event.decode::<ErasureEvent>().ok()? {
        ErasureEvent::PersonErased {
            person,
            organisation,
            at,
            ..
        } => Some(Erased {
            person,
            organisation,
            at: ts(at),
        }),
        _ => None,
    }
}

/// `events` cut at each `PersonErased`, in order.
pub fn segments(events: &[StoredEvent]) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, event) in events.iter().enumerate() {
        if let Some(erased) = erased_by(event) {
            if start < i {
                out.push(Segment::Events(&events[start..i]));
            }
            out.push(Segment::Erased(erased));
            start = i + 1;
        }
    }
    if start < events.len() {
        out.push(Segment::Events(&events[start..]));
    }
    out
}

/// The table of erasures, in slot `s`.
pub fn create(s: &str) -> Vec<String> {
    vec![format!(
        "CREATE TABLE IF NOT EXISTS erasures_{s} (organisation TEXT NOT NULL, \
         person_id TEXT NOT NULL, requested_at TEXT, due_at TEXT, cancelled_at TEXT, \
         erased_at TEXT, basis TEXT, PRIMARY KEY (organisation, person_id))"
    )]
}

/// Its index of due requests.
pub fn indexes(s: &str) -> Vec<String> {
    vec![format!(
        "CREATE INDEX IF NOT EXISTS erasures_{s}_due ON erasures_{s} (due_at) WHERE due_at IS NOT NULL"
    )]
}

/// Applies one event of an erasure stream to the table.
pub async fn apply(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    stored: &StoredEvent,
) -> Result<(), DbError> {
    let table = format!("erasures_{s}");
    let Some(person) = domain::erasure::person_of(&stored.aggregate_id) else {
        return Ok(());
    };
    let id = person.to_string();
    let id = id.as_str();
    let org = stored
        .aggregate_id
        .rsplit_once('/')
        .map_or("", |(org, _)| org);
    match stored.decode::<ErasureEvent>()? {
        ErasureEvent::ErasureRequested {
            organisation,
            due,
            at,
            ..
        } => {
            upsert(
                tx,
                &table,
                &[
                    "person_id",
                    "organisation",
                    "requested_at",
                    "due_at",
                    "cancelled_at",
                ],
                &["organisation", "person_id"],
                vec![vec![
                    id.into(),
                    organisation.into(),
                    ts(at).into(),
                    ts(due).into(),
                    crate::db::Val::NullText,
                ]],
            )
            .await
        }
        ErasureEvent::ErasureCancelled { at } => {
            exec(
                tx,
                &format!(
                    "UPDATE {table} SET due_at = NULL, cancelled_at = $1 \
                     WHERE organisation = $2 AND person_id = $3"
                ),
                vec![ts(at).into(), org.into(), id.into()],
            )
            .await
        }
        ErasureEvent::PersonErased {
            organisation,
            basis,
            at,
            ..
        } => {
            upsert(
                tx,
                &table,
                &["person_id", "organisation", "due_at", "erased_at", "basis"],
                &["organisation", "person_id"],
                vec![vec![
                    id.into(),
                    organisation.into(),
                    crate::db::Val::NullText,
                    ts(at).into(),
                    basis.as_str().into(),
                ]],
            )
            .await
        }
    }
}
