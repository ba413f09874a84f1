//! The tamper-evident access trail: appending records to their chain, and
//! checking every chain (`portal audit verify`).
//!
//! A record is an `AccessRecorded` event of the `AccessTrail` stream named by
//! its chain (the subject's id, or `org:<name>`). Its payload carries the hash of
//! the chain's previous record; its metadata carries its own hash, an
//! HMAC-SHA256 under the trail key of (chain, sequence, payload text). Without
//! the key nobody can make a record that verifies, so an edited, deleted or
//! inserted row shows as the first record whose hash or link does not match.
//! See docs/access-trail.md.

use domain::trail::{chain_id, AccessRecord, AGGREGATE_TYPE, EVENT_TYPE, GENESIS};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use projections::{Backend, Db, EventMetadata};
use sha2::Sha256;
use sqlx::Row;

use crate::error::ApiError;
use crate::settings::Secret;

/// How often an append retries after another append to the same chain won.
const ATTEMPTS: usize = 50;

/// Appends and verifies access-trail records with one key.
pub struct Trail {
    key: Vec<u8>,
}

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

/// The outcome of checking every chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub chains: u64,
    pub records: u64,
    /// The first break of each broken chain, in chain order.
    pub breaks: Vec<Break>,
}

impl Trail {
    /// A trail keyed with `secret`.
    pub fn new(secret: &Secret) -> Self {
        Trail {
            key: secret.expose().as_bytes().to_vec(),
        }
    }

