//! `portal bench research-data`: the data set for the research export
//! benchmark, used by `ops/bench-research` (not a test).
//!
//! A base cohort is played through the real command path (`portal
//! simulate`, at simulated times). The real path runs a few hundred
//! operations a second on this machine, so ten million events would take
//! hours; the cohort is therefore copied `copies` times under new ids: every
//! id in every event (aggregate ids, payloads, metadata) is mapped to a new
//! one per copy, keeping the ids that are derived from others consistent
//! (care relationships and enrolments), and keeping the study and its
//! researcher, so all copies take part in the same study. Access-trail
//! events are not copied (their hash chains are keyed; the export does not
//! read them). docs/benchmarks.md says how the figures were made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use domain::care::{relationship_id, CareEvent};
use domain::study::{enrolment_id, EnrolmentEvent};
use futures::TryStreamExt;
use projections::{Backend, Db};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::simulate::{run, SimulateRequest};
use crate::Result;
use api::service::Service;
use api::settings::Settings;

/// What was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResearchData {
    pub study_id: Uuid,
    pub base_operations: u64,
    pub base_seconds: f64,
    pub base_events: u64,
    pub copies: usize,
    pub events: u64,
    pub copy_seconds: f64,
}

struct Row_ {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
}

/// Plays the base cohort, then copies it; prints nothing, returns figures.
pub async fn research_data(
    settings: Settings,
    base: SimulateRequest,
    copies: usize,
) -> Result<ResearchData> {
    let url = settings.store.database_url.clone();
    // Played as fast as it goes (see the simulator): no per-person write limit.
    let mut settings = settings;
    settings.server.writes_per_minute = 0;
    settings.server.refusals_per_minute = 0;
    let service = Arc::new(Service::open(settings).await?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runners = service.engine.spawn(stopped);
    let summary = run(Arc::clone(&service), &base).await;
    let _ = stop.send(true);
    for runner in runners {
        let _ = runner.await;
    }
    let summary = summary?;
    let db = Db::connect(&url, 4).await?;
    let payload = match db.backend {
        Backend::Postgres => "payload::text AS payload, metadata::text AS metadata",
        Backend::Sqlite => "payload, metadata",
    };
    let rows: Vec<Row_> = sqlx::query(&format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, {payload} \
         FROM events WHERE aggregate_type <> 'AccessTrail' AND aggregate_type <> 'Study' ORDER BY position"
    ))
    .fetch(&db.pool)
    .map_ok(|r| Row_ {
        aggregate_type: r.get("aggregate_type"),
        aggregate_id: r.get("aggregate_id"),
        sequence: r.get("sequence"),
        event_type: r.get("event_type"),
        event_version: r.get("event_version"),
        payload: r.get("payload"),
        metadata: r.get("metadata"),
    })
    .try_collect()
    .await?;

    // Ids derived from others, and the ones every copy shares.
    let mut relationships: HashMap<Uuid, (Uuid, Uuid)> = HashMap::new();
    let mut enrolments: HashMap<Uuid, (Uuid, Uuid)> = HashMap::new();
    for row in &rows {
        if row.aggregate_type == "CareRelationship" {
            if let Ok(CareEvent::Invited {
                relationship_id,
                user_id,
                provider_id,
                ..
            }) = serde_json::from_str(&row.payload)
            {
                relationships.insert(relationship_id, (user_id, provider_id));
            }
        }
        if row.aggregate_type == "Enrolment" {
            if let Ok(event) = serde_json::from_str::<EnrolmentEvent>(&row.payload) {
                let (study, participant) = event.parties();
                enrolments.insert(enrolment_id(study, participant), (study, participant));
            }
        }
    }
    let keep: HashSet<Uuid> = [summary.study_id, summary.researcher_id].into();

    let started = Instant::now();
    let mut written = 0u64;
    for copy in 1..=copies {
        let map = |id: Uuid| -> Uuid {
            let plain = |id: Uuid| {
                let digest = Sha256::new()
                    .chain_update(b"bench copy\0")
                    .chain_update((copy as u64).to_le_bytes())
                    .chain_update(id.as_bytes())
                    .finalize();
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest[..16]);
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            };
            if keep.contains(&id) {
                id
            } else if let Some((user, provider)) = relationships.get(&id) {
                relationship_id(plain(*user), plain(*provider))
            } else if let Some((study, participant)) = enrolments.get(&id) {
                enrolment_id(*study, plain(*participant))
            } else {
                plain(id)
            }
        };
        let mut batch: Vec<[String; 7]> = Vec::with_capacity(1000);
        for row in &rows {
            batch.push([
                row.aggregate_type.clone(),
                map_text(&row.aggregate_id, &map),
                row.sequence.to_string(),
                row.event_type.clone(),
                row.event_version.clone(),
                map_json(&row.payload, &map)?,
                map_json(&row.metadata, &map)?,
            ]);
            if batch.len() == 1000 {
                insert(&db, &batch).await?;
                written += batch.len() as u64;
                batch.clear();
            }
        }
        insert(&db, &batch).await?;
        written += batch.len() as u64;
        if copy % 10 == 0 {
            eprintln!("copied the cohort {copy} of {copies} times ({written} events)");
        }
    }
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db.pool)
        .await?;
    Ok(ResearchData {
        study_id: summary.study_id,
        base_operations: summary.operations,
        base_seconds: summary.seconds,
        base_events: rows.len() as u64,
        copies,
        events: total as u64,
        copy_seconds: started.elapsed().as_secs_f64(),
    })
}

/// An id (or any text) mapped if it is a UUID.
fn map_text(text: &str, map: &impl Fn(Uuid) -> Uuid) -> String {
    match Uuid::parse_str(text) {
        Ok(id) if text.len() == 36 => map(id).to_string(),
        _ => text.to_string(),
    }
}

/// JSON with every string that is a UUID mapped.
fn map_json(text: &str, map: &impl Fn(Uuid) -> Uuid) -> Result<String> {
    fn walk(value: &mut Value, map: &impl Fn(Uuid) -> Uuid) {
        match value {
            Value::String(s) => {
                let mapped = map_text(s, map);
                *s = mapped;
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, map)),
            Value::Object(fields) => fields.values_mut().for_each(|v| walk(v, map)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(text)?;
    walk(&mut value, map);
    Ok(value.to_string())
}

async fn insert(db: &Db, rows: &[[String; 7]]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let p = |k: usize| 7 * i + k + 1;
            match db.backend {
                Backend::Postgres => format!(
                    "(${}, ${}, CAST(${} AS bigint), ${}, ${}, CAST(${} AS json), CAST(${} AS json))",
                    p(0), p(1), p(2), p(3), p(4), p(5), p(6)
                ),
                Backend::Sqlite => format!(
                    "(${}, ${}, CAST(${} AS integer), ${}, ${}, ${}, ${})",
                    p(0), p(1), p(2), p(3), p(4), p(5), p(6)
                ),
            }
        })
        .collect();
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        for cell in row {
            query = query.bind(cell.as_str());
        }
    }
    query.execute(&db.pool).await?;
    Ok(())
}
