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

/// The section name of a forum name resolved to the person behind it.
pub const FORUM_IDENTITY: &str = "forum_identity";
/// The section of a person's data export (its making, and each download).
pub const EXPORT: &str = "export";

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
    /// An admin's stated reason: a forum name resolved to its person.
    Admin,
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
            Basis::Admin => "admin",
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
    /// When the read happened (for refused attempts coalesced into one
    /// record: the last of them).
    pub at: DateTime<Utc>,
    /// How many refused attempts this record stands for (1 for every
    /// allowed read; absent in records of one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempts: u32,
    /// The first of the attempts, when there were several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<DateTime<Utc>>,
    /// Seal of the previous record of the chain ([`GENESIS`] for the first).
    pub prev_hash: String,
}

/// An access record stays clear but for its detail (the words of a look by
/// an admin, search terms), sealed with the key of the person looked at; its
/// seal covers the sealed text, so the chain never rests on plaintext that
/// an erasure removes. The reader's address stays clear: it is evidence of
/// who looked, kept for the organisation's security (`crate::personal`).
pub const PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: AGGREGATE_TYPE,
    events: &[crate::personal::Declared {
        event_type: EVENT_TYPE,
        owner: crate::personal::Owner::Field("subject_id"),
        personal: &[crate::personal::optional("detail")],
        clear: &[
            "reader_id",
            "reader_role",
            "reader_organisation",
            "subject_id",
            "organisation",
            "section",
            "query",
            "basis",
            "relationship_id",
            "basis_sequence",
            "refusal",
            "request_id",
            "client_address",
            "at",
            "attempts",
            "first_at",
            "prev_hash",
        ],
    }],
};

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl AccessRecord {
    /// True when the read was let through.
    pub fn allowed(&self) -> bool {
        self.basis != Basis::Refused
    }

    /// Refused attempts that one record may stand for: the same reader,
    /// the same person's same section, the same query, address and refusal.
    fn same_attempt(&self, other: &AccessRecord) -> bool {
        !self.allowed()
            && !other.allowed()
            && self.reader_id == other.reader_id
            && self.reader_role == other.reader_role
            && self.reader_organisation == other.reader_organisation
            && self.subject_id == other.subject_id
            && self.organisation == other.organisation
            && self.section == other.section
            && self.query == other.query
            && self.refusal == other.refusal
            && self.client_address == other.client_address
    }
}

/// Coalesces refused attempts: all of one kind (see `same_attempt`) become
/// one record with their count, the first time and the last, in the place of
/// the first; allowed reads stay one record each. Nothing is dropped: the
/// counts add up to the attempts made. `M` travels with each record (its
/// metadata); a coalesced record keeps the first one's.
pub fn coalesce<M>(records: Vec<(AccessRecord, M)>) -> Vec<(AccessRecord, M)> {
    let mut out: Vec<(AccessRecord, M)> = Vec::with_capacity(records.len());
    for (record, meta) in records {
        match out.iter_mut().find(|(r, _)| r.same_attempt(&record)) {
            Some((kept, _)) => {
                let first = kept
                    .first_at
                    .unwrap_or(kept.at)
                    .min(record.first_at.unwrap_or(record.at));
                kept.attempts = kept.attempts.saturating_add(record.attempts);
                kept.at = kept.at.max(record.at);
                kept.first_at = Some(first);
            }
            None => out.push((record, meta)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reader: Uuid, section: &str, basis: Basis, second: i64) -> AccessRecord {
        AccessRecord {
            reader_id: reader,
            reader_role: "provider".into(),
            reader_organisation: "a".into(),
            subject_id: Some(Uuid::nil()),
            organisation: "a".into(),
            section: section.into(),
            query: "medications".into(),
            basis,
            relationship_id: None,
            basis_sequence: None,
            refusal: (basis == Basis::Refused).then(|| "NOT_FOUND".to_string()),
            detail: None,
            request_id: "r".into(),
            client_address: None,
            at: DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap_or_default(),
            attempts: 1,
            first_at: None,
            prev_hash: GENESIS.into(),
        }
    }

    #[test]
    fn refused_attempts_of_one_kind_become_one_record_and_reads_stay_apart() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut records = Vec::new();
        for i in 0..500 {
            records.push((record(a, "crisis_plan", Basis::Refused, i), i));
        }
        records.push((record(a, "medications", Basis::Refused, 7), 500));
        records.push((record(b, "crisis_plan", Basis::Refused, 3), 501));
        records.push((record(a, "crisis_plan", Basis::Grant, 4), 502));
        records.push((record(a, "crisis_plan", Basis::Grant, 5), 503));
        let out = coalesce(records);
        assert_eq!(out.len(), 5);
        let (flood, meta) = &out[0];
        assert_eq!((flood.attempts, *meta), (500, 0));
        assert_eq!(flood.first_at, Some(record(a, "x", Basis::Refused, 0).at));
        assert_eq!(flood.at, record(a, "x", Basis::Refused, 499).at);
        assert!(out[1..]
            .iter()
            .all(|(r, _)| r.attempts == 1 && r.first_at.is_none()));
        let total: u32 = out.iter().map(|(r, _)| r.attempts).sum();
        assert_eq!(total, 504);
    }

    #[test]
    fn a_record_of_one_attempt_is_stored_as_before() {
        let r = record(Uuid::nil(), "core", Basis::Refused, 0);
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert!(
            !text.contains("attempts") && !text.contains("first_at"),
            "{text}"
        );
        let back: AccessRecord = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, r);
    }
}
