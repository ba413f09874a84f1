//! The control panel: per portal and life domain, the latest status and the
//! goals with their activities and progress; per toolbox section, counts and
//! the time of the latest change.
//!
//! A batch is folded in memory: the rows it touches are loaded once, changed,
//! and written back with one multi-row upsert per table. That keeps a rebuild
//! at a handful of statements per thousand events.

use std::collections::{BTreeMap, BTreeSet};

use domain::portal::{PortalEvent, Section, DEFAULT_DOMAINS};
use sqlx::{Any, Row, Transaction};

use crate::db::{fetch_in, ts, upsert, DbError, Val};
use crate::engine::Projection;
use crate::stream::StoredEvent;

/// The control-panel projection.
pub struct ControlPanel;

/// Its name in the CLI and in `projection_slots`.
pub const NAME: &str = "control_panel";

const PORTAL_COLS: &[&str] = &[
    "portal_id",
    "owner",
    "organisation",
    "opened_at",
    "updated_at",
    "version",
];
const DOMAIN_COLS: &[&str] = &[
    "portal_id",
    "domain_key",
    "name",
    "custom",
    "ordinal",
    "latest_score",
    "latest_note",
    "latest_rated_at",
    "ratings",
];
const GOAL_COLS: &[&str] = &[
    "portal_id",
    "goal_id",
    "domain_key",
    "title",
    "description",
    "state",
    "set_at",
    "updated_at",
    "closed_at",
    "planned",
    "done",
    "dropped",
];
const ACTIVITY_COLS: &[&str] = &[
    "portal_id",
    "activity_id",
    "goal_id",
    "title",
    "state",
    "planned_at",
    "updated_at",
];

const SECTION_COLS: &[&str] = &[
    "portal_id",
    "section",
    "items",
    "current",
    "changes",
    "updated_at",
];

/// Counts of one section of one portal. `items`: goals set, medications and
/// people added, crisis-plan revisions, exercises started. `current`: goals
/// active, medications not stopped, people not removed, 1 once a crisis plan
/// exists, exercises completed. `changes`: events in the section.
#[derive(Debug, Clone, Default)]
struct SectionRow {
    items: i64,
    current: i64,
    changes: i64,
    updated_at: String,
}

/// How an event (by its type) moves the counts of its section: (items,
/// current); see [`section_current`] for the one exception.
pub fn section_delta(event_type: &str) -> (i64, i64) {
    match event_type {
        "GoalSet" | "MedicationAdded" | "PersonAdded" => (1, 1),
        "GoalAchieved" | "GoalAbandoned" | "MedicationStopped" | "PersonRemoved" => (0, -1),
        "CrisisPlanRevised" | "ExerciseStarted" => (1, 0),
        "ExerciseCompleted" => (0, 1),
        _ => (0, 0),
    }
}

/// A section's `current` count from its items and the sum of the
/// [`section_delta`]s: the crisis plan has one current plan once it has any
/// revision; every other section keeps the sum.
pub fn section_current(section: Section, items: i64, summed: i64) -> i64 {
    match section {
        Section::CrisisPlan => items.min(1),
        _ => summed,
    }
}

#[derive(Debug, Clone)]
struct PortalRow {
    owner: String,
    organisation: String,
    opened_at: String,
    updated_at: String,
    version: i64,
}

#[derive(Debug, Clone)]
struct DomainRow {
    name: String,
    custom: i64,
    ordinal: i64,
    latest_score: Option<i64>,
    latest_note: Option<String>,
    latest_rated_at: Option<String>,
    ratings: i64,
}

#[derive(Debug, Clone)]
struct GoalRow {
    domain_key: String,
    title: String,
    description: String,
    state: String,
    set_at: String,
    updated_at: String,
    closed_at: Option<String>,
    planned: i64,
    done: i64,
    dropped: i64,
}

#[derive(Debug, Clone)]
struct ActivityRow {
    goal_id: String,
    title: String,
    state: String,
    planned_at: String,
    updated_at: String,
}

/// The rows a batch touches, keyed by (portal id, row id).
#[derive(Default)]
struct Batch {
    portals: BTreeMap<String, PortalRow>,
    domains: BTreeMap<(String, String), DomainRow>,
    goals: BTreeMap<(String, String), GoalRow>,
    activities: BTreeMap<(String, String), ActivityRow>,
    sections: BTreeMap<(String, String), SectionRow>,
    dirty_portals: BTreeSet<String>,
    dirty_domains: BTreeSet<(String, String)>,
    dirty_goals: BTreeSet<(String, String)>,
    dirty_activities: BTreeSet<(String, String)>,
}

