//! Research measures (issue 6): one fold over the global stream that keeps,
//! for everyone who ever enrolled in a study, what the measures need, and
//! turns it into tables for one study as of a time.
//!
//! Pure: the caller feeds events in global order ([`Fold::apply`]) and asks
//! for [`Fold::tables`]. Nothing here reads a clock or does IO, so the same
//! events give the same tables, byte for byte once written. The tables carry
//! participant ids; pseudonyms are the exporter's job.
//!
//! Definitions (docs/research.md has the reasons):
//! - weeks start on Monday, UTC, and are named by that date;
//! - a visit is a run of a participant's requests with gaps under the visit
//!   gap (30 minutes by default); it counts in the week it starts and for
//!   every module it touched;
//! - a participant counts for a study only while enrolled in it: events and
//!   requests outside their enrolment spans are left out;
//! - a relationship (service user, provider) counts only while both are
//!   enrolled; its messages are those either of the two wrote in threads
//!   they share; a reply is the first message of one side after a run of
//!   the other's, its latency measured from the run's first message;
//!   percentiles are nearest-rank;
//! - a reply is due by the agreement in force when the run began (if any);
//!   it counts as due in the week it fell due (once that has passed, or
//!   once answered) and as on time if answered by then.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use domain::agreement::{ReplyTime, Terms};
use domain::alignment::reply_due;
use domain::care::{relationship_id, Side};
use domain::study::{Module, ParticipantRole, StudyInfo};
use serde::Deserialize;
use uuid::Uuid;

/// The Monday starting the week `at` falls in.
pub fn week_of(at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// A cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Float(f64),
    Text(String),
    Null,
}

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 text.
    Text,
}

impl ColumnType {
    /// The name written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Int => "int64",
            ColumnType::Float => "float64",
            ColumnType::Text => "string",
        }
    }
}

/// One column: its name, type, whether it may be null, and what it means.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    pub description: &'static str,
}

const fn col(name: &'static str, ty: ColumnType, description: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        description,
    }
}

const fn opt(name: &'static str, ty: ColumnType, description: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        description,
    }
}

/// A table of measures: rows in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// How a participant is named in a table: replaced by a pseudonym on export.
/// Cells of participant columns hold the id as text until then.
pub const PARTICIPANT_COLUMNS: &[&str] = &["participant", "user", "provider"];

#[derive(Debug, Clone, Default)]
struct Counters {
    status_ratings: i64,
    goal_changes: i64,
    activity_changes: i64,
    exercise_completions: i64,
    messages_sent: i64,
    messages_received: i64,
    threads_initiated: i64,
}

#[derive(Debug, Clone)]
struct EnrolState {
    role: ParticipantRole,
    spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

impl EnrolState {
    fn open_at(&self, at: DateTime<Utc>) -> bool {
        self.spans
            .iter()
            .any(|(from, until)| *from <= at && until.is_none_or(|u| at < u))
    }
}

#[derive(Debug, Clone)]
struct Thread {
    user: Uuid,
    providers: Vec<Uuid>,
}

/// One message relevant to a (user, provider) pair.
#[derive(Debug, Clone, Copy)]
struct PairMessage {
    thread: Uuid,
    side: Side,
    at: DateTime<Utc>,
    starts_exchange: bool,
}

/// What the stream tells about one event, decoded from its payload's body
/// (every field the measures need, nothing else).
#[derive(Debug, Default, Deserialize)]
struct Body<'a> {
    at: Option<DateTime<Utc>>,
    // enrolments and usage
    study_id: Option<Uuid>,
    participant_id: Option<Uuid>,
    role: Option<ParticipantRole>,
    module: Option<Module>,
    write: Option<bool>,
    // conversations
    user_id: Option<Uuid>,
    providers: Option<Vec<Uuid>>,
    started_by: Option<Uuid>,
    /// A message's author (an id) or an agreement's side (a name).
    #[serde(borrow)]
    by: Option<std::borrow::Cow<'a, str>>,
    starts_exchange: Option<bool>,
    provider: Option<Uuid>,
    // the access trail
    reader_id: Option<Uuid>,
    subject_id: Option<Uuid>,
    #[serde(borrow)]
    basis: Option<std::borrow::Cow<'a, str>>,
    // agreements
    version: Option<i32>,
    terms: Option<Terms>,
}

/// The body of an externally tagged event (`{"Variant": {...}}`), read
/// without building a map: the event type column already names the variant.
struct Tagged<'a>(Body<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Tagged<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Tagged<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with one variant")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let Some(serde::de::IgnoredAny) = map.next_key()? else {
                    return Err(serde::de::Error::custom("no variant"));
                };
                let body: Body<'a> = map.next_value()?;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Tagged(body))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// The study-independent state of the measures.
