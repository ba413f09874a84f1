//! `portal simulate`: a seeded, synthetic study driven through the real
//! command path. Every action is a GraphQL operation executed by the
//! service's own schema as the person doing it (authorisation, commands,
//! access trail and usage records included), at a simulated time: the
//! service clock is set to each action's time before it runs, so months of
//! use land in minutes.
//!
//! The pattern (docs/research.md): service users join over the first two
//! weeks, each with a visit rate that decays over the months (some faster
//! than others); a minority writes many messages; about a fifth of the
//! providers never log in; providers initiate most exchanges at first and
//! users more later; in some dyads the provider's replies grow slower and
//! slower than agreed. The forum is the most visited module (as in
//! ReConnect): most visits begin there, and a minority of the
//! users write most of its posts; providers read it now and then and
//! rarely post. One admin registers the study; most people enrol, a few
//! withdraw half-way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::{Request, Variables};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use api::auth::{Caller, Role};
use api::context::{Receipts, RequestContext};
use api::schema;
use api::service::Service;

use crate::{Error, Result};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    pub users: usize,
    pub providers: usize,
    pub months: u32,
    pub seed: u64,
    pub organisation: String,
    /// First day; default: `months` months before today, so it ends now.
    pub start: Option<NaiveDate>,
    /// Workers playing disjoint groups of providers and their users at once
    /// (1: everything in one order).
    pub workers: usize,
    /// Multiplies every visit rate (1: the pattern described above).
    pub activity: f64,
}

/// What a simulation did.
#[derive(Debug, Clone, Default)]
pub struct SimulateSummary {
    pub study_id: Uuid,
    pub researcher_id: Uuid,
    pub operations: u64,
    /// Operations refused, by error code (a few are expected: e.g. a reply
    /// to a thread whose relationship has just ended).
    pub refused: std::collections::BTreeMap<String, u64>,
    pub seconds: f64,
}

/// SplitMix64: small, fast, and the same numbers for the same seed everywhere.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Exponentially distributed with this mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
    /// Poisson-distributed count with mean `lambda` (small lambdas).
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let (mut k, mut p) = (0u32, 1.0);
        loop {
            p *= self.unit();
            if p <= limit || k > 100 {
                return k;
            }
            k += 1;
        }
    }
    pub(crate) fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(
            ((u128::from(self.next()) << 64) | u128::from(self.next())).to_le_bytes(),
        )
        .into_uuid()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Admin,
    User(usize),
    Provider(usize),
}