    /// The hash of a record: HMAC-SHA256 of chain, sequence and payload text.
    fn hash(&self, chain: &str, sequence: i64, payload: &str) -> String {
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(chain.as_bytes());
        mac.update(&[0]);
        mac.update(sequence.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Appends `record` to its chain and returns its global position. Returns
    /// only once the record is committed; callers answer the read after that.
    pub async fn append(
        &self,
        db: &Db,
        mut record: AccessRecord,
        metadata: EventMetadata,
    ) -> Result<i64, ApiError> {
        let chain = chain_id(record.subject_id, &record.organisation);
        let insert = match db.backend {
            Backend::Postgres => {
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ($1, $2, $3, $4, '1', CAST($5 AS json), CAST($6 AS json)) RETURNING position"
            }
            Backend::Sqlite => {
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ($1, $2, $3, $4, '1', $5, $6) RETURNING position"
            }
        };
        // PostgreSQL hands json back as json: ask for its text.
        let tail_sql = match db.backend {
            Backend::Postgres => {
                "SELECT sequence, metadata::text AS metadata FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
            }
            Backend::Sqlite => {
                "SELECT sequence, metadata FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
            }
        };
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            let tail = sqlx::query(tail_sql)
                .bind(AGGREGATE_TYPE)
                .bind(&chain)
                .fetch_optional(&db.pool)
                .await
                .map_err(ApiError::internal)?;
            let (sequence, prev_hash) = match tail {
                Some(row) => {
                    let sequence: i64 = row.try_get("sequence").map_err(ApiError::internal)?;
                    let metadata: String = row.try_get("metadata").map_err(ApiError::internal)?;
                    (sequence + 1, stored_hash(&metadata).unwrap_or_default())
                }
                None => (1, GENESIS.to_string()),
            };
            record.prev_hash = prev_hash;
            let payload = serde_json::to_string(&record).map_err(ApiError::internal)?;
            let hash = self.hash(&chain, sequence, &payload);
            let mut meta = serde_json::to_value(&metadata).map_err(ApiError::internal)?;
            meta["hash"] = serde_json::Value::String(hash);
            let result = sqlx::query(insert)
                .bind(AGGREGATE_TYPE)
                .bind(&chain)
                .bind(sequence)
                .bind(EVENT_TYPE)
                .bind(&payload)
                .bind(meta.to_string())
                .fetch_one(&db.pool)
                .await;
            match result {
                Ok(row) => return row.try_get("position").map_err(ApiError::internal),
                Err(e) if retryable(&e) => {
                    last_error = e.to_string();
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        Err(ApiError::internal(format!(
            "access trail chain {chain}: no append after {ATTEMPTS} attempts: {last_error}"
        )))
    }

    /// Checks every chain: sequence numbers without gaps from 1, each record's
    /// link to the previous one, and each record's own hash.
    pub async fn verify(&self, db: &Db) -> Result<Report, ApiError> {
        let sql = match db.backend {
            Backend::Postgres => {
                "SELECT aggregate_id, sequence, position, event_type, payload::text AS payload, metadata::text AS metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
            }
            Backend::Sqlite => {
                "SELECT aggregate_id, sequence, position, event_type, payload, metadata \
                 FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
            }
        };
        let mut rows = sqlx::query(sql).bind(AGGREGATE_TYPE).fetch(&db.pool);
        let mut report = Report::default();
        let mut chain = String::new();
        let (mut expected, mut prev, mut broken) = (1i64, GENESIS.to_string(), false);
        while let Some(row) = rows.try_next().await.map_err(ApiError::internal)? {
            let id: String = row.try_get("aggregate_id").map_err(ApiError::internal)?;
            let sequence: i64 = row.try_get("sequence").map_err(ApiError::internal)?;
            let position: i64 = row.try_get("position").map_err(ApiError::internal)?;
            let event_type: String = row.try_get("event_type").map_err(ApiError::internal)?;
            let payload: String = row.try_get("payload").map_err(ApiError::internal)?;
            let metadata: String = row.try_get("metadata").map_err(ApiError::internal)?;
            report.records += 1;
            if id != chain {
                report.chains += 1;
                chain = id;
                (expected, prev, broken) = (1, GENESIS.to_string(), false);
            }
            if broken {
                continue;
            }
            let own = self.hash(&chain, sequence, &payload);
            let linked = serde_json::from_str::<AccessRecord>(&payload)
                .ok()
                .map(|r| r.prev_hash);
            let reason = if sequence != expected {
                Some(if sequence > expected {
                    format!(
                        "records {expected} to {} are missing: the chain jumps to {sequence}",
                        sequence - 1
                    )
                } else {
                    format!("sequence {sequence} where {expected} was expected")
                })
            } else if event_type != EVENT_TYPE {
                Some(format!("unexpected event type `{event_type}`"))
            } else if stored_hash(&metadata).as_deref() != Some(own.as_str()) {
                Some("the record was altered: its hash does not match its content".to_string())
            } else if linked.as_deref() != Some(prev.as_str()) {
                Some("the record does not link to the one before it".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                broken = true;
                report.breaks.push(Break {
                    chain: chain.clone(),
                    sequence,
                    position,
                    reason,
                });
                continue;
            }
            (expected, prev) = (sequence + 1, own);
        }
        Ok(report)
    }
}

/// The hash a record's metadata claims.
fn stored_hash(metadata: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()?
        .get("hash")?
        .as_str()
        .map(str::to_string)
}

/// True when another append to the same chain got there first (or SQLite
/// was busy): read the new tail and try again.
fn retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            let message = e.message().to_ascii_lowercase();
            e.is_unique_violation()
                || message.contains("unique")
                || message.contains("duplicate key")
                || message.contains("locked")
                || message.contains("busy")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_key_chain_sequence_and_payload() {
        let a = Trail::new(&Secret::new("k".repeat(32)));
        let b = Trail::new(&Secret::new("j".repeat(32)));
        let h = a.hash("c", 1, "{}");
        assert_eq!(h.len(), 64);
        assert_eq!(h, a.hash("c", 1, "{}"));
        assert_ne!(h, b.hash("c", 1, "{}"));
        assert_ne!(h, a.hash("d", 1, "{}"));
        assert_ne!(h, a.hash("c", 2, "{}"));
        assert_ne!(h, a.hash("c", 1, "{ }"));
    }
}
