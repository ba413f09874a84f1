//! `portal audit verify`: every chain of the access trail against its seals,
//! and the access log people read against the chain it is derived from.
//!
//! A chain shows an edited, inserted, reordered or deleted record as the
//! first record whose seal or link does not hold (`crate::seal`). What no
//! chain can show by itself (its newest records deleted) shows three ways:
//! the access log still has them; a rebuild of the log refuses to drop them
//! (`projections::access`); and the witness (`crate::witness`) signed heads
//! that the store no longer reaches.

use std::collections::BTreeMap;

use domain::trail::{AccessRecord, AGGREGATE_TYPE, EVENT_TYPE, GENESIS};
use futures::TryStreamExt;
use projections::access::LogRow;
use projections::{Backend, Db};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::ApiError;
use crate::seal::{self, Stored};
use crate::witness::{History, Witnessed};

/// Where a chain first stops verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The sequence number of the first record that does not verify.
    pub sequence: i64,
    /// Its global position in the event store.
    pub position: i64,
    pub reason: String,
}

/// A row of the access log that does not say what its record says, or a
/// record the log should have and does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub position: i64,
    pub chain: String,
    pub sequence: i64,
    pub reason: String,
}

/// The outcome of checking every chain and the access log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub chains: u64,
    pub records: u64,
    /// The first break of each broken chain, in chain order.
    pub breaks: Vec<Break>,
    /// Access-log rows that differ from their records, or are missing.
    pub log: Vec<Mismatch>,
    /// What does not hold in the witness's own file (with `--witness`).
    pub witness: Vec<String>,
    /// Checkpoints that signed an accepted loss: (number, records lost).
    pub accepted_losses: Vec<(u64, u64)>,
}

impl Report {
    /// True when nothing is broken.
    pub fn intact(&self) -> bool {
        self.breaks.is_empty() && self.log.is_empty() && self.witness.is_empty()
    }

    /// Adds a break unless the chain already broke at or before `sequence`;
    /// a later break of the chain is replaced.
    pub fn add_break(&mut self, b: Break) {
        if self
            .breaks
            .iter()
            .any(|x| x.chain == b.chain && x.sequence <= b.sequence)
        {
            return;
        }
        self.breaks.retain(|x| x.chain != b.chain);
        self.breaks.push(b);
        self.breaks.sort_by(|a, b| a.chain.cmp(&b.chain));
    }
}

/// Every stored column of trail records, as text in the same form on both
/// stores (what the seal covers).
fn columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "e.aggregate_id, e.sequence, e.position, e.event_type, e.event_version, \
             e.payload::text AS payload, e.metadata::text AS metadata, \
             to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at"
        }
        Backend::Sqlite => {
            "e.aggregate_id, e.sequence, e.position, e.event_type, e.event_version, \
             e.payload, e.metadata, e.recorded_at"
        }
    }
}

/// A trail row's columns, owned.
struct Fields {
    chain: String,
    sequence: i64,
    position: i64,
    event_type: String,
    event_version: String,
    recorded_at: String,
    payload: String,
    metadata: String,
}

impl Fields {
    fn read(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Fields {
            chain: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            position: row.try_get("position")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            recorded_at: row.try_get("recorded_at")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
        })
    }

    fn stored(&self) -> Stored<'_> {
        Stored {
            chain: &self.chain,
            sequence: self.sequence,
            position: self.position,
            event_type: &self.event_type,
            event_version: &self.event_version,
            recorded_at: &self.recorded_at,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }
}

/// True when `key` made at least one of the newest 20 records (or there are
/// none): with another key every record from now on would fail verification.
/// One forged record does not make it false; a wrong key does.
pub async fn made_with(key: &[u8], db: &Db) -> Result<bool, ApiError> {
    let sql = format!(
        "SELECT {} FROM events e WHERE e.aggregate_type = $1 ORDER BY e.position DESC LIMIT 20",
        columns(db.backend)
    );
    let rows = sqlx::query(&sql)
        .bind(AGGREGATE_TYPE)
        .fetch_all(&db.pool)
        .await?;
    for row in &rows {
        if seal::check(key, &Fields::read(row)?.stored()).is_ok() {
            return Ok(true);
        }
    }
    Ok(rows.is_empty())
}

/// Checks every chain (sequence numbers without gaps from 1, each record's
/// seal, each record's link to the one before) and the access log against
/// the records.
pub async fn verify(key: &[u8], db: &Db) -> Result<Report, ApiError> {
    verify_with(key, db, None).await
}

