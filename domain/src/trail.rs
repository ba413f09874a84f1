//! The access trail: one record per look at someone else's portal (and per
//! read of the trail itself), chained by hashes.
//!
//! Records are events of `AccessTrail` streams in the event store. Each
//! stream (a "chain") belongs to one service user, or to an organisation for
//! auditor searches not about one person. The service appends records itself
//! (see `api::trail`): the chain needs only the last record, where cqrs-es would
//! load the whole stream for every read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Aggregate type of the access-trail chains in the event store.
pub const AGGREGATE_TYPE: &str = "AccessTrail";
/// Event type of a record.
pub const EVENT_TYPE: &str = "AccessRecorded";
/// `prev_hash` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The section name of reads of the trail itself.
pub const ACCESS_LOG: &str = "access_log";

/// The chain a record about `subject` (or, without one, about `organisation`) belongs to.
pub fn chain_id(subject: Option<Uuid>, organisation: &str) -> String {
    match subject {
        Some(id) => id.to_string(),
        None => format!("org:{organisation}"),
    }
}

/// On what grounds a read was let through (or that it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The owner reading their own access log.
    Owner,
    /// A consent grant of the section.
    Grant,
    /// A break-glass opening of the crisis plan.
    BreakGlass,
    /// An auditor's right to the trail (never to content).
    Audit,
    /// Nothing: the read was refused.
    Refused,
}

impl Basis {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Owner => "owner",
            Basis::Grant => "grant",
            Basis::BreakGlass => "break_glass",
            Basis::Audit => "audit",
            Basis::Refused => "refused",
        }
    }
}

/// One look, as recorded before the answer left the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub reader_id: Uuid,
    pub reader_role: String,
    pub reader_organisation: String,
    /// Whose portal was read; none for an auditor search across people.
    pub subject_id: Option<Uuid>,
    /// The organisation whose trail this is (the subject's).
    pub organisation: String,
    /// `core`, `medications`, `network`, `crisis_plan`, `exercises` or `access_log`.
    pub section: String,
    /// The GraphQL field that asked.
    pub query: String,
    pub basis: Basis,
    /// The care relationship whose grant or break-glass allowed the read.
    pub relationship_id: Option<Uuid>,
    /// Sequence number, in the relationship's stream, of the grant or break-glass event.
    pub basis_sequence: Option<i64>,
    /// The error code the reader got, for a refused read.
    pub refusal: Option<String>,
    /// Search terms of a trail read (never portal content).
    pub detail: Option<String>,
    pub request_id: String,
    pub client_address: Option<String>,
    pub at: DateTime<Utc>,
    /// Hash of the previous record of the chain ([`GENESIS`] for the first).
    pub prev_hash: String,
}

impl AccessRecord {
    /// True when the read was let through.
    pub fn allowed(&self) -> bool {
        self.basis != Basis::Refused
    }
}
