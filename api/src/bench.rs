//! `portal bench`: the load generator and event seeder behind `ops/bench`.
//! Not a test: it measures, and `ops/bench` turns the numbers into the table in
//! `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use chrono::Utc;
use domain::portal::{Portal, PortalCommand};
use projections::db::params;
use projections::{Backend, Db};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Role, TokenKeys};
use crate::settings::Settings;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
) -> Result<bool, BoxError> {
    let response: serde_json::Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await?
        .json()
        .await?;
    Ok(response.get("errors").is_none())
}

/// Runs `clients` writers (each on its own portal) and `readers` control-panel
/// readers against a running server for `seconds`; prints one JSON line.
pub async fn load(
    settings: &Settings,
    base: &str,
    clients: usize,
    readers: usize,
    seconds: u64,
) -> Result<(), BoxError> {
    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    let url = format!("{base}/graphql");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients + readers)
        .build()?;
    let mut tokens = Vec::new();
    for _ in 0..clients + readers {
        let token = keys.mint(Uuid::new_v4(), Role::ServiceUser, "bench", 3600)?;
        post(&http, &url, &token, "mutation { openPortal { version } }").await?;
        tokens.push(token);
    }
    for token in &tokens[clients..] {
        for i in 0..5 {
            post(&http, &url, token, &format!("mutation {{ setGoal(domain: \"housing\", title: \"goal {i}\") {{ version }} }}")).await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let query = if i >= clients {
                        "{ controlPanel { domains { key latestStatus { score } activeGoals { title progress { done } activities { title } } } } }".to_string()
                    } else if n.is_multiple_of(2) {
                        format!("mutation {{ rateStatus(domain: \"housing\", score: {}) {{ version }} }}", n % 10 + 1)
                    } else {
                        format!("mutation {{ setGoal(domain: \"leisure\", title: \"goal {n}\") {{ version }} }}")
                    };
                    n += 1;
                    let started = Instant::now();
                    match post(&http, &url, &token, &query).await {
                        Ok(true) => {
                            ok += 1;
                            latencies.push(started.elapsed().as_secs_f64() * 1e3);
                        }
                        _ => failed += 1,
                    }
                }
                (i >= clients, ok, failed, latencies)
            })
        })
        .collect();
    let (mut writes, mut write_failures, mut write_lat, mut read_lat) =
        (0u64, 0u64, Vec::new(), Vec::new());
    for task in tasks {
        let (reader, ok, failed, latencies) = task.await?;
        if reader {
            read_lat.extend(latencies);
        } else {
            writes += ok;
            write_failures += failed;
            write_lat.extend(latencies);
        }
    }
    write_lat.sort_by(f64::total_cmp);
    read_lat.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "clients": clients,
            "readers": readers,
            "seconds": seconds,
            "mutations_ok": writes,
            "mutations_failed": write_failures,
            "mutations_per_s": writes as f64 / seconds as f64,
            "mutation_p50_ms": percentile(&write_lat, 0.5),
            "mutation_p99_ms": percentile(&write_lat, 0.99),
            "panel_reads": read_lat.len(),
            "panel_p50_ms": percentile(&read_lat, 0.5),
            "panel_p99_ms": percentile(&read_lat, 0.99),
        })
    );
    Ok(())
}

/// Appends about `events` valid portal events straight into the event store,
/// produced by the domain's own `decide` on `portals` portals, in bulk. For
/// measuring rebuilds; the service's write path is measured by `load`.
pub async fn seed(settings: &Settings, events: usize, portals: usize) -> Result<(), BoxError> {
    crate::service::migrate(settings)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let db = Db::connect(&settings.database_url, 4).await?;
    let per_portal = events.div_ceil(portals.max(1));
    let started = Instant::now();
    let metadata = json!({"actor_id": "bench", "actor_role": "service_user", "organisation": "bench", "request_id": "seed"}).to_string();
    let mut rows: Vec<(String, i64, String, String)> = Vec::with_capacity(10_000);
    let mut written = 0usize;
    for p in 0..portals {
        let owner = Uuid::new_v4();
        let mut portal = Portal::default();
        let mut goals: Vec<Uuid> = Vec::new();
        let mut planned: Vec<Uuid> = Vec::new();
        let mut sequence = 0i64;
        let mut step = 0usize;
        while (sequence as usize) < per_portal {
            let at = Utc::now();
            let command = if sequence == 0 {
                PortalCommand::OpenPortal {
                    owner,
                    organisation: "bench".into(),
                    at,
                }
            } else {
                match step % 6 {
                    0 | 1 => PortalCommand::RateStatus {
                        domain: "housing".into(),
                        score: (step % 10 + 1) as i32,
                        note: "seeded".into(),
                        at,
                    },
                    2 => {
                        let goal_id = Uuid::new_v4();
                        goals.push(goal_id);
                        PortalCommand::SetGoal {
                            goal_id,
                            domain: "education".into(),
                            title: format!("goal {step}"),
                            description: String::new(),
                            at,
                        }
                    }
                    3 | 4 if !goals.is_empty() && goals.len() * 200 > planned.len() + 1 => {
                        let activity_id = Uuid::new_v4();
                        planned.push(activity_id);
                        PortalCommand::PlanActivity {
                            goal_id: goals[goals.len() - 1],
                            activity_id,
                            title: "step".into(),
                            at,
                        }
                    }
                    _ => match planned.pop() {
                        Some(activity_id) => PortalCommand::CompleteActivity { activity_id, at },
                        None => PortalCommand::RateStatus {
                            domain: "leisure".into(),
                            score: 5,
                            note: String::new(),
                            at,
                        },
                    },
                }
            };
            step += 1;
            let decided = match portal.decide(command) {
                Ok(events) => events,
                Err(_) => continue,
            };
            for event in decided {
                sequence += 1;
                rows.push((
                    owner.to_string(),
                    sequence,
                    cqrs_es::DomainEvent::event_type(&event),
                    serde_json::to_string(&event)?,
                ));
                cqrs_es::Aggregate::apply(&mut portal, event);
            }
        }
        if rows.len() >= 5_000 || p + 1 == portals {
            written += rows.len();
            insert_events(&db, &metadata, std::mem::take(&mut rows)).await?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seeded_events": written, "portals": portals, "seconds": secs})
    );
    Ok(())
}

async fn insert_events(
    db: &Db,
    metadata: &str,
    rows: Vec<(String, i64, String, String)>,
) -> Result<(), BoxError> {
    let cast = |p: String| match db.backend {
        Backend::Postgres => format!("CAST({p} AS json)"),
        Backend::Sqlite => p,
    };
    let mut tx = db.pool.begin().await?;
    for chunk in rows.chunks(1_000) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let ps: Vec<String> = params(r * 4 + 1, 4)
                    .split(", ")
                    .map(str::to_string)
                    .collect();
                format!(
                    "('Portal', {}, {}, {}, '1', {}, {})",
                    ps[0],
                    ps[1],
                    ps[2],
                    cast(ps[3].clone()),
                    cast(format!("${}", chunk.len() * 4 + 1))
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (id, seq, kind, payload) in chunk {
            q = q
                .bind(id.clone())
                .bind(*seq)
                .bind(kind.clone())
                .bind(payload.clone());
        }
        q.bind(metadata.to_string()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