#[derive(Debug, Default)]
pub struct Fold {
    enrolments: HashMap<(Uuid, Uuid), EnrolState>,
    /// Studies each participant has an open span in, now.
    open: HashMap<Uuid, Vec<Uuid>>,
    counters: HashMap<(Uuid, Uuid, NaiveDate), Counters>,
    usage: HashMap<Uuid, Vec<(DateTime<Utc>, Module, bool)>>,
    threads: HashMap<Uuid, Thread>,
    pairs: HashMap<(Uuid, Uuid), Vec<PairMessage>>,
    /// (user, provider): when the provider read the user's portal (allowed reads).
    looks: HashMap<(Uuid, Uuid), Vec<DateTime<Utc>>>,
    /// Per relationship: proposed terms by version, and (from, version) accepted.
    proposed: HashMap<(Uuid, i32), Terms>,
    accepted: HashMap<Uuid, Vec<(DateTime<Utc>, i32)>>,
    /// Events after this time (by their own time) are left out.
    until: Option<DateTime<Utc>>,
    /// Events folded in and the last global position among them.
    pub events: u64,
    pub last_position: i64,
}

/// Why an event could not be folded.
#[derive(Debug, thiserror::Error)]
#[error("event at position {position} ({aggregate_type}/{event_type}): {reason}")]
pub struct FoldError {
    pub position: i64,
    pub aggregate_type: String,
    pub event_type: String,
    pub reason: String,
}

impl Fold {
    /// A fold that leaves out events that happened after `as_of`.
    pub fn until(as_of: DateTime<Utc>) -> Self {
        Fold {
            until: Some(as_of),
            ..Fold::default()
        }
    }