impl Batch {
    fn apply(&mut self, portal_id: &str, sequence: i64, event_type: &str, event: PortalEvent) {
        let at = ts(event.at());
        if let Some(portal) = self.portals.get_mut(portal_id) {
            portal.updated_at = at.clone();
            portal.version = sequence;
            self.dirty_portals.insert(portal_id.to_string());
        }
        let p = portal_id.to_string();
        let (items, current) = section_delta(event_type);
        let section = self
            .sections
            .entry((p.clone(), event.section().as_str().to_string()))
            .or_default();
        section.items += items;
        section.current =
            section_current(event.section(), section.items, section.current + current);
        section.changes += 1;
        section.updated_at = at.clone();
        match event {
            PortalEvent::PortalOpened {
                owner,
                organisation,
                ..
            } => {
                self.portals.insert(
                    p.clone(),
                    PortalRow {
                        owner: owner.to_string(),
                        organisation,
                        opened_at: at.clone(),
                        updated_at: at,
                        version: sequence,
                    },
                );
                self.dirty_portals.insert(p.clone());
                for (ordinal, (key, name)) in DEFAULT_DOMAINS.iter().enumerate() {
                    let k = (p.clone(), (*key).to_string());
                    self.domains.insert(
                        k.clone(),
                        DomainRow {
                            name: (*name).to_string(),
                            custom: 0,
                            ordinal: ordinal as i64,
                            latest_score: None,
                            latest_note: None,
                            latest_rated_at: None,
                            ratings: 0,
                        },
                    );
                    self.dirty_domains.insert(k);
                }
            }
            PortalEvent::LifeDomainAdded { key, name, .. } => {
                let ordinal = self
                    .domains
                    .range((p.clone(), String::new())..)
                    .take_while(|((q, _), _)| *q == p)
                    .count();
                let k = (p, key);
                self.domains.insert(
                    k.clone(),
                    DomainRow {
                        name,
                        custom: 1,
                        ordinal: ordinal as i64,
                        latest_score: None,
                        latest_note: None,
                        latest_rated_at: None,
                        ratings: 0,
                    },
                );
                self.dirty_domains.insert(k);
            }
            PortalEvent::StatusRated {
                domain,
                score,
                note,
                ..
            } => {
                let k = (p, domain);
                if let Some(row) = self.domains.get_mut(&k) {
                    row.latest_score = Some(i64::from(score));
                    row.latest_note = Some(note);
                    row.latest_rated_at = Some(at);
                    row.ratings += 1;
                    self.dirty_domains.insert(k);
                }
            }
            PortalEvent::GoalSet {
                goal_id,
                domain,
                title,
                description,
                ..
            } => {
                let k = (p, goal_id.to_string());
                self.goals.insert(
                    k.clone(),
                    GoalRow {
                        domain_key: domain,
                        title,
                        description,
                        state: "active".into(),
                        set_at: at.clone(),
                        updated_at: at,
                        closed_at: None,
                        planned: 0,
                        done: 0,
                        dropped: 0,
                    },
                );
                self.dirty_goals.insert(k);
            }
            PortalEvent::GoalRevised {
                goal_id,
                title,
                description,
                ..
            } => self.change_goal(&p, &goal_id.to_string(), &at, |g| {
                g.title = title;
                g.description = description;
            }),
            PortalEvent::GoalAchieved { goal_id, .. } => {
                let closed = at.clone();
                self.change_goal(&p, &goal_id.to_string(), &at, |g| {
                    g.state = "achieved".into();
                    g.closed_at = Some(closed);
                })
            }
            PortalEvent::GoalAbandoned { goal_id, .. } => {
                let closed = at.clone();
                self.change_goal(&p, &goal_id.to_string(), &at, |g| {
                    g.state = "abandoned".into();
                    g.closed_at = Some(closed);
                })
            }
            PortalEvent::ActivityPlanned {
                goal_id,
                activity_id,
                title,
                ..
            } => {
                let goal_id = goal_id.to_string();
                let k = (p.clone(), activity_id.to_string());
                self.activities.insert(
                    k.clone(),
                    ActivityRow {
                        goal_id: goal_id.clone(),
                        title,
                        state: "planned".into(),
                        planned_at: at.clone(),
                        updated_at: at.clone(),
                    },
                );
                self.dirty_activities.insert(k);
                self.change_goal(&p, &goal_id, &at, |g| g.planned += 1);
            }
            PortalEvent::ActivityCompleted {
                goal_id,
                activity_id,
                ..
            } => self.close_activity(
                &p,
                &goal_id.to_string(),
                &activity_id.to_string(),
                &at,
                "done",
            ),
            PortalEvent::ActivityDropped {
                goal_id,
                activity_id,
                ..
            } => self.close_activity(
                &p,
                &goal_id.to_string(),
                &activity_id.to_string(),
                &at,
                "dropped",
            ),
            // The toolbox sections only move their counts (above).
            _ => {}
        }
    }

