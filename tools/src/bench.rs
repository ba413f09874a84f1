//! `portal bench`: the load generator and event seeder behind `ops/bench`.
//! Not a test: it measures, and `ops/bench` turns the numbers into the table in
//! `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::portal::{
    CrisisContact, CrisisPlan, PersonDetails, Portal, PortalCommand, RelationKind, SupportKind,
};
use projections::db::params;
use projections::{Backend, Db};
use serde_json::json;
use uuid::Uuid;

use api::auth::{Role, TokenKeys};
use api::settings::Settings;

use crate::{Error, Result};

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn post(http: &reqwest::Client, url: &str, token: &str, query: &str) -> Result<bool> {
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

/// The `n`-th write of a writer doing `kind` (`mix`: status ratings, and goals
/// set and achieved;
/// or one section: `status`, `medication`, `network`, `crisis_plan`,
/// `exercise`). Each kind's first write creates what the later ones change, so
/// no limit on the number of items is reached however long the run.
fn write_query(kind: &str, n: u64) -> String {
    match (kind, n) {
        ("status", _) => format!(
            "mutation {{ rateStatus(domain: \"housing\", score: {}) {{ version }} }}",
            n % 10 + 1
        ),
        ("medication", 0) => "mutation { addMedication(uuid: \"00000000-0000-0000-0000-000000000001\", name: \"Sertraline\", dose: \"0 mg\", schedule: \"morning\") { version } }".to_string(),
        ("medication", _) => format!(
            "mutation {{ changeMedication(medicationId: \"00000000-0000-0000-0000-000000000001\", dose: \"{n} mg\") {{ version }} }}"
        ),
        ("network", 0) => "mutation { addPerson(uuid: \"00000000-0000-0000-0000-000000000002\", displayName: \"Mum\", relation: FAMILY, closeness: 1) { version } }".to_string(),
        ("network", _) => format!(
            "mutation {{ updatePerson(personId: \"00000000-0000-0000-0000-000000000002\", displayName: \"Mum\", relation: FAMILY, closeness: {}, support: [EMOTIONAL]) {{ version }} }}",
            n % 5 + 1
        ),
        ("crisis_plan", _) => format!(
            "mutation {{ reviseCrisisPlan(plan: {{ warningSigns: [\"Not sleeping\"], whatHelps: [\"A walk\"], \
             contacts: [{{ name: \"Mum\", phone: \"+47 22 33 44 55\" }}], ownWords: \"revision {n}\" }}) {{ version }} }}"
        ),
        ("exercise", _) if n.is_multiple_of(2) => format!(
            "mutation {{ startExercise(exercise: \"mindfulness\", uuid: \"{}\") {{ version }} }}",
            Uuid::from_u128(u128::from(n / 2 + 1))
        ),
        ("exercise", _) => format!(
            "mutation {{ completeExercise(entryId: \"{}\", rating: 4, reflection: \"calm\") {{ version }} }}",
            Uuid::from_u128(u128::from(n / 2 + 1))
        ),
        _ if n.is_multiple_of(2) => format!(
            "mutation {{ rateStatus(domain: \"housing\", score: {}) {{ version }} }}",
            n % 10 + 1
        ),
        // A goal set, then achieved two writes later: the portal never
        // reaches its 1,000 active goals, however long the run.
        _ if n % 4 == 1 => format!(
            "mutation {{ setGoal(domain: \"leisure\", title: \"goal {n}\", uuid: \"{}\") {{ version }} }}",
            Uuid::from_u128(u128::from(n) + (1 << 64))
        ),
        _ => format!(
            "mutation {{ achieveGoal(goalId: \"{}\") {{ version }} }}",
            Uuid::from_u128(u128::from(n - 2) + (1 << 64))
        ),
    }
}

/// The kinds of write [`load`] can drive.
pub const WRITE_KINDS: &[&str] = &[
    "mix",
    "status",
    "medication",
    "network",
    "crisis_plan",
    "exercise",
];

/// Runs `clients` writers (each on its own portal, doing `kind` writes) and
/// `readers` control-panel readers against a running server for `seconds`;
/// prints one JSON line.
pub async fn load(
    settings: &Settings,
    base: &str,
    clients: usize,
    readers: usize,
    seconds: u64,
    kind: &str,
    enrolled: bool,
) -> Result<()> {
    if !WRITE_KINDS.contains(&kind) {
        return Err(Error::Input(format!(
            "unknown write kind {kind}; one of {WRITE_KINDS:?}"
        )));
    }
    let kind = kind.to_string();
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
    if enrolled {
        // Every user takes part in a study, so every request is also a usage record.
        let admin = keys.mint(Uuid::new_v4(), Role::Admin, "bench", 3600)?;
        let register = "mutation($r: [ID!]!) { registerStudy(title: \"Bench\", protocolId: \"B-1\", startsOn: \"2020-01-01\", endsOn: \"2029-12-31\", researcherIds: $r) { study { uuid } } }";
        let study = call(
            &http,
            &url,
            &admin,
            register,
            json!({ "r": [Uuid::new_v4()] }),
        )
        .await?;
        let id = study["registerStudy"]["study"]["uuid"]
            .as_str()
            .ok_or_else(|| Error::Refused {
                operation: "registering the study".into(),
                detail: format!("no study id in {study}"),
            })?
            .to_string();
        for token in &tokens {
            let query = "mutation($s: ID!) { enrolInStudy(studyId: $s) { version } }";
            call(&http, &url, token, query, json!({ "s": id })).await?;
        }
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
            let (http, url, kind) = (http.clone(), url.clone(), kind.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let query = if i >= clients {
                        "{ controlPanel { domains { key latestStatus { score } activeGoals { title progress { done } activities { title } } } } }".to_string()
                    } else {
                        write_query(&kind, n)
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
            "kind": kind,
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

/// Produces a realistic mix of valid commands for one portal: status
/// ratings, goals and activities, medications, the network map, crisis-plan
/// revisions and exercises, in the proportions of a portal used for years.
struct Seeder {
    owner: Uuid,
    portal: Portal,
    goals: Vec<Uuid>,
    planned: Vec<Uuid>,
    medications: Vec<Uuid>,
    people: Vec<Uuid>,
    exercises: Vec<Uuid>,
    step: usize,
}

impl Seeder {
    fn new() -> Self {
        Seeder {
            owner: Uuid::new_v4(),
            portal: Portal::default(),
            goals: Vec::new(),
            planned: Vec::new(),
            medications: Vec::new(),
            people: Vec::new(),
            exercises: Vec::new(),
            step: 0,
        }
    }

    fn command(&mut self, at: DateTime<Utc>) -> PortalCommand {
        let step = self.step;
        self.step += 1;
        if self.portal.owner.is_none() {
            return PortalCommand::OpenPortal {
                owner: self.owner,
                organisation: "bench".into(),
                at,
            };
        }
        let rate = |domain: &str| PortalCommand::RateStatus {
            domain: domain.into(),
            score: (step % 10 + 1) as i32,
            note: "seeded".into(),
            at,
        };
        match step % 12 {
            0 | 1 => rate("housing"),
            // A person works on a few goals at a time: the oldest is
            // achieved before a sixth is set.
            2 if self.goals.len() >= 5 => PortalCommand::AchieveGoal {
                goal_id: self.goals.remove(0),
                at,
            },
            2 => {
                let goal_id = Uuid::new_v4();
                self.goals.push(goal_id);
                PortalCommand::SetGoal {
                    goal_id,
                    domain: "education".into(),
                    title: format!("goal {step}"),
                    description: String::new(),
                    at,
                }
            }
            3 if !self.goals.is_empty() && self.goals.len() * 200 > self.planned.len() + 1 => {
                let activity_id = Uuid::new_v4();
                self.planned.push(activity_id);
                PortalCommand::PlanActivity {
                    goal_id: self.goals[self.goals.len() - 1],
                    activity_id,
                    title: "step".into(),
                    at,
                }
            }
            4 => match self.planned.pop() {
                Some(activity_id) => PortalCommand::CompleteActivity { activity_id, at },
                None => rate("leisure"),
            },
            5 if self.medications.len() < 20 => {
                let medication_id = Uuid::new_v4();
                self.medications.push(medication_id);
                PortalCommand::AddMedication {
                    medication_id,
                    name: format!("medication {step}"),
                    dose: "10 mg".into(),
                    schedule: "morning".into(),
                    purpose: "seeded".into(),
                    prescriber: String::new(),
                    at,
                }
            }
            5 => PortalCommand::ChangeMedication {
                medication_id: self.medications[step % self.medications.len()],
                dose: Some(format!("{step} mg")),
                schedule: None,
                at,
            },
            6 if self.people.len() < 30 => {
                let person_id = Uuid::new_v4();
                self.people.push(person_id);
                PortalCommand::AddPerson {
                    person_id,
                    details: person(format!("person {step}"), step),
                    at,
                }
            }
            6 => {
                let person_id = self.people[step % self.people.len()];
                let name = self.portal.people[&person_id].display_name.clone();
                PortalCommand::UpdatePerson {
                    person_id,
                    details: person(name, step),
                    at,
                }
            }
            7 => PortalCommand::ReviseCrisisPlan {
                plan: CrisisPlan {
                    warning_signs: vec!["Not sleeping".into(), "Skipping meals".into()],
                    what_helps: vec!["A walk".into()],
                    what_does_not_help: vec!["Crowds".into()],
                    contacts: vec![CrisisContact {
                        name: "Mum".into(),
                        phone: "+47 22 33 44 55".into(),
                        when_to_call: "Any time".into(),
                    }],
                    own_words: format!("revision {step}"),
                },
                at,
            },
            8 | 9 => {
                let entry_id = Uuid::new_v4();
                self.exercises.push(entry_id);
                PortalCommand::StartExercise {
                    entry_id,
                    exercise: "mindfulness".into(),
                    catalogue_title: Some("Mindfulness".into()),
                    at,
                }
            }
            10 | 11 => match self.exercises.pop() {
                Some(entry_id) => PortalCommand::CompleteExercise {
                    entry_id,
                    reflection: "calmer".into(),
                    rating: Some((step % 5 + 1) as i32),
                    at,
                },
                None => rate("leisure"),
            },
            _ => rate("leisure"),
        }
    }

    /// Decides the next command; returns its events, applied to the state.
    fn next(&mut self, at: DateTime<Utc>) -> Vec<domain::portal::PortalEvent> {
        let command = self.command(at);
        let events = self.portal.decide(command).unwrap_or_default();
        for event in &events {
            cqrs_es::Aggregate::apply(&mut self.portal, event.clone());
        }
        events
    }
}

fn person(display_name: String, step: usize) -> PersonDetails {
    PersonDetails {
        display_name,
        relation: RelationKind::Friend,
        closeness: (step % 5 + 1) as i32,
        support: vec![SupportKind::Emotional],
    }
}

/// Appends about `events` valid portal events straight into the event store,
/// produced by the domain's own `decide` on `portals` portals, in bulk. For
/// measuring rebuilds and reads of large portals; the service's write path is
/// measured by `load`. Events of one portal are stamped one `spacing` apart,
/// ending now. Returns the portals' owners.
pub async fn seed(
    settings: &Settings,
    events: usize,
    portals: usize,
    spacing: chrono::Duration,
) -> Result<Vec<Uuid>> {
    api::service::migrate(settings).await?;
    let db = Db::connect(&settings.store.database_url, 4).await?;
    let per_portal = events.div_ceil(portals.max(1));
    let started = Instant::now();
    let metadata = json!({"actor_id": "bench", "actor_role": "service_user", "organisation": "bench", "request_id": "seed"}).to_string();
    let mut rows: Vec<(String, i64, String, String)> = Vec::with_capacity(10_000);
    let mut written = 0usize;
    let mut owners = Vec::with_capacity(portals);
    let first = Utc::now() - spacing * per_portal as i32;
    for p in 0..portals {
        let mut seeder = Seeder::new();
        owners.push(seeder.owner);
        let mut sequence = 0i64;
        while (sequence as usize) < per_portal {
            let at = first + spacing * sequence as i32;
            for event in seeder.next(at) {
                sequence += 1;
                rows.push((
                    seeder.owner.to_string(),
                    sequence,
                    cqrs_es::DomainEvent::event_type(&event),
                    serde_json::to_string(&event)?,
                ));
            }
        }
        if rows.len() >= 5_000 || p + 1 == portals {
            written += rows.len();
            insert_events(&db, &metadata, std::mem::take(&mut rows)).await?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        json!({"seeded_events": written, "portals": portals, "seconds": secs})
    );
    Ok(owners)
}

/// Seeds one portal of `events` events (one minute apart), beside 200 portals
/// of 100 events, into the store a running server at `base` uses, waits until its projections have caught up,
/// then times every section read as of random earlier times, next to the
/// same reads now and to a `me` query (the HTTP and GraphQL floor). Prints
/// one JSON line of per-query p50/p99 in milliseconds.
pub async fn as_of(settings: &Settings, base: &str, events: usize, samples: usize) -> Result<()> {
    // Other portals beside the large one, as in any real store (and so that
    // PostgreSQL's planner sees a table of many portals).
    seed(settings, 20_000, 200, chrono::Duration::minutes(1)).await?;
    let owner = seed(settings, events, 1, chrono::Duration::minutes(1)).await?[0];
    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    let token = keys.mint(owner, Role::ServiceUser, "bench", 3600)?;
    let http = reqwest::Client::new();
    let url = format!("{base}/graphql");
    for _ in 0..1200 {
        let ready: serde_json::Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await?
            .json()
            .await?;
        let lagging = ready["projections"]
            .as_array()
            .is_none_or(|a| a.iter().any(|p| p["lag_events"].as_i64() != Some(0)));
        if !lagging {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Table statistics as autovacuum would keep them on a live database.
    if Backend::from_url(&settings.store.database_url)? == Backend::Postgres {
        let db = Db::connect(&settings.store.database_url, 1).await?;
        sqlx::query("ANALYZE").execute(&db.pool).await?;
    }
    let span = chrono::Duration::minutes(events as i64);
    let start = Utc::now() - span;
    let queries: &[(&str, &str)] = &[
        ("me", "{ me { personId } }"),
        ("control_panel", "query($t: DateTime) { controlPanel(asOf: $t) { version domains { key latestStatus { score } activeGoals { title activities { title } } } sections { section items } } }"),
        ("medications", "query($t: DateTime) { medications(asOf: $t) { id name dose state } }"),
        ("network", "query($t: DateTime) { network(asOf: $t) { id displayName closeness } }"),
        ("crisis_plan", "query($t: DateTime) { crisisPlan(asOf: $t) { revision warningSigns contacts { name phone } ownWords } }"),
        ("exercise_log", "query($t: DateTime) { exerciseLog(asOf: $t) { started completed entries(first: 20) { nodes { title rating } } } }"),
    ];
    let mut out = serde_json::Map::new();
    out.insert("events".into(), json!(events));
    out.insert("samples".into(), json!(samples));
    for (name, query) in queries {
        for past in [true, false] {
            if *name == "me" && past {
                continue;
            }
            let mut latencies = Vec::with_capacity(samples);
            for i in 0..samples {
                // Spread the times over the whole history, deterministically.
                let t = if past {
                    json!((start + span * ((i * 7919) % 1000) as i32 / 1000).to_rfc3339())
                } else {
                    serde_json::Value::Null
                };
                let started = Instant::now();
                let response: serde_json::Value = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": query, "variables": { "t": t } }))
                    .send()
                    .await?
                    .json()
                    .await?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                if response.get("errors").is_some() {
                    return Err(Error::Refused {
                        operation: (*name).to_string(),
                        detail: response.to_string(),
                    });
                }
            }
            latencies.sort_by(f64::total_cmp);
            let key = if past {
                format!("{name}_as_of")
            } else {
                format!("{name}_now")
            };
            out.insert(
                key,
                json!({"p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)}),
            );
        }
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// The provider registers, the user invites them, they accept: the
/// relationship id.
pub(crate) async fn relate(
    http: &reqwest::Client,
    url: &str,
    owner: &str,
    carer: &str,
    provider: Uuid,
) -> Result<serde_json::Value> {
    call(
        http,
        url,
        carer,
        "mutation { saveProviderProfile(displayName: \"Bench\", profession: NURSE) { version } }",
        json!({}),
    )
    .await?;
    let invited = call(
        http,
        url,
        owner,
        "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { id } } }",
        json!({ "p": provider }),
    )
    .await?;
    let rel = invited["inviteToCare"]["relationship"]["id"].clone();
    call(
        http,
        url,
        carer,
        "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }",
        json!({ "r": rel }),
    )
    .await?;
    Ok(rel)
}

/// Which reads the access benchmark times.
const ACCESS_READS: &[(&str, &str)] = &[
    (
        "medications",
        "query($p: ID) { medications(portalId: $p) { id name dose schedule state } }",
    ),
    (
        "control_panel",
        "query($p: ID) { controlPanel(portalId: $p) { version domains { key latestStatus { score } activeGoals { title } } } }",
    ),
];

/// The latencies (ms) of every reader's task, as requests per second over
/// `seconds` and p50/p99 in milliseconds.
pub(crate) async fn gathered(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<f64>>>>,
    seconds: u64,
) -> Result<serde_json::Value> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "per_s": latencies.len() as f64 / seconds as f64,
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
    }))
}

/// Sends a query with variables; fails on any GraphQL error.
pub(crate) async fn call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> Result<serde_json::Value> {
    let response: serde_json::Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    if response.get("errors").is_some() {
        return Err(Error::Refused {
            operation: query.to_string(),
            detail: response.to_string(),
        });
    }
    Ok(response["data"].clone())
}

/// The cost of a recorded read: `clients` service users, each followed by
/// their own provider with a grant of every section, through the real command
/// path. For each read, `clients` owners read their own portals for `seconds`
/// (nothing recorded), then `clients` providers read the same portals (each
/// read appended to the access trail before it is answered). Prints one JSON
/// line: per read and reader, requests per second and p50/p99 in milliseconds.
pub async fn access(settings: &Settings, base: &str, clients: usize, seconds: u64) -> Result<()> {
    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    let url = format!("{base}/graphql");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()?;
    let mut pairs = Vec::new();
    for _ in 0..clients {
        let (user, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let owner = keys.mint(user, Role::ServiceUser, "bench", 3600)?;
        let carer = keys.mint(provider, Role::Provider, "bench", 3600)?;
        let none = json!({});
        call(
            &http,
            &url,
            &owner,
            "mutation { openPortal { version } }",
            none.clone(),
        )
        .await?;
        for (name, dose) in [
            ("Sertraline", "50 mg"),
            ("Lithium", "400 mg"),
            ("Melatonin", "2 mg"),
        ] {
            call(&http, &url, &owner, &format!("mutation {{ addMedication(name: \"{name}\", dose: \"{dose}\", schedule: \"evening\") {{ version }} }}"), none.clone()).await?;
        }
        for i in 0..3 {
            call(&http, &url, &owner, &format!("mutation {{ setGoal(domain: \"housing\", title: \"goal {i}\") {{ version }} }}"), none.clone()).await?;
        }
        let rel = relate(&http, &url, &owner, &carer, provider).await?;
        for section in ["CORE", "MEDICATIONS"] {
            call(&http, &url, &owner, &format!("mutation($r: ID!) {{ grantAccess(relationshipId: $r, section: {section}) {{ version }} }}"), json!({ "r": rel })).await?;
        }
        pairs.push((user, owner, carer));
    }
    let mut out = serde_json::Map::new();
    out.insert("clients".into(), json!(clients));
    out.insert("seconds".into(), json!(seconds));
    for (name, query) in ACCESS_READS {
        for reader in ["owner", "provider"] {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = pairs
                .iter()
                .map(|(user, owner, carer)| {
                    let token = if reader == "owner" {
                        owner.clone()
                    } else {
                        carer.clone()
                    };
                    let (http, url, user) = (http.clone(), url.clone(), *user);
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        while Instant::now() < deadline {
                            let started = Instant::now();
                            call(&http, &url, &token, query, json!({ "p": user })).await?;
                            latencies.push(started.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok::<_, Error>(latencies)
                    })
                })
                .collect();
            out.insert(format!("{name}_{reader}"), gathered(tasks, seconds).await?);
        }
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

async fn insert_events(
    db: &Db,
    metadata: &str,
    rows: Vec<(String, i64, String, String)>,
) -> Result<()> {
    insert_typed_events(db, "Portal", metadata, rows).await
}

/// Appends rows (aggregate id, sequence, event type, payload) of one
/// aggregate type, in one transaction.
pub(crate) async fn insert_typed_events(
    db: &Db,
    aggregate_type: &str,
    metadata: &str,
    rows: Vec<(String, i64, String, String)>,
) -> Result<()> {
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
                    "('{aggregate_type}', {}, {}, {}, '1', {}, {})",
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

/// Messaging end to end: `pairs` service users, each with a provider and a
/// thread, both subscribed over WebSocket (2 × `pairs` subscribers). For
/// `seconds`, `clients` writers each post a message as a user and mark it
/// read as the provider (a message with its receipt). Prints one JSON line:
/// messages with receipts per second, and the time from sending to delivery
/// on the provider's subscription (p50/p99 ms).
pub async fn messaging(
    settings: &Settings,
    base: &str,
    pairs: usize,
    clients: usize,
    seconds: u64,
) -> Result<()> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message as Frame;

    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    let url = format!("{base}/graphql");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()?;
    let none = json!({});
    // (user token, provider token, thread id)
    let mut threads = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let (user, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let owner = keys.mint(user, Role::ServiceUser, "bench", 3600)?;
        let carer = keys.mint(provider, Role::Provider, "bench", 3600)?;
        call(
            &http,
            &url,
            &owner,
            "mutation { openPortal { version } }",
            none.clone(),
        )
        .await?;
        relate(&http, &url, &owner, &carer, provider).await?;
        let started = call(&http, &url, &owner, "mutation($p: ID!) { startConversation(subject: \"Bench\", body: \"hello\", providerIds: [$p]) { conversation { id } } }", json!({ "p": provider })).await?;
        let thread = started["startConversation"]["conversation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        threads.push((owner, carer, thread));
    }
    // Every user and provider subscribes; providers' sockets time deliveries.
    let ws = format!("{}/graphql/ws", base.replace("http://", "ws://"));
    let (delivered, mut deliveries) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for (owner, carer, _) in &threads {
        for (token, timed) in [(owner, false), (carer, true)] {
            let mut request = ws.as_str().into_client_request()?;
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
            let init = json!({ "type": "connection_init", "payload": { "token": token } });
            socket.send(Frame::Text(init.to_string().into())).await?;
            let _ack = socket.next().await;
            let start = json!({ "type": "subscribe", "id": "1", "payload": { "query": "subscription { liveUpdates { kind body } }" } });
            socket.send(Frame::Text(start.to_string().into())).await?;
            let delivered = delivered.clone();
            tokio::spawn(async move {
                while let Some(Ok(frame)) = socket.next().await {
                    let Frame::Text(text) = frame else { continue };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    // The server's keepalive: a client that does not answer is closed.
                    if v["type"] == "ping" {
                        let pong = json!({ "type": "pong" }).to_string();
                        if socket.send(Frame::Text(pong.into())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    if !timed {
                        continue;
                    }
                    if let Some(body) = v["payload"]["data"]["liveUpdates"]["body"].as_str() {
                        let _ = delivered.send((body.to_string(), Instant::now()));
                    }
                }
            });
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Instant,
    >::new()));
    let threads = std::sync::Arc::new(threads);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let writers: Vec<_> = (0..clients)
        .map(|w| {
            let (http, url, threads, sent) = (http.clone(), url.clone(), threads.clone(), sent.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                let mut n = w;
                while Instant::now() < deadline {
                    let (owner, carer, thread) = &threads[n % threads.len()];
                    n += clients;
                    let body = format!("m-{w}-{done}");
                    if let Ok(mut sent) = sent.lock() {
                        sent.insert(body.clone(), Instant::now());
                    }
                    let posted = call(&http, &url, owner, "mutation($c: ID!, $b: String!) { postMessage(conversationId: $c, body: $b) { message { id } } }", json!({ "c": thread, "b": body })).await?;
                    let message = posted["postMessage"]["message"]["id"].clone();
                    call(&http, &url, carer, "mutation($c: ID!, $m: ID!) { markRead(conversationId: $c, upTo: $m) { version } }", json!({ "c": thread, "m": message })).await?;
                    done += 1;
                }
                Ok::<_, Error>(done)
            })
        })
        .collect();
    let mut total = 0u64;
    for writer in writers {
        total += writer.await??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    while let Ok((body, at)) = deliveries.try_recv() {
        if let Some(start) = sent.lock().ok().and_then(|s| s.get(&body).copied()) {
            latencies.push(at.duration_since(start).as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "pairs": pairs,
            "subscribers": pairs * 2,
            "clients": clients,
            "seconds": seconds,
            "messages_with_receipts_per_s": total as f64 / seconds as f64,
            "delivered": latencies.len(),
            "sent": total,
            "delivery_p50_ms": percentile(&latencies, 0.5),
            "delivery_p99_ms": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}