    /// Folds one event (in global order).
    pub fn apply(
        &mut self,
        position: i64,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &str,
    ) -> Result<(), FoldError> {
        let wanted = match aggregate_type {
            "Usage" | "Enrolment" => true,
            // A provider's look at a portal, for look-in adherence.
            "AccessTrail" => event_type == "AccessRecorded",
            "Portal" => matches!(
                event_type,
                "StatusRated"
                    | "GoalSet"
                    | "GoalRevised"
                    | "GoalAchieved"
                    | "GoalAbandoned"
                    | "ActivityPlanned"
                    | "ActivityCompleted"
                    | "ActivityDropped"
                    | "ExerciseCompleted"
            ),
            "Conversation" => matches!(
                event_type,
                "ConversationStarted" | "MessagePosted" | "ProviderRemoved"
            ),
            "Agreement" => matches!(event_type, "AgreementProposed" | "AgreementAccepted"),
            _ => false,
        };
        if !wanted {
            return Ok(());
        }
        let fail = |reason: String| FoldError {
            position,
            aggregate_type: aggregate_type.to_string(),
            event_type: event_type.to_string(),
            reason,
        };
        let body: Body = if aggregate_type == "Usage" || aggregate_type == "AccessTrail" {
            serde_json::from_str(payload).map_err(|e| fail(e.to_string()))?
        } else {
            serde_json::from_str::<Tagged>(payload)
                .map_err(|e| fail(e.to_string()))?
                .0
        };
        let at = body.at.ok_or_else(|| fail("no time".into()))?;
        if self.until.is_some_and(|until| at > until) {
            return Ok(());
        }
        self.events += 1;
        self.last_position = self.last_position.max(position);
        let id = || Uuid::parse_str(aggregate_id).map_err(|e| fail(e.to_string()));
        match aggregate_type {
            "Enrolment" => {
                let (Some(study), Some(participant)) = (body.study_id, body.participant_id) else {
                    return Err(fail("no study or participant".into()));
                };
                let open = self.open.entry(participant).or_default();
                if event_type == "Enrolled" {
                    let role = body.role.ok_or_else(|| fail("no role".into()))?;
                    let state = self
                        .enrolments
                        .entry((study, participant))
                        .or_insert(EnrolState {
                            role,
                            spans: Vec::new(),
                        });
                    if state.spans.last().is_none_or(|s| s.1.is_some()) {
                        state.spans.push((at, None));
                    }
                    if !open.contains(&study) {
                        open.push(study);
                    }
                } else {
                    if let Some(state) = self.enrolments.get_mut(&(study, participant)) {
                        if let Some(last) = state.spans.last_mut() {
                            last.1.get_or_insert(at);
                        }
                    }
                    open.retain(|s| *s != study);
                }
            }
            "Usage" => {
                let (Some(participant), Some(module)) = (body.participant_id, body.module) else {
                    return Err(fail("no participant or module".into()));
                };
                self.usage.entry(participant).or_default().push((
                    at,
                    module,
                    body.write.unwrap_or(false),
                ));
            }
            "Portal" => {
                let owner = id()?;
                self.count(owner, at, |c| match event_type {
                    "StatusRated" => c.status_ratings += 1,
                    "ExerciseCompleted" => c.exercise_completions += 1,
                    t if t.starts_with("Goal") => c.goal_changes += 1,
                    _ => c.activity_changes += 1,
                });
            }
            "Conversation" => {
                let thread_id = id()?;
                match event_type {
                    "ConversationStarted" => {
                        let (Some(user), Some(providers), Some(started_by)) =
                            (body.user_id, body.providers, body.started_by)
                        else {
                            return Err(fail("incomplete start".into()));
                        };
                        self.count(started_by, at, |c| c.threads_initiated += 1);
                        self.threads.insert(thread_id, Thread { user, providers });
                    }
                    "ProviderRemoved" => {
                        if let (Some(thread), Some(provider)) =
                            (self.threads.get_mut(&thread_id), body.provider)
                        {
                            thread.providers.retain(|p| *p != provider);
                        }
                    }
                    _ => {
                        let author = body
                            .by
                            .as_deref()
                            .and_then(|s| Uuid::parse_str(s).ok())
                            .ok_or_else(|| fail("no author".into()))?;
                        let Some(thread) = self.threads.get(&thread_id).cloned() else {
                            return Ok(());
                        };
                        self.count(author, at, |c| c.messages_sent += 1);
                        let everyone =
                            std::iter::once(thread.user).chain(thread.providers.iter().copied());
                        for other in everyone.filter(|p| *p != author) {
                            self.count(other, at, |c| c.messages_received += 1);
                        }
                        let side = if author == thread.user {
                            Side::ServiceUser
                        } else {
                            Side::Provider
                        };
                        let message = PairMessage {
                            thread: thread_id,
                            side,
                            at,
                            starts_exchange: body.starts_exchange.unwrap_or(false),
                        };
                        let pairs: Vec<Uuid> = match side {
                            Side::ServiceUser => thread.providers.clone(),
                            Side::Provider => vec![author],
                        };
                        for provider in pairs {
                            if self.enrolled_anywhere(thread.user, at)
                                && self.enrolled_anywhere(provider, at)
                            {
                                self.pairs
                                    .entry((thread.user, provider))
                                    .or_default()
                                    .push(message);
                            }
                        }
                    }
                }
            }
            "AccessTrail" => {
                let allowed = matches!(body.basis.as_deref(), Some("grant" | "break_glass"));
                if let (true, Some(reader), Some(subject)) =
                    (allowed, body.reader_id, body.subject_id)
                {
                    if self.enrolled_anywhere(subject, at) && self.enrolled_anywhere(reader, at) {
                        self.looks.entry((subject, reader)).or_default().push(at);
                    }
                }
            }
            "Agreement" => {
                let relationship = id()?;
                let version = body.version.ok_or_else(|| fail("no version".into()))?;
                if event_type == "AgreementProposed" {
                    let terms = body.terms.ok_or_else(|| fail("no terms".into()))?;
                    self.proposed.insert((relationship, version), terms);
                } else {
                    self.accepted
                        .entry(relationship)
                        .or_default()
                        .push((at, version));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn enrolled_anywhere(&self, participant: Uuid, at: DateTime<Utc>) -> bool {
        self.open.get(&participant).is_some_and(|studies| {
            studies.iter().any(|s| {
                self.enrolments
                    .get(&(*s, participant))
                    .is_some_and(|e| e.open_at(at))
            })
        })
    }

    /// Adds to the counters of `participant` in every study they are in at `at`.
    fn count(&mut self, participant: Uuid, at: DateTime<Utc>, add: impl Fn(&mut Counters)) {
        let Some(studies) = self.open.get(&participant) else {
            return;
        };
        let week = week_of(at);
        for study in studies {
            if self
                .enrolments
                .get(&(*study, participant))
                .is_some_and(|e| e.open_at(at))
            {
                add(self
                    .counters
                    .entry((*study, participant, week))
                    .or_default());
            }
        }
    }

    /// The participants of `study` (at the time folded to) and their roles.
    pub fn participants(&self, study: Uuid) -> Vec<(Uuid, ParticipantRole)> {
        let mut out: Vec<(Uuid, ParticipantRole)> = self
            .enrolments
            .iter()
            .filter(|((s, _), _)| *s == study)
            .map(|((_, p), e)| (*p, e.role))
            .collect();
        out.sort();
        out
    }

    fn terms_at(&self, user: Uuid, provider: Uuid, at: DateTime<Utc>) -> Option<(i32, &Terms)> {
        let accepted = self.accepted.get(&relationship_id(user, provider))?;
        let version = accepted
            .iter()
            .filter(|(from, _)| *from <= at)
            .max_by_key(|(from, v)| (*from, *v))?
            .1;
        let relationship = relationship_id(user, provider);
        self.proposed
            .get(&(relationship, version))
            .map(|t| (version, t))
    }

    /// Every table for `info`'s study as of `as_of`, leaving out `excluded`
    /// participants (those who have withdrawn since), within the study's
    /// period. `gap` is the visit gap.
    pub fn tables(
        &self,
        info: &StudyInfo,
        as_of: DateTime<Utc>,
        gap: Duration,
        excluded: &HashSet<Uuid>,
    ) -> Vec<Table> {
        let study = info.study_id;
        // The study's period, from the first day's start to the last day's end (UTC).
        let start = info.starts_on.and_time(chrono::NaiveTime::MIN).and_utc();
        let end = (info.ends_on + Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let people: Vec<Participant> = self
            .participants(study)
            .into_iter()
            .filter(|(p, _)| !excluded.contains(p))
            .filter_map(|(id, role)| {
                let spans: Vec<Span> = self.enrolments[&(study, id)]
                    .spans
                    .iter()
                    .filter_map(|(from, until)| {
                        let from = (*from).max(start);
                        let until = until.unwrap_or(as_of).min(as_of).min(end);
                        (from <= until).then_some((from, until))
                    })
                    .collect();
                (!spans.is_empty()).then(|| Participant {
                    visits: self.visits(id, &spans, gap),
                    id,
                    role,
                    spans,
                })
            })
            .collect();
        let (relationship_weeks, pair_weeks) = self.relationships_table(as_of, &people);
        let weekly = self.weekly(study, as_of, &people, &pair_weeks);
        vec![
            participants_table(&people),
            weekly.participant_weeks,
            weekly.participant_module_weeks,
            relationship_weeks,
            weekly.study_weeks,
            weekly.module_weeks,
            retention_table(as_of, &people),
            engagement_table(&people),
        ]
    }

    /// A participant's visits, from their requests within `spans`.
    fn visits(&self, participant: Uuid, spans: &[Span], gap: Duration) -> Vec<Visit> {
        let mut requests: Vec<(DateTime<Utc>, Module, bool)> = self
            .usage
            .get(&participant)
            .map(|u| u.iter().filter(|r| within(spans, r.0)).copied().collect())
            .unwrap_or_default();
        requests.sort();
        let mut visits: Vec<Visit> = Vec::new();
        let mut last: Option<DateTime<Utc>> = None;
        for (at, module, write) in requests {
            if last.is_none_or(|l| at - l >= gap) {
                visits.push(Visit {
                    start: at,
                    modules: BTreeMap::new(),
                });
            }
            last = Some(at);
            if let Some(visit) = visits.last_mut() {
                let used = visit.modules.entry(module).or_default();
                if write {
                    used.writes += 1;
                } else {
                    used.views += 1;
                }
            }
        }
        visits
    }

    /// The week-by-week tables: per participant, per participant and
    /// module, per study week, per module week.
    fn weekly(
        &self,
        study: Uuid,
        as_of: DateTime<Utc>,
        people: &[Participant],
        pair_weeks: &BTreeMap<NaiveDate, PairWeek>,
    ) -> Weekly {
        let as_of_week = week_of(as_of);
        let mut participant_weeks = Vec::new();
        let mut module_rows = Vec::new();
        let mut study_weeks: BTreeMap<NaiveDate, [i64; 6]> = BTreeMap::new();
        let mut module_weeks: BTreeMap<(NaiveDate, Module), ModuleWeek> = BTreeMap::new();
        for person in people {
            let mut weeks: BTreeSet<NaiveDate> = BTreeSet::new();
            for (from, until) in &person.spans {
                let mut w = week_of(*from);
                while w <= week_of(*until) && w <= as_of_week {
                    weeks.insert(w);
                    w += Duration::days(7);
                }
            }
            let mut per_week: BTreeMap<NaiveDate, WeekUse> = BTreeMap::new();
            for visit in &person.visits {
                let week = per_week.entry(week_of(visit.start)).or_default();
                week.visits += 1;
                for (module, used) in &visit.modules {
                    week.requests += used.views + used.writes;
                    let m = week.modules.entry(*module).or_default();
                    m.visits += 1;
                    m.views += used.views;
                    m.writes += used.writes;
                }
            }
            for w in &weeks {
                let used = per_week.remove(w).unwrap_or_default();
                let c = self
                    .counters
                    .get(&(study, person.id, *w))
                    .cloned()
                    .unwrap_or_default();
                participant_weeks.push(vec![
                    text(person.id.to_string()),
                    day(*w),
                    Cell::Int(used.visits),
                    Cell::Int(used.requests),
                    Cell::Int(c.status_ratings),
                    Cell::Int(c.goal_changes),
                    Cell::Int(c.activity_changes),
                    Cell::Int(c.exercise_completions),
                    Cell::Int(c.messages_sent),
                    Cell::Int(c.messages_received),
                    Cell::Int(c.threads_initiated),
                ]);
                let sw = study_weeks.entry(*w).or_default();
                let user = usize::from(person.role != ParticipantRole::ServiceUser);
                sw[user] += 1;
                if used.visits > 0 {
                    sw[2 + user] += 1;
                }
                sw[4] += used.visits;
                sw[5] += used.requests;
                for (module, m) in used.modules {
                    module_rows.push(vec![
                        text(person.id.to_string()),
                        day(*w),
                        text(module.as_str().into()),
                        Cell::Int(m.visits),
                        Cell::Int(m.views),
                        Cell::Int(m.writes),
                    ]);
                    let mw = module_weeks.entry((*w, module)).or_default();
                    mw.people.insert(person.id);
                    mw.used.visits += m.visits;
                    mw.used.views += m.views;
                    mw.used.writes += m.writes;
                    mw.role_people[user].insert(person.id);
                    mw.role_used[user].visits += m.visits;
                    mw.role_used[user].writes += m.writes;
                }
            }
        }
        use ColumnType::{Float, Int, Text};
        Weekly {
            participant_weeks: Table {
                name: "participant_weeks",
                description: "One row per participant and week enrolled (zeros included).",
                columns: vec![
                    col("participant", Text, "pseudonym"),
                    col("week", Text, "Monday of the week, UTC"),
                    col("visits", Int, "visits starting this week"),
                    col("requests", Int, "requests in those visits"),
                    col("status_ratings", Int, "life-domain status ratings"),
                    col(
                        "goal_changes",
                        Int,
                        "goals set, revised, achieved or abandoned",
                    ),
                    col(
                        "activity_changes",
                        Int,
                        "activities planned, completed or dropped",
                    ),
                    col("exercise_completions", Int, "exercises completed"),
                    col("messages_sent", Int, "messages written"),
                    col(
                        "messages_received",
                        Int,
                        "messages others wrote in their threads",
                    ),
                    col("threads_initiated", Int, "conversations started"),
                ],
                rows: participant_weeks,
            },
            participant_module_weeks: Table {
                name: "participant_module_weeks",
                description: "Per participant, week and module used (rows only where used).",
                columns: vec![
                    col("participant", Text, "pseudonym"),
                    col("week", Text, "Monday of the week, UTC"),
                    col("module", Text, "part of the portal"),
                    col("visits", Int, "visits that used the module"),
                    col("views", Int, "reads of the module"),
                    col("writes", Int, "changes in the module"),
                ],
                rows: module_rows,
            },
            study_weeks: Table {
                name: "study_weeks",
                description: "Per week of the study: who was enrolled and active.",
                columns: vec![
                    col("week", Text, "Monday of the week, UTC"),
                    col(
                        "enrolled_users",
                        Int,
                        "service users enrolled during the week",
                    ),
                    col(
                        "enrolled_providers",
                        Int,
                        "providers enrolled during the week",
                    ),
                    col("active_users", Int, "service users with at least one visit"),
                    col("active_providers", Int, "providers with at least one visit"),
                    col("visits", Int, "visits"),
                    col("requests", Int, "requests"),
                    col("exchanges_by_users", Int, "exchanges service users initiated"),
                    col("exchanges_by_providers", Int, "exchanges providers initiated"),
                    opt(
                        "initiation_ratio",
                        Float,
                        "exchanges by providers per exchange by users (null without user-initiated ones)",
                    ),
                    col("user_replies", Int, "replies by service users"),
                    opt("user_reply_median_s", Int, "median seconds to a service user's reply"),
                    col("provider_replies", Int, "replies by providers"),
                    opt("provider_reply_median_s", Int, "median seconds to a provider's reply"),
                    col("user_replies_due", Int, "service users' replies that fell due"),
                    col("user_replies_on_time", Int, "of those, answered in the agreed time"),
                    col("provider_replies_due", Int, "providers' replies that fell due"),
                    col("provider_replies_on_time", Int, "of those, answered in the agreed time"),
                ],
                rows: study_weeks
                    .iter()
                    .map(|(w, n)| {
                        let mut row = vec![day(*w)];
                        row.extend(n.iter().map(|v| Cell::Int(*v)));
                        let empty = PairWeek::default();
                        let pairs = pair_weeks.get(w).unwrap_or(&empty);
                        row.push(Cell::Int(pairs.exchanges[0]));
                        row.push(Cell::Int(pairs.exchanges[1]));
                        row.push(if pairs.exchanges[0] > 0 {
                            Cell::Float(pairs.exchanges[1] as f64 / pairs.exchanges[0] as f64)
                        } else {
                            Cell::Null
                        });
                        for side in [0, 1] {
                            let l = &pairs.latencies[side];
                            row.push(Cell::Int(l.len() as i64));
                            row.push(nearest_rank(l, 0.5).map_or(Cell::Null, Cell::Int));
                        }
                        for side in [0, 1] {
                            row.push(Cell::Int(pairs.due[side]));
                            row.push(Cell::Int(pairs.on_time[side]));
                        }
                        row
                    })
                    .collect(),
            },
            module_weeks: Table {
                name: "module_weeks",
                description: "Module popularity per week.",
                columns: vec![
                    col("week", Text, "Monday of the week, UTC"),
                    col("module", Text, "part of the portal"),
                    col("participants", Int, "participants who used it"),
                    col("visits", Int, "visits that used it"),
                    col("views", Int, "reads"),
                    col("writes", Int, "changes (in the forum: postings)"),
                    col("users", Int, "service users who used it"),
                    col("providers", Int, "providers who used it"),
                    col("user_visits", Int, "visits by service users that used it"),
                    col("provider_visits", Int, "visits by providers that used it"),
                    col("user_writes", Int, "changes by service users"),
                    col("provider_writes", Int, "changes by providers"),
                ],
                rows: module_weeks
                    .into_iter()
                    .map(|((w, m), mw)| {
                        vec![
                            day(w),
                            text(m.as_str().into()),
                            Cell::Int(mw.people.len() as i64),
                            Cell::Int(mw.used.visits),
                            Cell::Int(mw.used.views),
                            Cell::Int(mw.used.writes),
                            Cell::Int(mw.role_people[0].len() as i64),
                            Cell::Int(mw.role_people[1].len() as i64),
                            Cell::Int(mw.role_used[0].visits),
                            Cell::Int(mw.role_used[1].visits),
                            Cell::Int(mw.role_used[0].writes),
                            Cell::Int(mw.role_used[1].writes),
                        ]
                    })
                    .collect(),
            },
        }
    }

    /// Per care relationship (both enrolled) and week: who initiated
    /// exchanges, reply latencies each way, replies due and on time.
    /// With it, every relationship's week merged into one per week.
    fn relationships_table(
        &self,
        as_of: DateTime<Utc>,
        people: &[Participant],
    ) -> (Table, BTreeMap<NaiveDate, PairWeek>) {
        let mut merged: BTreeMap<NaiveDate, PairWeek> = BTreeMap::new();
        // A service user's message in a thread with several providers belongs
        // to each of those relationships; for the study it counts once (a
        // reply with the longest of its latencies).
        let mut unique_exchanges: BTreeSet<(NaiveDate, usize, Uuid, DateTime<Utc>)> =
            BTreeSet::new();
        let mut unique_replies: BTreeMap<(NaiveDate, usize, Uuid, DateTime<Utc>), i64> =
            BTreeMap::new();
        let spans_of: HashMap<Uuid, &[Span]> =
            people.iter().map(|p| (p.id, p.spans.as_slice())).collect();
        let as_of_week = week_of(as_of);
        let mut rows = Vec::new();
        let mut pairs: Vec<&(Uuid, Uuid)> = self
            .pairs
            .keys()
            .chain(self.looks.keys())
            .filter(|(u, p)| spans_of.contains_key(u) && spans_of.contains_key(p))
            .collect();
        pairs.sort();
        pairs.dedup();
        let index = |side: Side| usize::from(side == Side::Provider);
        for pair in pairs {
            let (user, provider) = *pair;
            let both =
                |at: DateTime<Utc>| within(spans_of[&user], at) && within(spans_of[&provider], at);
            let mut weeks: BTreeMap<NaiveDate, PairWeek> = BTreeMap::new();
            for at in self.looks.get(pair).into_iter().flatten() {
                if *at <= as_of && both(*at) {
                    weeks
                        .entry(week_of(*at))
                        .or_default()
                        .look_days
                        .insert(at.date_naive());
                }
            }
            let messages: Vec<&PairMessage> = self
                .pairs
                .get(pair)
                .into_iter()
                .flatten()
                .filter(|m| m.at <= as_of && both(m.at))
                .collect();
            let mut by_thread: BTreeMap<Uuid, Vec<&PairMessage>> = BTreeMap::new();
            for m in &messages {
                if m.starts_exchange {
                    weeks.entry(week_of(m.at)).or_default().exchanges[index(m.side)] += 1;
                    unique_exchanges.insert((week_of(m.at), index(m.side), m.thread, m.at));
                }
                by_thread.entry(m.thread).or_default().push(m);
            }
            // A reply is the first message of a side after a run of the other's.
            for thread in by_thread.values() {
                let mut run: Option<&PairMessage> = None;
                for m in thread {
                    match run {
                        Some(first) if first.side != m.side => {
                            let w = weeks.entry(week_of(m.at)).or_default();
                            let latency = (m.at - first.at).num_seconds();
                            w.latencies[index(m.side)].push(latency);
                            let once = unique_replies
                                .entry((week_of(m.at), index(m.side), m.thread, m.at))
                                .or_insert(latency);
                            *once = (*once).max(latency);
                            if let Some((due, on_time)) =
                                self.due(user, provider, first, Some(m.at))
                            {
                                let dw = weeks.entry(week_of(due)).or_default();
                                dw.due[index(m.side)] += 1;
                                dw.on_time[index(m.side)] += i64::from(on_time);
                            }
                            run = Some(m);
                        }
                        Some(_) => {}
                        None => run = Some(m),
                    }
                }
                // The last run, unanswered: due once its time has passed.
                if let Some(first) = run {
                    if let Some((due, _)) = self.due(user, provider, first, None) {
                        if due <= as_of {
                            let answering = 1 - index(first.side);
                            weeks.entry(week_of(due)).or_default().due[answering] += 1;
                        }
                    }
                }
            }
            for (w, mut week) in weeks {
                if w > as_of_week {
                    continue;
                }
                let all = merged.entry(w).or_default();
                for side in [0, 1] {
                    all.due[side] += week.due[side];
                    all.on_time[side] += week.on_time[side];
                }
                let week_end = (w + Duration::days(7))
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    - Duration::seconds(1);
                let terms = self.terms_at(user, provider, week_end.min(as_of));
                let version = terms.map(|(v, _)| v);
                let look_in_days = terms.map(|(_, t)| t.provider_looks_in_days);
                let mut row = vec![
                    text(user.to_string()),
                    text(provider.to_string()),
                    day(w),
                    Cell::Int(week.exchanges[0]),
                    Cell::Int(week.exchanges[1]),
                ];
                for side in [0, 1] {
                    let l = &mut week.latencies[side];
                    l.sort_unstable();
                    row.push(Cell::Int(l.len() as i64));
                    row.push(nearest_rank(l, 0.5).map_or(Cell::Null, Cell::Int));
                    row.push(nearest_rank(l, 0.9).map_or(Cell::Null, Cell::Int));
                }
                row.push(version.map_or(Cell::Null, |v| Cell::Int(i64::from(v))));
                for side in [0, 1] {
                    row.push(Cell::Int(week.due[side]));
                    row.push(Cell::Int(week.on_time[side]));
                }
                row.push(Cell::Int(week.look_days.len() as i64));
                row.push(look_in_days.map_or(Cell::Null, |d| Cell::Int(i64::from(d))));
                rows.push(row);
            }
        }
        use ColumnType::{Int, Text};
        let table = Table {
            name: "relationship_weeks",
            description:
                "Per care relationship (both enrolled) and week with messages or replies due.",
            columns: vec![
                col("user", Text, "service user's pseudonym"),
                col("provider", Text, "provider's pseudonym"),
                col("week", Text, "Monday of the week, UTC"),
                col(
                    "exchanges_by_user",
                    Int,
                    "exchanges the service user initiated",
                ),
                col(
                    "exchanges_by_provider",
                    Int,
                    "exchanges the provider initiated",
                ),
                col("user_replies", Int, "replies by the service user"),
                opt(
                    "user_reply_median_s",
                    Int,
                    "median seconds to the service user's reply",
                ),
                opt("user_reply_p90_s", Int, "90th percentile of the same"),
                col("provider_replies", Int, "replies by the provider"),
                opt(
                    "provider_reply_median_s",
                    Int,
                    "median seconds to the provider's reply",
                ),
                opt("provider_reply_p90_s", Int, "90th percentile of the same"),
                opt(
                    "agreement_version",
                    Int,
                    "agreement in force at the week's end",
                ),
                col(
                    "user_replies_due",
                    Int,
                    "service user's replies that fell due this week",
                ),
                col(
                    "user_replies_on_time",
                    Int,
                    "of those, answered in the agreed time",
                ),
                col(
                    "provider_replies_due",
                    Int,
                    "provider's replies that fell due this week",
                ),
                col(
                    "provider_replies_on_time",
                    Int,
                    "of those, answered in the agreed time",
                ),
                col(
                    "provider_look_days",
                    Int,
                    "days of the week the provider read the user's portal (allowed reads)",
                ),
                opt(
                    "agreed_look_in_days",
                    Int,
                    "the agreement's look-in interval in days at the week's end",
                ),
            ],
            rows,
        };
        for (week, side, _, _) in unique_exchanges {
            if week <= as_of_week {
                merged.entry(week).or_default().exchanges[side] += 1;
            }
        }
        for ((week, side, _, _), latency) in unique_replies {
            if week <= as_of_week {
                merged.entry(week).or_default().latencies[side].push(latency);
            }
        }
        for week in merged.values_mut() {
            for side in [0, 1] {
                week.latencies[side].sort_unstable();
            }
        }
        (table, merged)
    }

    /// When the reply to a run that began with `first` was due, and whether
    /// it came by then; `None` without an agreement in force when it began.
    fn due(
        &self,
        user: Uuid,
        provider: Uuid,
        first: &PairMessage,
        replied: Option<DateTime<Utc>>,
    ) -> Option<(DateTime<Utc>, bool)> {
        let (_, terms) = self.terms_at(user, provider, first.at)?;
        let within: ReplyTime = match first.side {
            Side::ServiceUser => terms.provider_replies_within,
            Side::Provider => terms.user_replies_within,
        };
        let due = reply_due(first.at, within);
        Some((due, replied.is_some_and(|r| r <= due)))
    }
}

/// A time span, both ends included.
type Span = (DateTime<Utc>, DateTime<Utc>);

fn within(spans: &[Span], at: DateTime<Utc>) -> bool {
    spans
        .iter()
        .any(|(from, until)| *from <= at && at <= *until)
}

fn text(s: String) -> Cell {
    Cell::Text(s)
}

fn day(d: NaiveDate) -> Cell {
    Cell::Text(d.format("%Y-%m-%d").to_string())
}

/// One participant of a study as of a time.
struct Participant {
    id: Uuid,
    role: ParticipantRole,
    /// Enrolment spans, cut at the as-of time.
    spans: Vec<Span>,
    visits: Vec<Visit>,
}

struct Visit {
    start: DateTime<Utc>,
    modules: BTreeMap<Module, ModuleUse>,
}

#[derive(Debug, Clone, Copy, Default)]
struct ModuleUse {
    visits: i64,
    views: i64,
    writes: i64,
}

#[derive(Default)]
struct WeekUse {
    visits: i64,
    requests: i64,
    modules: BTreeMap<Module, ModuleUse>,
}

#[derive(Default)]
struct ModuleWeek {
    people: BTreeSet<Uuid>,
    used: ModuleUse,
    /// The same by role: index 0 service users, 1 providers.
    role_people: [BTreeSet<Uuid>; 2],
    role_used: [ModuleUse; 2],
}

/// A relationship's week; index 0 is the service user, 1 the provider.
#[derive(Default)]
struct PairWeek {
    exchanges: [i64; 2],
    latencies: [Vec<i64>; 2],
    due: [i64; 2],
    on_time: [i64; 2],
    /// Days the provider looked at the user's portal.
    look_days: BTreeSet<NaiveDate>,
}

struct Weekly {
    participant_weeks: Table,
    participant_module_weeks: Table,
    study_weeks: Table,
    module_weeks: Table,
}

fn participants_table(people: &[Participant]) -> Table {
    use ColumnType::{Int, Text};
    Table {
        name: "participants",
        description: "One row per participant enrolled by the as-of time.",
        columns: vec![
            col("participant", Text, "pseudonym"),
            col("role", Text, "service_user or provider"),
            col("enrolled_week", Text, "week (Monday) of first enrolment"),
            col(
                "enrolled_days",
                Int,
                "whole days enrolled up to the as-of time",
            ),
            col("visits", Int, "visits while enrolled"),
        ],
        rows: people
            .iter()
            .map(|p| {
                let seconds: i64 = p.spans.iter().map(|(f, u)| (*u - *f).num_seconds()).sum();
                vec![
                    text(p.id.to_string()),
                    text(p.role.as_str().into()),
                    day(week_of(p.spans[0].0)),
                    Cell::Int(seconds / 86_400),
                    Cell::Int(p.visits.len() as i64),
                ]
            })
            .collect(),
    }
}

/// Service users active in month n: days [30(n-1), 30n) after their first
/// enrolment; a user counts for month n once it has ended by `as_of`.
fn retention_table(as_of: DateTime<Utc>, people: &[Participant]) -> Table {
    let mut months: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for p in people
        .iter()
        .filter(|p| p.role == ParticipantRole::ServiceUser)
    {
        let start = p.spans[0].0;
        let mut n = 1i64;
        while start + Duration::days(30 * n) <= as_of {
            let (from, until) = (
                start + Duration::days(30 * (n - 1)),
                start + Duration::days(30 * n),
            );
            let month = months.entry(n).or_default();
            month.0 += 1;
            if p.visits.iter().any(|v| from <= v.start && v.start < until) {
                month.1 += 1;
            }
            n += 1;
        }
    }
    use ColumnType::{Float, Int};
    Table {
        name: "retention",
        description: "Service users active in month n (30-day months from their enrolment).",
        columns: vec![
            col("month", Int, "month since enrolment, from 1"),
            col(
                "eligible",
                Int,
                "users whose first enrolment began at least n months before the as-of time",
            ),
            col("active", Int, "of those, with a visit in month n"),
            col("share", Float, "active / eligible"),
        ],
        rows: months
            .into_iter()
            .map(|(n, (eligible, active))| {
                vec![
                    Cell::Int(n),
                    Cell::Int(eligible),
                    Cell::Int(active),
                    Cell::Float(active as f64 / eligible as f64),
                ]
            })
            .collect(),
    }
}

/// How often each provider used the portal while enrolled: the share of
/// enrolled days with a visit, in bands from never to daily.
fn engagement_table(people: &[Participant]) -> Table {
    let rows = people
        .iter()
        .filter(|p| p.role == ParticipantRole::Provider)
        .map(|p| {
            let enrolled_days = (p
                .spans
                .iter()
                .map(|(f, u)| (*u - *f).num_seconds())
                .sum::<i64>()
                / 86_400)
                .max(1);
            let active_days = p
                .visits
                .iter()
                .map(|v| v.start.date_naive())
                .collect::<BTreeSet<_>>()
                .len() as i64;
            vec![
                text(p.id.to_string()),
                Cell::Int(enrolled_days),
                Cell::Int(active_days),
                text(engagement_band(active_days, enrolled_days).into()),
            ]
        })
        .collect();
    use ColumnType::{Int, Text};
    Table {
        name: "provider_engagement",
        description: "How often each provider used the portal while enrolled.",
        columns: vec![
            col("provider", Text, "pseudonym"),
            col("enrolled_days", Int, "whole days enrolled (at least 1)"),
            col("active_days", Int, "days with a visit"),
            col(
                "category",
                Text,
                "never, less_than_monthly, monthly (1 day in 30), weekly (1 in 7) or daily (5 in 7)",
            ),
        ],
        rows,
    }
}

/// The engagement band of `active` days out of `enrolled`.
pub fn engagement_band(active: i64, enrolled: i64) -> &'static str {
    let rate = active as f64 / enrolled.max(1) as f64;
    if active == 0 {
        "never"
    } else if rate >= 5.0 / 7.0 {
        "daily"
    } else if rate >= 1.0 / 7.0 {
        "weekly"
    } else if rate >= 1.0 / 30.0 {
        "monthly"
    } else {
        "less_than_monthly"
    }
}

impl Table {
    /// The place of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    /// The integer in column `name` of `row`, if it holds one.
    pub fn int(&self, row: &[Cell], name: &str) -> Option<i64> {
        match self.column(name).map(|i| &row[i]) {
            Some(Cell::Int(v)) => Some(*v),
            _ => None,
        }
    }
    /// The float in column `name` of `row`, if it holds one.
    pub fn float(&self, row: &[Cell], name: &str) -> Option<f64> {
        match self.column(name).map(|i| &row[i]) {
            Some(Cell::Float(v)) => Some(*v),
            _ => None,
        }
    }
    /// The text in column `name` of `row`, if it holds some.
    pub fn text<'a>(&self, row: &'a [Cell], name: &str) -> Option<&'a str> {
        match self.column(name).map(|i| &row[i]) {
            Some(Cell::Text(v)) => Some(v.as_str()),
            _ => None,
        }
    }
}

/// The nearest-rank percentile of sorted samples.
pub fn nearest_rank(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
#[path = "research_tests.rs"]
mod tests;