/// [`verify`], and every record `witness` signed must be in the store as
/// witnessed: in its chain, at its place and position, with its seal.
pub async fn verify_with(
    key: &[u8],
    db: &Db,
    witness: Option<&History>,
) -> Result<Report, ApiError> {
    let mut report = Report::default();
    if let Some(history) = witness {
        report.witness = history.problems.clone();
        report.accepted_losses = history.accepted_losses.clone();
    }
    let empty = BTreeMap::new();
    let witnessed = witness.map_or(&empty, |h| &h.records);
    check_chains(key, db, witnessed, &mut report).await?;
    check_log(db, &mut report).await?;
    Ok(report)
}

/// The records a checkpoint witnessed, per chain and sequence.
type WitnessedRecords = BTreeMap<String, BTreeMap<i64, (Witnessed, u64)>>;

/// A break for the witnessed records of `chain` after `sequence` (the last
/// one the store has), if any.
fn witnessed_tail(witnessed: &WitnessedRecords, chain: &str, sequence: i64) -> Option<Break> {
    let (w, number) = witnessed.get(chain)?.range(sequence + 1..).next()?.1;
    Some(Break {
        chain: chain.to_string(),
        sequence: w.sequence,
        position: w.position,
        reason: format!(
            "record {} (position {}) and after are missing: checkpoint {number} of the witness signed them",
            w.sequence, w.position
        ),
    })
}