    fn change_goal(&mut self, p: &str, goal_id: &str, at: &str, change: impl FnOnce(&mut GoalRow)) {
        let k = (p.to_string(), goal_id.to_string());
        if let Some(goal) = self.goals.get_mut(&k) {
            change(goal);
            goal.updated_at = at.to_string();
            self.dirty_goals.insert(k);
        }
    }

    fn close_activity(&mut self, p: &str, goal_id: &str, activity_id: &str, at: &str, state: &str) {
        let k = (p.to_string(), activity_id.to_string());
        if let Some(activity) = self.activities.get_mut(&k) {
            activity.state = state.to_string();
            activity.updated_at = at.to_string();
            self.dirty_activities.insert(k);
        }
        self.change_goal(p, goal_id, at, |g| {
            g.planned -= 1;
            if state == "done" {
                g.done += 1;
            } else {
                g.dropped += 1;
            }
        });
    }
}

fn opt_text(row: &sqlx::any::AnyRow, col: &str) -> Result<Option<String>, sqlx::Error> {
    row.try_get::<Option<String>, _>(col)
}

#[async_trait::async_trait]
impl Projection for ControlPanel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        // 3: erasures (issue 18).
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "cp_portals",
            "cp_domains",
            "cp_goals",
            "cp_activities",
            "cp_sections",
        ]
    }

    fn create(&self, s: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS cp_portals_{s} (portal_id TEXT PRIMARY KEY, owner TEXT NOT NULL, \
                 organisation TEXT NOT NULL, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL, version BIGINT NOT NULL, \
                 erased_at TEXT)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS cp_domains_{s} (portal_id TEXT NOT NULL, domain_key TEXT NOT NULL, \
                 name TEXT NOT NULL, custom BIGINT NOT NULL, ordinal BIGINT NOT NULL, latest_score BIGINT, \
                 latest_note TEXT, latest_rated_at TEXT, ratings BIGINT NOT NULL, PRIMARY KEY (portal_id, domain_key))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS cp_goals_{s} (portal_id TEXT NOT NULL, goal_id TEXT NOT NULL, \
                 domain_key TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL, state TEXT NOT NULL, \
                 set_at TEXT NOT NULL, updated_at TEXT NOT NULL, closed_at TEXT, planned BIGINT NOT NULL, \
                 done BIGINT NOT NULL, dropped BIGINT NOT NULL, PRIMARY KEY (portal_id, goal_id))"
            ),
            format!("CREATE INDEX IF NOT EXISTS cp_goals_{s}_goal ON cp_goals_{s} (goal_id)"),
            format!(
                "CREATE TABLE IF NOT EXISTS cp_activities_{s} (portal_id TEXT NOT NULL, activity_id TEXT NOT NULL, \
                 goal_id TEXT NOT NULL, title TEXT NOT NULL, state TEXT NOT NULL, planned_at TEXT NOT NULL, \
                 updated_at TEXT NOT NULL, PRIMARY KEY (portal_id, activity_id))"
            ),
            format!("CREATE INDEX IF NOT EXISTS cp_activities_{s}_activity ON cp_activities_{s} (activity_id)"),
            format!("CREATE INDEX IF NOT EXISTS cp_activities_{s}_goal ON cp_activities_{s} (portal_id, goal_id)"),
            format!(
                "CREATE TABLE IF NOT EXISTS cp_sections_{s} (portal_id TEXT NOT NULL, section TEXT NOT NULL, \
                 items BIGINT NOT NULL, current BIGINT NOT NULL, changes BIGINT NOT NULL, \
                 updated_at TEXT NOT NULL, PRIMARY KEY (portal_id, section))"
            ),
        ]
    }

    fn consumes(&self) -> Option<&'static [&'static str]> {
        Some(&["Portal", domain::erasure::ERASURE_TYPE])
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        for segment in crate::erasure::segments(events) {
            match segment {
                crate::erasure::Segment::Events(events) => self.apply_events(tx, s, events).await?,
                crate::erasure::Segment::Erased(erased) => erase(tx, s, &erased).await?,
            }
        }
        Ok(())
    }
}