#[derive(Debug, Clone)]
enum Action {
    RegisterStudy,
    Profile,
    OpenPortal,
    Enrol,
    Withdraw,
    Invite {
        user: usize,
    },
    Accept {
        provider: usize,
    },
    Grant {
        provider: usize,
        section: &'static str,
    },
    Propose {
        user: usize,
    },
    AcceptAgreement {
        provider: usize,
    },
    View(&'static str),
    ReadPortal {
        user: usize,
    },
    RateStatus,
    SetGoal,
    PlanActivity,
    CompleteActivity,
    AddMedication,
    Exercise,
    /// A message in the dyad's thread (started if there is none).
    Message {
        user: usize,
        provider: usize,
    },
    /// A user chooses their forum pseudonym.
    ForumName,
    /// A post in the forum: a new topic, or a reply to one seen.
    ForumPost,
}

struct Person {
    id: Uuid,
    role: Role,
}

/// Runs the simulation against `service` (whose projections must be running),
/// with the service clock following the simulation in this task (and in
/// each worker's).
pub async fn run(service: Arc<Service>, request: &SimulateRequest) -> Result<SimulateSummary> {
    simulate(service, request).await
}

async fn simulate(service: Arc<Service>, request: &SimulateRequest) -> Result<SimulateSummary> {
    let started = Instant::now();
    let mut rng = Rng(request.seed);
    let days = i64::from(request.months) * 30;
    let start = request
        .start
        .unwrap_or_else(|| (Utc::now() - Duration::days(days)).date_naive());
    let t0 = start
        .and_hms_opt(8, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| Error::Input(format!("--start {start}: the day has no 08:00")))?;
    let end = t0 + Duration::days(days);

    let admin = Person {
        id: rng.uuid(),
        role: Role::Admin,
    };
    let researcher = rng.uuid();
    let users: Vec<Person> = (0..request.users)
        .map(|_| Person {
            id: rng.uuid(),
            role: Role::ServiceUser,
        })
        .collect();
    let providers: Vec<Person> = (0..request.providers)
        .map(|_| Person {
            id: rng.uuid(),
            role: Role::Provider,
        })
        .collect();

    let mut plan: Vec<(DateTime<Utc>, u64, Who, Action)> = Vec::new();
    let mut order = 0u64;
    let mut at =
        |plan: &mut Vec<(DateTime<Utc>, u64, Who, Action)>, t: DateTime<Utc>, who, action| {
            order += 1;
            plan.push((t, order, who, action));
        };
    let minutes = |m: f64| Duration::milliseconds((m * 60_000.0) as i64);

    at(&mut plan, t0, Who::Admin, Action::RegisterStudy);
    // When each user joins, and the last day they use the portal: a
    // quarter stop altogether at some point.
    let mut habits_rng = Rng(request.seed ^ 0x005E_ED0F_0A5E);
    let joins: Vec<DateTime<Utc>> = (0..users.len())
        .map(|_| t0 + Duration::days(4) + minutes(habits_rng.unit() * 60.0 * 24.0 * 14.0))
        .collect();
    let last_use: Vec<DateTime<Utc>> = joins
        .iter()
        .map(|joined| match habits_rng.chance(0.25) {
            true => *joined + Duration::days(habits_rng.exp(75.0) as i64),
            false => end,
        })
        .collect();
    // Providers: a fifth never log in after their profile; the rest look
    // in a few times a week and reply within hours to days.
    struct ProviderHabit {
        never: bool,
        visits_per_week: f64,
        reply_hours: f64,
    }
    let habits: Vec<ProviderHabit> = (0..providers.len())
        .map(|_| ProviderHabit {
            never: rng.chance(0.2),
            visits_per_week: ((0.5 + rng.exp(3.0)) * request.activity).min(7.0),
            reply_hours: 4.0 + rng.exp(20.0),
        })
        .collect();
    for (p, habit) in habits.iter().enumerate() {
        let t = t0 + minutes(5.0 + rng.unit() * 60.0 * 24.0 * 3.0);
        at(&mut plan, t, Who::Provider(p), Action::Profile);
        if rng.chance(0.85) {
            // Those who never log in enrol once their clients are set up.
            let enrols = if habit.never {
                t0 + Duration::days(20)
            } else {
                t + minutes(2.0)
            };
            at(&mut plan, enrols, Who::Provider(p), Action::Enrol);
        }
        if habit.never {
            continue;
        }
        let mut week = 0i64;
        while week * 7 < days {
            for _ in 0..rng.poisson(habit.visits_per_week) {
                let when = t0 + Duration::days(week * 7) + minutes(60.0 * 24.0 * 7.0 * rng.unit());
                if when < t + Duration::days(4) || when >= end {
                    continue;
                }
                at(&mut plan, when, Who::Provider(p), Action::View("caseload"));
                if rng.chance(0.5) {
                    let read = when + minutes(0.5);
                    at(&mut plan, read, Who::Provider(p), Action::View("forum"));
                    if rng.chance(0.15) {
                        at(
                            &mut plan,
                            read + minutes(2.0),
                            Who::Provider(p),
                            Action::ForumPost,
                        );
                    }
                }
                let mine: Vec<usize> = (0..users.len())
                    .filter(|u| u % providers.len().max(1) == p)
                    .collect();
                if let Some(&u) = mine.get(rng.below(mine.len())) {
                    at(
                        &mut plan,
                        when + minutes(1.0),
                        Who::Provider(p),
                        Action::ReadPortal { user: u },
                    );
                    // Providers start most exchanges early on, fewer later.
                    let progress = (when - t0).num_days() as f64 / days.max(1) as f64;
                    if rng.chance(0.85 * (1.0 - progress).powi(2) + 0.12) {
                        at(
                            &mut plan,
                            when + minutes(3.0),
                            Who::Provider(p),
                            Action::Message {
                                user: u,
                                provider: p,
                            },
                        );
                        // Most users answer, within a day or so, while they
                        // still use the portal.
                        let answer = when + minutes(60.0 * rng.exp(18.0) + 5.0);
                        if rng.chance(0.6) && answer < end && answer <= last_use[u] {
                            let who = Who::User(u);
                            at(&mut plan, answer, who, Action::View("conversations"));
                            let action = Action::Message {
                                user: u,
                                provider: p,
                            };
                            at(&mut plan, answer + minutes(1.0), who, action);
                        }
                    }
                }
            }
            week += 1;
        }
    }
    // Service users: each is cared for by provider u % M (and maybe one more).
    for u in 0..users.len() {
        let p = u % providers.len().max(1);
        let joined = joins[u];
        let who = Who::User(u);
        at(&mut plan, joined, who, Action::OpenPortal);
        let enrols = rng.chance(0.9);
        if enrols {
            at(&mut plan, joined + minutes(1.0), who, Action::Enrol);
            if rng.chance(0.08) {
                let half = joined + Duration::days(days / 2) + minutes(rng.unit() * 600.0);
                at(&mut plan, half, who, Action::Withdraw);
            }
        }
        if providers.is_empty() {
            continue;
        }
        at(
            &mut plan,
            joined + minutes(2.0),
            Who::Provider(p),
            Action::Invite { user: u },
        );
        at(
            &mut plan,
            joined + minutes(3.0),
            who,
            Action::Accept { provider: p },
        );
        at(
            &mut plan,
            joined + minutes(4.0),
            who,
            Action::Grant {
                provider: p,
                section: "CORE",
            },
        );
        if rng.chance(0.6) {
            at(
                &mut plan,
                joined + minutes(4.5),
                who,
                Action::Grant {
                    provider: p,
                    section: "MEDICATIONS",
                },
            );
        }
        // Dyads whose expectations drift apart: an agreement, and replies
        // that come ever later than it says.
        let mut drift = false;
        if rng.chance(0.6) {
            drift = rng.chance(0.4);
            at(
                &mut plan,
                joined + minutes(5.0),
                Who::Provider(p),
                Action::Propose { user: u },
            );
            at(
                &mut plan,
                joined + minutes(6.0),
                who,
                Action::AcceptAgreement { provider: p },
            );
        }
        if rng.chance(0.5) {
            at(&mut plan, joined + minutes(7.0), who, Action::AddMedication);
        }
        at(&mut plan, joined + minutes(8.0), who, Action::ForumName);
        // A minority writes most of the forum's posts.
        let poster = rng.chance(0.2);
        // Visits: a daily rate that decays at each user's own pace, until
        // their last day; a minority writes many messages.
        let heavy = rng.chance(0.15);
        let base = (0.2 + rng.exp(0.5)) * request.activity;
        let decay_days = 20.0 + rng.exp(120.0);
        let provider_habit = &habits[p];
        let mut day = 0i64;
        while joined + Duration::days(day) < end.min(last_use[u]) {
            let rate = base * (-(day as f64) / decay_days).exp();
            for _ in 0..rng.poisson(rate) {
                let mut when =
                    joined + Duration::days(day) + minutes(60.0 * (8.0 + rng.unit() * 14.0));
                if when >= end {
                    continue;
                }
                // Most visits begin in the forum.
                let start_page = if rng.chance(0.65) {
                    "forum"
                } else {
                    "controlPanel"
                };
                at(&mut plan, when, who, Action::View(start_page));
                if start_page == "forum" && rng.chance(if poster { 0.45 } else { 0.03 }) {
                    when += minutes(2.0 + rng.unit() * 4.0);
                    at(&mut plan, when, who, Action::ForumPost);
                }
                // A visit for the forum mostly stays there.
                let looks = if start_page == "forum" {
                    rng.below(3)
                } else {
                    2 + rng.below(9)
                };
                for _ in 0..looks {
                    when += minutes(0.5 + rng.unit() * 3.0);
                    let roll = rng.unit();
                    // Mostly looking around, sometimes a change.
                    let action = if roll < 0.10 {
                        Action::RateStatus
                    } else if roll < 0.13 {
                        Action::SetGoal
                    } else if roll < 0.17 {
                        Action::PlanActivity
                    } else if roll < 0.22 {
                        Action::CompleteActivity
                    } else if roll < 0.27 {
                        Action::Exercise
                    } else if roll < 0.45 {
                        Action::View("medications")
                    } else if roll < 0.60 {
                        Action::View("network")
                    } else if roll < 0.68 {
                        Action::View("controlPanel")
                    } else if roll < 0.87 {
                        Action::View("forum")
                    } else {
                        Action::View("conversations")
                    };
                    at(&mut plan, when, who, action);
                }
                let progress = (when - t0).num_days() as f64 / days.max(1) as f64;
                let writes = if heavy { 0.35 } else { 0.02 + 0.12 * progress };
                if rng.chance(writes) {
                    at(
                        &mut plan,
                        when + minutes(1.0),
                        who,
                        Action::Message {
                            user: u,
                            provider: p,
                        },
                    );
                    if !provider_habit.never && rng.chance(0.85) {
                        // The provider answers; in drifting dyads ever later.
                        let drift = if drift { 1.0 + 4.0 * progress } else { 1.0 };
                        let later = when
                            + minutes(60.0 * rng.exp(provider_habit.reply_hours * drift))
                            + minutes(2.0);
                        if later < end {
                            at(
                                &mut plan,
                                later,
                                Who::Provider(p),
                                Action::View("conversations"),
                            );
                            at(
                                &mut plan,
                                later + minutes(1.0),
                                Who::Provider(p),
                                Action::Message {
                                    user: u,
                                    provider: p,
                                },
                            );
                        }
                    }
                }
            }
            day += 1;
        }
    }
    plan.sort_by_key(|(t, order, _, _)| (*t, *order));

    let schema = schema::build(Arc::clone(&service));
    let mut summary = SimulateSummary {
        researcher_id: researcher,
        ..Default::default()
    };
    let people = People {
        admin,
        users,
        providers,
        researcher,
        start,
    };
    // The admin's actions (the study) first; then each worker plays the
    // providers p with p % workers == w and their users, in time order, at
    // its own simulated clock. With one worker this is the whole plan in
    // one order, drawing from the one generator.
    let workers = request.workers.max(1);
    let (first, rest): (Vec<_>, Vec<_>) = plan.into_iter().partition(|e| e.2 == Who::Admin);
    let state = State::default();
    let (state, rng) = play(&schema, &people, request, first, state, rng, &mut summary).await?;
    let study = state.study;
    if workers == 1 {
        play(&schema, &people, request, rest, state, rng, &mut summary).await?;
    } else {
        let m = people.providers.len().max(1);
        let mut parts: Vec<Vec<Planned>> = (0..workers).map(|_| Vec::new()).collect();
        for planned in rest {
            let w = match planned.2 {
                Who::Provider(p) => p % workers,
                Who::User(u) => (u % m) % workers,
                Who::Admin => 0,
            };
            parts[w].push(planned);
        }
        let people = Arc::new(people);
        let tasks: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(w, part)| {
                let (schema, people, request) =
                    (schema.clone(), Arc::clone(&people), request.clone());
                let worker_rng = Rng(request.seed ^ (0x9E37_79B9 * (w as u64 + 1)));
                tokio::spawn(async move {
                    let mut summary = SimulateSummary::default();
                    let state = State {
                        study,
                        ..State::default()
                    };
                    play(
                        &schema,
                        &people,
                        &request,
                        part,
                        state,
                        worker_rng,
                        &mut summary,
                    )
                    .await
                    .map(|_| summary)
                })
            })
            .collect();
        for task in tasks {
            let part = task.await??;
            summary.operations += part.operations;
            for (key, n) in part.refused {
                *summary.refused.entry(key).or_default() += n;
            }
        }
    }
    service.usage.flush().await;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// One planned operation: when, its order among those at the same time, who, what.
type Planned = (DateTime<Utc>, u64, Who, Action);

/// Everyone in the simulation.
struct People {
    admin: Person,
    users: Vec<Person>,
    providers: Vec<Person>,
    researcher: Uuid,
    start: NaiveDate,
}

/// Plays `plan` (sorted by time) through the schema, one operation after the
/// other, each at its own simulated time.
async fn play(
    schema: &schema::PortalSchema,
    people: &People,
    request: &SimulateRequest,
    mut plan: Vec<Planned>,
    mut state: State,
    mut rng: Rng,
    summary: &mut SimulateSummary,
) -> Result<(State, Rng)> {
    plan.sort_by_key(|(t, order, _, _)| (*t, *order));
    let total = plan.len();
    let mut shown = Instant::now();
    for (i, (t, _, who, action)) in plan.into_iter().enumerate() {
        let person = match who {
            Who::Admin => &people.admin,
            Who::User(u) => &people.users[u],
            Who::Provider(p) => &people.providers[p],
        };
        let Some((query, variables)) = state.operation(
            &action,
            who,
            &people.users,
            &people.providers,
            &mut rng,
            t,
            people.researcher,
            people.start,
            request,
        ) else {
            continue;
        };
        let caller = Caller::acting(person.id, person.role, &request.organisation, i64::MAX);
        let receipts = Arc::new(Receipts::default());
        let response = schema
            .execute(
                Request::new(query)
                    .variables(Variables::from_json(variables))
                    .data(RequestContext {
                        caller: Ok(caller),
                        request_id: Uuid::new_v4().to_string(),
                        client_address: None,
                        receipts: Arc::clone(&receipts),
                        over_websocket: false,
                        clock: api::clock::Clock::At(t),
                        read_after: None,
                    }),
            )
            .await;
        receipts.written().await.map_err(Error::AccessTrail)?;
        summary.operations += 1;
        if let Some(error) = response.errors.first() {
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|c| c.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "UNKNOWN".into());
            if code == "INTERNAL" {
                return Err(Error::Refused {
                    operation: format!("{action:?} by {who:?}"),
                    detail: error.message.clone(),
                });
            }
            let kind = format!("{action:?}");
            let kind = kind.split([' ', '(']).next().unwrap_or_default();
            let key = format!("{kind} {code}");
            if !summary.refused.contains_key(&key) {
                tracing::debug!(%key, message = %error.message, "simulated operation refused");
            }
            *summary.refused.entry(key).or_default() += 1;
            continue;
        }
        let data = response.data.into_json()?;
        state.learn(&action, who, &data, summary);
        if shown.elapsed().as_secs() >= 2 {
            shown = Instant::now();
            eprintln!(
                "simulated {} of {} operations, up to {}",
                i + 1,
                total,
                t.format("%Y-%m-%d")
            );
        }
    }
    Ok((state, rng))
}