async fn check_chains(
    key: &[u8],
    db: &Db,
    witnessed: &WitnessedRecords,
    report: &mut Report,
) -> Result<(), ApiError> {
    let sql = format!(
        "SELECT {} FROM events e WHERE e.aggregate_type = $1 ORDER BY e.aggregate_id, e.sequence",
        columns(db.backend)
    );
    let mut rows = sqlx::query(&sql).bind(AGGREGATE_TYPE).fetch(&db.pool);
    let mut chain = String::new();
    let (mut expected, mut prev, mut broken) = (1i64, GENESIS.to_string(), false);
    let mut last_position = 0i64;
    let mut seen = std::collections::HashSet::new();
    while let Some(row) = rows.try_next().await? {
        let f = Fields::read(&row)?;
        report.records += 1;
        if f.chain != chain {
            if let Some(b) = witnessed_tail(witnessed, &chain, expected - 1) {
                report.add_break(b);
            }
            seen.insert(f.chain.clone());
            report.chains += 1;
            chain = f.chain.clone();
            (expected, prev, broken, last_position) = (1, GENESIS.to_string(), false, 0);
        }
        if broken {
            continue;
        }
        let sealed = seal::check(key, &f.stored());
        let as_witnessed = witnessed
            .get(&chain)
            .and_then(|w| w.get(&f.sequence))
            .filter(|(w, _)| w.position != f.position || Ok(&w.seal) != sealed.as_ref());
        let linked = serde_json::from_str::<AccessRecord>(&f.payload)
            .ok()
            .map(|r| r.prev_hash);
        let reason = if f.sequence != expected {
            Some(if f.sequence > expected {
                format!(
                    "records {expected} to {} are missing: the chain jumps to {}",
                    f.sequence - 1,
                    f.sequence
                )
            } else {
                format!("sequence {} where {expected} was expected", f.sequence)
            })
        } else if f.event_type != EVENT_TYPE {
            Some(format!("unexpected event type `{}`", f.event_type))
        } else if let Err(why) = &sealed {
            Some(why.to_string())
        } else if linked.as_deref() != Some(prev.as_str()) {
            Some("the record does not link to the one before it".to_string())
        } else if let Some((_, number)) = as_witnessed {
            Some(format!(
                "the record is not the one checkpoint {number} of the witness signed at its place: the chain was rewritten"
            ))
        } else if f.position <= last_position {
            // Records sealed before positions were: their positions are
            // at least in the chain's order.
            Some("the record's global position is out of order".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            broken = true;
            report.breaks.push(Break {
                chain: chain.clone(),
                sequence: f.sequence,
                position: f.position,
                reason,
            });
            continue;
        }
        prev = sealed.unwrap_or_default();
        (expected, last_position) = (f.sequence + 1, f.position);
    }
    drop(rows);
    if !chain.is_empty() && !report.breaks.iter().any(|b| b.chain == chain) {
        if let Some(b) = witnessed_tail(witnessed, &chain, expected - 1) {
            report.add_break(b);
        }
    }
    // Chains the witness knows and the store has no record of at all.
    for name in witnessed.keys().filter(|c| !seen.contains(*c)) {
        if let Some(b) = witnessed_tail(witnessed, name, 0) {
            report.add_break(b);
        }
    }
    Ok(())
}

/// Re-derives the access log from the records and compares: every row the
/// log's checkpoint has passed must be there and say what its record says,
/// and no row may be left whose record is gone.
async fn check_log(db: &Db, report: &mut Report) -> Result<(), ApiError> {
    let slot: Option<String> =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = $1")
            .bind(projections::access::NAME)
            .fetch_optional(&db.pool)
            .await?;
    let Some(slot) = slot else {
        return Ok(());
    };
    if !projections::engine::SLOTS.contains(&slot.as_str()) {
        return Err(ApiError::internal(format!("unknown slot {slot}")));
    }
    let (tx_id, position): (i64, i64) = sqlx::query_as(
        "SELECT tx_id, position FROM projection_checkpoints WHERE name = $1 AND slot = $2",
    )
    .bind(projections::access::NAME)
    .bind(&slot)
    .fetch_optional(&db.pool)
    .await?
    .unwrap_or((0, 0));
    // Records the log has applied: at or before its checkpoint in the
    // order the projections read (`projections::stream`).
    let applied = match db.backend {
        Backend::Postgres => "(e.tx_id, e.position) <= (($2::bigint)::text::xid8, $3)",
        Backend::Sqlite => "e.position <= $3 AND $2 = $2",
    };
    let sql = format!(
        "SELECT e.aggregate_id, e.sequence, e.position, {payload} AS payload, {log} \
         FROM events e LEFT JOIN access_log_{slot} l ON l.position = e.position \
         WHERE e.aggregate_type = $1 AND {applied} ORDER BY e.position",
        payload = db.backend.json_text("e.payload"),
        log = LogRow::select("l", "l_"),
    );
    let mut rows = sqlx::query(&sql)
        .bind(AGGREGATE_TYPE)
        .bind(tx_id)
        .bind(position)
        .fetch(&db.pool);
    while let Some(row) = rows.try_next().await? {
        let chain: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("sequence")?;
        let position: i64 = row.try_get("position")?;
        let mut payload: String = row.try_get("payload")?;
        // A record's detail is sealed with its subject's key: opened with
        // the master key when this check has it, else left out of the
        // comparison (everything else is compared).
        let sealed = projections::vault::may_be_sealed(&payload);
        if sealed && db.vault.is_unlocked() {
            let ident = projections::vault::Ident {
                aggregate_type: AGGREGATE_TYPE,
                aggregate_id: &chain,
                sequence,
                event_type: EVENT_TYPE,
            };
            db.vault
                .open_all(&mut [(ident, &mut payload)])
                .await
                .map_err(projections::DbError::from)?;
        }
        let mismatch = |reason: String| Mismatch {
            position,
            chain: chain.clone(),
            sequence,
            reason,
        };
        let Some(logged) = LogRow::read(&row, "l_")? else {
            report.log.push(mismatch(
                "the access log has no row for this record".to_string(),
            ));
            continue;
        };
        match serde_json::from_str::<AccessRecord>(&payload) {
            Ok(record) => {
                let derived = LogRow::of(position, &chain, sequence, record);
                let mut differs = derived.differences(&logged);
                if sealed && !db.vault.is_unlocked() {
                    differs.retain(|field| *field != "detail");
                }
                if !differs.is_empty() {
                    report.log.push(mismatch(format!(
                        "the access log's row differs from its record in {}",
                        differs.join(", ")
                    )));
                }
            }
            // The chain reports the record itself.
            Err(_) => continue,
        }
    }
    drop(rows);
    // A chain cannot show its newest records deleted: nothing follows them,
    // and new records may since have taken their sequence numbers. A log
    // row whose record (at its position, chain and place) is gone from the
    // store is a deleted, moved or renumbered record.
    let rows = sqlx::query(&format!(
        "SELECT a.chain, a.sequence, a.position FROM access_log_{slot} a \
         LEFT JOIN events e ON e.position = a.position AND e.aggregate_type = $1 \
           AND e.aggregate_id = a.chain AND e.sequence = a.sequence \
         WHERE e.position IS NULL ORDER BY a.chain, a.sequence"
    ))
    .bind(AGGREGATE_TYPE)
    .fetch_all(&db.pool)
    .await?;
    for row in rows {
        let chain: String = row.try_get("chain")?;
        let sequence: i64 = row.try_get("sequence")?;
        let position: i64 = row.try_get("position")?;
        report.add_break(Break {
            chain,
            sequence,
            position,
            reason: format!(
                "record {sequence} (position {position}) is missing: the access log had it, the store does not"
            ),
        });
    }
    Ok(())
}