/// An erased owner's portal keeps its row, marked erased, and nothing else:
/// its domains, goals, activities and section counts go (a rebuild makes
/// them from events whose texts read as empty, then removes them here too).
async fn erase(
    tx: &mut Transaction<'_, Any>,
    s: &str,
    erased: &crate::erasure::Erased,
) -> Result<(), DbError> {
    let person = erased.person.to_string();
    let organisation = erased.organisation.as_str();
    for table in ["cp_domains", "cp_goals", "cp_activities", "cp_sections"] {
        crate::db::execute(
            tx,
            &format!(
                "DELETE FROM {table}_{s} WHERE portal_id IN \
                 (SELECT portal_id FROM cp_portals_{s} WHERE owner = $1 AND organisation = $2)"
            ),
            vec![person.as_str().into(), organisation.into()],
        )
        .await?;
    }
    crate::db::execute(
        tx,
        &format!("UPDATE cp_portals_{s} SET erased_at = $1 WHERE owner = $2 AND organisation = $3"),
        vec![
            erased.at.as_str().into(),
            person.as_str().into(),
            organisation.into(),
        ],
    )
    .await
}

impl ControlPanel {
    async fn apply_events(
        &self,
        tx: &mut Transaction<'_, Any>,
        s: &str,
        events: &[StoredEvent],
    ) -> Result<(), DbError> {
        let mut decoded = Vec::with_capacity(events.len());
        let (mut portal_ids, mut goal_ids, mut activity_ids) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for stored in events.iter().filter(|e| e.aggregate_type == "Portal") {
            let event: PortalEvent = stored.decode()?;
            portal_ids.insert(stored.aggregate_id.clone());
            if let Some(goal) = event.goal_id() {
                goal_ids.insert(goal.to_string());
            }
            match &event {
                PortalEvent::ActivityCompleted { activity_id, .. }
                | PortalEvent::ActivityDropped { activity_id, .. } => {
                    activity_ids.insert(activity_id.to_string());
                }
                _ => {}
            }
            decoded.push((
                stored.aggregate_id.as_str(),
                stored.sequence,
                stored.event_type.as_str(),
                event,
            ));
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        let portal_ids: Vec<String> = portal_ids.into_iter().collect();
        let select = format!("SELECT {} FROM cp_portals_{s}", PORTAL_COLS.join(", "));
        for row in fetch_in(tx, &select, "portal_id", &portal_ids).await? {
            batch.portals.insert(
                row.try_get("portal_id")?,
                PortalRow {
                    owner: row.try_get("owner")?,
                    organisation: row.try_get("organisation")?,
                    opened_at: row.try_get("opened_at")?,
                    updated_at: row.try_get("updated_at")?,
                    version: row.try_get("version")?,
                },
            );
        }
        let select = format!("SELECT {} FROM cp_domains_{s}", DOMAIN_COLS.join(", "));
        for row in fetch_in(tx, &select, "portal_id", &portal_ids).await? {
            batch.domains.insert(
                (row.try_get("portal_id")?, row.try_get("domain_key")?),
                DomainRow {
                    name: row.try_get("name")?,
                    custom: row.try_get("custom")?,
                    ordinal: row.try_get("ordinal")?,
                    latest_score: row.try_get("latest_score")?,
                    latest_note: opt_text(&row, "latest_note")?,
                    latest_rated_at: opt_text(&row, "latest_rated_at")?,
                    ratings: row.try_get("ratings")?,
                },
            );
        }
        let select = format!("SELECT {} FROM cp_sections_{s}", SECTION_COLS.join(", "));
        for row in fetch_in(tx, &select, "portal_id", &portal_ids).await? {
            batch.sections.insert(
                (row.try_get("portal_id")?, row.try_get("section")?),
                SectionRow {
                    items: row.try_get("items")?,
                    current: row.try_get("current")?,
                    changes: row.try_get("changes")?,
                    updated_at: row.try_get("updated_at")?,
                },
            );
        }
        let goal_ids: Vec<String> = goal_ids.into_iter().collect();
        let select = format!("SELECT {} FROM cp_goals_{s}", GOAL_COLS.join(", "));
        for row in fetch_in(tx, &select, "goal_id", &goal_ids).await? {
            batch.goals.insert(
                (row.try_get("portal_id")?, row.try_get("goal_id")?),
                GoalRow {
                    domain_key: row.try_get("domain_key")?,
                    title: row.try_get("title")?,
                    description: row.try_get("description")?,
                    state: row.try_get("state")?,
                    set_at: row.try_get("set_at")?,
                    updated_at: row.try_get("updated_at")?,
                    closed_at: opt_text(&row, "closed_at")?,
                    planned: row.try_get("planned")?,
                    done: row.try_get("done")?,
                    dropped: row.try_get("dropped")?,
                },
            );
        }
        let activity_ids: Vec<String> = activity_ids.into_iter().collect();
        let select = format!("SELECT {} FROM cp_activities_{s}", ACTIVITY_COLS.join(", "));
        for row in fetch_in(tx, &select, "activity_id", &activity_ids).await? {
            batch.activities.insert(
                (row.try_get("portal_id")?, row.try_get("activity_id")?),
                ActivityRow {
                    goal_id: row.try_get("goal_id")?,
                    title: row.try_get("title")?,
                    state: row.try_get("state")?,
                    planned_at: row.try_get("planned_at")?,
                    updated_at: row.try_get("updated_at")?,
                },
            );
        }

        let mut touched_sections = BTreeSet::new();
        for (portal_id, sequence, event_type, event) in decoded {
            touched_sections.insert((portal_id.to_string(), event.section()));
            batch.apply(portal_id, sequence, event_type, event);
        }
        let rows = touched_sections
            .iter()
            .filter_map(|(p, section)| {
                let k = (p.clone(), section.as_str().to_string());
                batch.sections.get(&k).map(|r| {
                    vec![
                        Val::from(p.as_str()),
                        section.as_str().into(),
                        r.items.into(),
                        r.current.into(),
                        r.changes.into(),
                        r.updated_at.clone().into(),
                    ]
                })
            })
            .collect();
        upsert(
            tx,
            &format!("cp_sections_{s}"),
            SECTION_COLS,
            &["portal_id", "section"],
            rows,
        )
        .await?;

        let rows = batch
            .dirty_portals
            .iter()
            .filter_map(|k| batch.portals.get(k).map(|r| (k, r)))
            .map(|(k, r)| {
                vec![
                    Val::from(k.as_str()),
                    r.owner.clone().into(),
                    r.organisation.clone().into(),
                    r.opened_at.clone().into(),
                    r.updated_at.clone().into(),
                    r.version.into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &format!("cp_portals_{s}"),
            PORTAL_COLS,
            &["portal_id"],
            rows,
        )
        .await?;
        let rows = batch
            .dirty_domains
            .iter()
            .filter_map(|k| batch.domains.get(k).map(|r| (k, r)))
            .map(|((p, key), r)| {
                vec![
                    Val::from(p.as_str()),
                    key.as_str().into(),
                    r.name.clone().into(),
                    r.custom.into(),
                    r.ordinal.into(),
                    r.latest_score.into(),
                    r.latest_note.clone().into(),
                    r.latest_rated_at.clone().into(),
                    r.ratings.into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &format!("cp_domains_{s}"),
            DOMAIN_COLS,
            &["portal_id", "domain_key"],
            rows,
        )
        .await?;
        let rows = batch
            .dirty_goals
            .iter()
            .filter_map(|k| batch.goals.get(k).map(|r| (k, r)))
            .map(|((p, id), r)| {
                vec![
                    Val::from(p.as_str()),
                    id.as_str().into(),
                    r.domain_key.clone().into(),
                    r.title.clone().into(),
                    r.description.clone().into(),
                    r.state.clone().into(),
                    r.set_at.clone().into(),
                    r.updated_at.clone().into(),
                    r.closed_at.clone().into(),
                    r.planned.into(),
                    r.done.into(),
                    r.dropped.into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &format!("cp_goals_{s}"),
            GOAL_COLS,
            &["portal_id", "goal_id"],
            rows,
        )
        .await?;
        let rows = batch
            .dirty_activities
            .iter()
            .filter_map(|k| batch.activities.get(k).map(|r| (k, r)))
            .map(|((p, id), r)| {
                vec![
                    Val::from(p.as_str()),
                    id.as_str().into(),
                    r.goal_id.clone().into(),
                    r.title.clone().into(),
                    r.state.clone().into(),
                    r.planned_at.clone().into(),
                    r.updated_at.clone().into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &format!("cp_activities_{s}"),
            ACTIVITY_COLS,
            &["portal_id", "activity_id"],
            rows,
        )
        .await?;
        Ok(())
    }
}