/// What the simulation learned from the answers: ids it needs later.
#[derive(Default)]
struct State {
    study: Option<Uuid>,
    goals: HashMap<usize, Vec<Uuid>>,
    activities: HashMap<usize, Vec<Uuid>>,
    threads: HashMap<(usize, usize), Uuid>,
    last_message: HashMap<Uuid, Uuid>,
    relationships: HashMap<(usize, usize), Uuid>,
    /// (user, provider) pairs whose relationship is active.
    related: std::collections::HashSet<(usize, usize)>,
    /// Forum topics opened so far (global ids).
    topics: Vec<String>,
}

const CONTROL_PANEL: &str = "{ controlPanel { version } }";

impl State {
    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        action: &Action,
        who: Who,
        users: &[Person],
        providers: &[Person],
        rng: &mut Rng,
        now: DateTime<Utc>,
        researcher: Uuid,
        start: NaiveDate,
        request: &SimulateRequest,
    ) -> Option<(String, Value)> {
        let user_index = match who {
            Who::User(u) => Some(u),
            _ => None,
        };
        let provider_index = match who {
            Who::Provider(p) => Some(p),
            _ => None,
        };
        let relationship = |user: usize, provider: usize| {
            domain::care::relationship_id(users[user].id, providers[provider].id)
        };
        Some(match action {
            Action::RegisterStudy => (
                "mutation($t: String!, $p: String!, $s: NaiveDate!, $e: NaiveDate!, $r: [ID!]!) { registerStudy(title: $t, protocolId: $p, startsOn: $s, endsOn: $e, researcherIds: $r) { study { uuid } } }".into(),
                json!({
                    "t": format!("Simulated engagement study (seed {})", request.seed),
                    "p": format!("SIM-{}", request.seed),
                    "s": start.to_string(),
                    "e": (start + Duration::days(i64::from(request.months) * 31 + 31)).to_string(),
                    "r": [researcher],
                }),
            ),
            Action::Profile => {
                let Who::Provider(p) = who else { return None };
                let professions = ["NURSE", "PSYCHOLOGIST", "PSYCHIATRIST", "SOCIAL_WORKER", "PEER_WORKER"];
                (
                    format!("mutation {{ saveProviderProfile(displayName: \"Provider {}\", profession: {}) {{ version }} }}", p + 1, professions[p % professions.len()]),
                    json!({}),
                )
            }
            Action::OpenPortal => ("mutation { openPortal { version } }".into(), json!({})),
            Action::Enrol => (
                "mutation($s: ID!) { enrolInStudy(studyId: $s) { version } }".into(),
                json!({ "s": self.study? }),
            ),
            Action::Withdraw => (
                "mutation($s: ID!) { withdrawFromStudy(studyId: $s) { version } }".into(),
                json!({ "s": self.study? }),
            ),
            Action::Invite { user } => (
                "mutation($u: ID!) { inviteToCare(personId: $u) { relationship { uuid } } }".into(),
                json!({ "u": users[*user].id }),
            ),
            Action::Accept { provider } => (
                "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }".into(),
                json!({ "r": relationship(user_index?, *provider) }),
            ),
            Action::Grant { provider, section } => (
                format!("mutation($r: ID!) {{ grantAccess(relationshipId: $r, section: {section}) {{ version }} }}"),
                json!({ "r": relationship(user_index?, *provider) }),
            ),
            Action::Propose { user, .. } => {
                let Who::Provider(p) = who else { return None };
                (
                    "mutation($r: ID!, $t: AgreementTermsInput!) { proposeAgreement(relationshipId: $r, terms: $t) { version } }".into(),
                    json!({
                        "r": relationship(*user, p),
                        "t": {
                            "initiative": "BOTH",
                            "providerLooksInDays": 7,
                            "userRepliesWithin": { "value": 3, "unit": "WORKING_DAYS" },
                            "providerRepliesWithin": { "value": 2, "unit": "WORKING_DAYS" },
                            "openedTogether": true,
                            "notes": "",
                        }
                    }),
                )
            }
            Action::AcceptAgreement { provider } => (
                "mutation($r: ID!) { acceptAgreement(relationshipId: $r) { version } }".into(),
                json!({ "r": relationship(user_index?, *provider) }),
            ),
            Action::View(field) => (
                match *field {
                    "controlPanel" => CONTROL_PANEL.to_string(),
                    "medications" => "{ medications { id } }".into(),
                    "conversations" => "{ conversations { unreadTotal } }".into(),
                    "caseload" => "{ caseload { nodes { lastLookedAt } } }".into(),
                    "network" => "{ network { id } }".into(),
                    "forum" => "{ forum { topics(first: 10) { nodes { uuid unread } } } }".into(),
                    other => format!("{{ {other} }}"),
                },
                json!({}),
            ),
            Action::ReadPortal { user } if !self.related.contains(&(*user, provider_index?)) => {
                return None
            }
            Action::Message { user, provider }
                if !self.related.contains(&(*user, *provider)) =>
            {
                return None
            }
            Action::ReadPortal { user } => (
                "query($p: ID!) { controlPanel(portalId: $p) { version } }".into(),
                json!({ "p": users[*user].id }),
            ),
            Action::RateStatus => {
                let domains = domain::portal::DEFAULT_DOMAINS;
                (
                    "mutation($d: String!, $s: Int!) { rateStatus(domain: $d, score: $s) { version } }".into(),
                    json!({ "d": domains[rng.below(domains.len())].0, "s": 1 + rng.below(10) }),
                )
            }
            Action::SetGoal => {
                let goal = rng.uuid();
                self.goals.entry(user_index?).or_default().push(goal);
                (
                    "mutation($g: UUID!) { setGoal(domain: \"mental_health\", title: \"A goal\", uuid: $g) { version } }".into(),
                    json!({ "g": goal }),
                )
            }
            Action::PlanActivity => {
                let goals = self.goals.get(&user_index?)?;
                let goal = goals[rng.below(goals.len())];
                let activity = rng.uuid();
                self.activities.entry(user_index?).or_default().push(activity);
                (
                    "mutation($g: ID!, $a: UUID!) { planActivity(goalId: $g, title: \"A step\", uuid: $a) { version } }".into(),
                    json!({ "g": goal, "a": activity }),
                )
            }
            Action::CompleteActivity => {
                let open = self.activities.get_mut(&user_index?)?;
                if open.is_empty() {
                    return None;
                }
                let activity = open.swap_remove(rng.below(open.len()));
                (
                    "mutation($a: ID!) { completeActivity(activityId: $a) { version } }".into(),
                    json!({ "a": activity }),
                )
            }
            Action::AddMedication => (
                "mutation { addMedication(name: \"Sertraline\", dose: \"50 mg\", schedule: \"mornings\") { version } }".into(),
                json!({}),
            ),
            Action::Exercise => {
                let keys = ["sleep_hygiene", "mindfulness", "strengths_and_resources"];
                let _ = now;
                (
                    "mutation($e: String!, $id: UUID!, $ref: ID!) { startExercise(exercise: $e, uuid: $id) { version } \
                     completeExercise(entryId: $ref, rating: 4) { version } }".into(),
                    {
                        let (exercise, entry) = (keys[rng.below(keys.len())], rng.uuid());
                        json!({ "e": exercise, "id": entry, "ref": entry })
                    },
                )
            }
            Action::ForumName => (
                "mutation($n: String!) { chooseForumName(name: $n) { name } }".into(),
                json!({ "n": format!("Member {}", user_index? + 1) }),
            ),
            Action::ForumPost => {
                let categories = domain::forum::DEFAULT_CATEGORIES;
                if self.topics.is_empty() || rng.chance(0.2) {
                    (
                        "mutation($c: String!) { openTopic(category: $c, title: \"How do you cope?\", body: \"Something that helped me this week.\") { post { topicId } } }".into(),
                        json!({ "c": categories[rng.below(categories.len())].0 }),
                    )
                } else {
                    // Recent topics get most replies.
                    let n = self.topics.len();
                    let topic = self.topics[n - 1 - rng.below(n.min(20))].clone();
                    (
                        "mutation($t: ID!) { replyToTopic(topicId: $t, body: \"Thank you for sharing this.\") { post { id } } }".into(),
                        json!({ "t": topic }),
                    )
                }
            }
            Action::Message { user, provider } => match self.threads.get(&(*user, *provider)) {
                Some(thread) => (
                    "mutation($c: ID!) { postMessage(conversationId: $c, body: \"How are things?\") { message { uuid } } }".into(),
                    json!({ "c": thread }),
                ),
                None => match who {
                    Who::User(_) => (
                        "mutation($p: [ID!]!) { startConversation(subject: \"Us\", body: \"Hello\", providerIds: $p) { conversation { uuid } } }".into(),
                        json!({ "p": [providers[*provider].id] }),
                    ),
                    _ => (
                        "mutation($u: ID!) { startConversation(subject: \"Us\", body: \"Hello\", userId: $u) { conversation { uuid } } }".into(),
                        json!({ "u": users[*user].id }),
                    ),
                },
            },
        })
    }

    fn learn(&mut self, action: &Action, who: Who, data: &Value, summary: &mut SimulateSummary) {
        // The uuid of the object a mutation's payload carries.
        let created = |field: &str| {
            let payload = &data[field];
            ["study", "relationship", "conversation", "message"]
                .iter()
                .find_map(|object| payload[object]["uuid"].as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
        };
        match action {
            Action::RegisterStudy => {
                self.study = created("registerStudy");
                summary.study_id = self.study.unwrap_or_default();
            }
            Action::Invite { user } => {
                if let (Who::Provider(p), Some(r)) = (who, created("inviteToCare")) {
                    self.relationships.insert((*user, p), r);
                }
            }
            Action::Accept { provider } => {
                if let Who::User(u) = who {
                    self.related.insert((u, *provider));
                }
            }
            Action::ForumPost => {
                if let Some(topic) = data["openTopic"]["post"]["topicId"].as_str() {
                    self.topics.push(topic.to_string());
                }
            }
            Action::Message { user, provider } => {
                if let Some(id) = created("startConversation") {
                    self.threads.insert((*user, *provider), id);
                }
                if let (Some(thread), Some(message)) = (
                    self.threads.get(&(*user, *provider)),
                    created("postMessage"),
                ) {
                    self.last_message.insert(*thread, message);
                }
            }
            _ => {}
        }
    }
}
