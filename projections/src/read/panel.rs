//! The control panel of a portal as it is now (the control-panel tables):
//! life domains with their latest status, goals with their activities, and
//! the summary of every section (now, or as it stood at a time, from the
//! history index).

use chrono::{DateTime, Utc};
use domain::portal::{ActivityState, GoalState, Section};
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::portal::Portal;
use super::{int, malformed, opt_text, opt_time, text, time, uuid};
use crate::db::{ts, Db, DbError};
use crate::engine::Engine;
use crate::{control_panel, history};

/// A life domain with its latest status rating.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainRow {
    pub key: String,
    pub name: String,
    pub custom: bool,
    pub latest: Option<StatusRow>,
    /// How many times it was rated.
    pub ratings: i64,
}

/// A status rating.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub score: i64,
    pub note: String,
    pub rated_at: DateTime<Utc>,
}

/// A goal with its activities.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalRow {
    pub id: Uuid,
    pub domain: String,
    pub title: String,
    pub description: String,
    pub state: GoalState,
    pub set_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Activities by state.
    pub planned: i64,
    pub done: i64,
    pub dropped: i64,
    /// Oldest plan first.
    pub activities: Vec<ActivityRow>,
}

/// An activity under a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: Uuid,
    pub title: String,
    pub state: ActivityState,
    pub planned_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What one section of a portal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryRow {
    pub section: Section,
    /// Items ever added.
    pub items: i64,
    /// Items current (not stopped, removed or closed).
    pub current: i64,
    /// Events in the section.
    pub changes: i64,
    pub last_changed_at: Option<DateTime<Utc>>,
}

/// A portal's control panel as it is now: its life domains and active goals.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelNow {
    pub domains: Vec<DomainRow>,
    pub goals: Vec<GoalRow>,
}

/// The control panel of `portal` now, kept between reads while the
/// projection has not changed the portal since (`crate::cache`).
pub async fn now(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
) -> Result<std::sync::Arc<PanelNow>, DbError> {
    let changes = engine.changes(control_panel::NAME);
    if let Some(kept) = changes.and_then(|c| engine.kept.get::<PanelNow>(c, portal.id())) {
        return Ok(kept);
    }
    let stamp = changes.map(|c| c.stamp());
    let (domains, goals) = tokio::try_join!(
        domains(engine, db, portal),
        active_goals(engine, db, portal)
    )?;
    let now = std::sync::Arc::new(PanelNow { domains, goals });
    if let Some(stamp) = stamp {
        engine
            .kept
            .keep(portal.id(), stamp, std::sync::Arc::clone(&now));
    }
    Ok(now)
}

const GOAL_SELECT: &str = "goal_id, domain_key, title, description, state, set_at, updated_at, closed_at, planned, done, dropped";
const ACTIVITY_SELECT: &str = "activity_id, goal_id, title, state, planned_at, updated_at";

fn goal_state(table: &str, name: &str) -> Result<GoalState, DbError> {
    match name {
        "active" => Ok(GoalState::Active),
        "achieved" => Ok(GoalState::Achieved),
        "abandoned" => Ok(GoalState::Abandoned),
        other => Err(malformed(
            table,
            "state",
            format!("unknown goal state `{other}`"),
        )),
    }
}

fn activity_state(table: &str, name: &str) -> Result<ActivityState, DbError> {
    match name {
        "planned" => Ok(ActivityState::Planned),
        "done" => Ok(ActivityState::Done),
        "dropped" => Ok(ActivityState::Dropped),
        other => Err(malformed(
            table,
            "state",
            format!("unknown activity state `{other}`"),
        )),
    }
}

fn section(table: &str, row: &AnyRow) -> Result<Section, DbError> {
    let name = text(row, table, "section")?;
    Section::parse(&name)
        .ok_or_else(|| malformed(table, "section", format!("unknown section `{name}`")))
}

fn goal_row(table: &str, row: &AnyRow) -> Result<GoalRow, DbError> {
    Ok(GoalRow {
        id: uuid(row, table, "goal_id")?,
        domain: text(row, table, "domain_key")?,
        title: text(row, table, "title")?,
        description: text(row, table, "description")?,
        state: goal_state(table, &text(row, table, "state")?)?,
        set_at: time(row, table, "set_at")?,
        updated_at: time(row, table, "updated_at")?,
        closed_at: opt_time(row, table, "closed_at")?,
        planned: int(row, table, "planned")?,
        done: int(row, table, "done")?,
        dropped: int(row, table, "dropped")?,
        activities: Vec::new(),
    })
}

fn activity_row(table: &str, row: &AnyRow) -> Result<(Uuid, ActivityRow), DbError> {
    Ok((
        uuid(row, table, "goal_id")?,
        ActivityRow {
            id: uuid(row, table, "activity_id")?,
            title: text(row, table, "title")?,
            state: activity_state(table, &text(row, table, "state")?)?,
            planned_at: time(row, table, "planned_at")?,
            updated_at: time(row, table, "updated_at")?,
        },
    ))
}

/// Every life domain of `portal` (default ones first, then the owner's in
/// the order added) with its latest status.
pub async fn domains(engine: &Engine, db: &Db, portal: &Portal) -> Result<Vec<DomainRow>, DbError> {
    let table = engine.table(control_panel::NAME, "cp_domains");
    let rows = sqlx::query(&format!(
        "SELECT domain_key, name, custom, latest_score, latest_note, latest_rated_at, ratings \
         FROM {table} WHERE portal_id = $1 ORDER BY ordinal"
    ))
    .bind(portal.id().to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let score: Option<i64> = sqlx::Row::try_get(row, "latest_score")
                .map_err(|e| malformed(&table, "latest_score", e))?;
            let latest = match score {
                Some(score) => Some(StatusRow {
                    score,
                    note: opt_text(row, &table, "latest_note")?.unwrap_or_default(),
                    rated_at: time(row, &table, "latest_rated_at")?,
                }),
                None => None,
            };
            Ok(DomainRow {
                key: text(row, &table, "domain_key")?,
                name: text(row, &table, "name")?,
                custom: int(row, &table, "custom")? != 0,
                latest,
                ratings: int(row, &table, "ratings")?,
            })
        })
        .collect()
}

/// The active goals of `portal` (oldest first) with their activities.
pub async fn active_goals(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
) -> Result<Vec<GoalRow>, DbError> {
    goals(engine, db, portal, false).await
}

/// The goals of `portal` (oldest first) with their activities: the active
/// ones, and with `include_closed` the achieved and abandoned ones too.
pub async fn goals(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    include_closed: bool,
) -> Result<Vec<GoalRow>, DbError> {
    let only_active = if include_closed {
        ""
    } else {
        "AND state = 'active'"
    };
    let goal_active = if include_closed {
        ""
    } else {
        "AND g.state = 'active'"
    };
    let (goals_t, activities_t) = (
        engine.table(control_panel::NAME, "cp_goals"),
        engine.table(control_panel::NAME, "cp_activities"),
    );
    let id = portal.id().to_string();
    let goal_rows = sqlx::query(&format!(
        "SELECT {GOAL_SELECT} FROM {goals_t} WHERE portal_id = $1 {only_active} \
         ORDER BY set_at, goal_id"
    ))
    .bind(&id)
    .fetch_all(&db.pool)
    .await?;
    let activity_rows = sqlx::query(&format!(
        "SELECT a.activity_id, a.goal_id, a.title, a.state, a.planned_at, a.updated_at \
         FROM {activities_t} a JOIN {goals_t} g ON g.portal_id = a.portal_id AND g.goal_id = a.goal_id \
         WHERE a.portal_id = $1 {goal_active} ORDER BY a.planned_at, a.activity_id"
    ))
    .bind(&id)
    .fetch_all(&db.pool)
    .await?;
    let mut goals = goal_rows
        .iter()
        .map(|row| goal_row(&goals_t, row))
        .collect::<Result<Vec<_>, _>>()?;
    for row in &activity_rows {
        let (goal_id, activity) = activity_row(&activities_t, row)?;
        if let Some(goal) = goals.iter_mut().find(|g| g.id == goal_id) {
            goal.activities.push(activity);
        }
    }
    Ok(goals)
}

/// One goal of `portal` in any state, with its activities.
pub async fn goal(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    goal_id: Uuid,
) -> Result<Option<GoalRow>, DbError> {
    let (goals_t, activities_t) = (
        engine.table(control_panel::NAME, "cp_goals"),
        engine.table(control_panel::NAME, "cp_activities"),
    );
    let (portal_id, goal_id) = (portal.id().to_string(), goal_id.to_string());
    let Some(row) = sqlx::query(&format!(
        "SELECT {GOAL_SELECT} FROM {goals_t} WHERE portal_id = $1 AND goal_id = $2"
    ))
    .bind(&portal_id)
    .bind(&goal_id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let mut goal = goal_row(&goals_t, &row)?;
    let rows = sqlx::query(&format!(
        "SELECT {ACTIVITY_SELECT} FROM {activities_t} WHERE portal_id = $1 AND goal_id = $2 \
         ORDER BY planned_at, activity_id"
    ))
    .bind(&portal_id)
    .bind(&goal_id)
    .fetch_all(&db.pool)
    .await?;
    for row in &rows {
        goal.activities.push(activity_row(&activities_t, row)?.1);
    }
    Ok(Some(goal))
}

/// The summary of every section of `portal`, in the order of
/// [`Section::ALL`]: now from the control-panel projection, or as it stood
/// at `as_of` from the history index (counts by event type, no payloads).
/// Tests hold the two to each other.
pub async fn summaries(
    engine: &Engine,
    db: &Db,
    portal: &Portal,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<SummaryRow>, DbError> {
    let mut out: Vec<SummaryRow> = Section::ALL
        .into_iter()
        .map(|section| SummaryRow {
            section,
            items: 0,
            current: 0,
            changes: 0,
            last_changed_at: None,
        })
        .collect();
    let id = portal.id().to_string();
    let Some(as_of) = as_of else {
        let table = engine.table(control_panel::NAME, "cp_sections");
        let rows = sqlx::query(&format!(
            "SELECT section, items, current, changes, updated_at FROM {table} WHERE portal_id = $1"
        ))
        .bind(&id)
        .fetch_all(&db.pool)
        .await?;
        for row in &rows {
            let summary = &mut out[section(&table, row)?.index()];
            summary.items = int(row, &table, "items")?;
            summary.current = int(row, &table, "current")?;
            summary.changes = int(row, &table, "changes")?;
            summary.last_changed_at = Some(time(row, &table, "updated_at")?);
        }
        return Ok(out);
    };
    let table = engine.table(history::NAME, "history");
    let rows = sqlx::query(&history::summary_query(&table))
        .bind(&id)
        .bind(ts(as_of))
        .fetch_all(&db.pool)
        .await?;
    for row in &rows {
        let event_type = text(row, &table, "event_type")?;
        let n = int(row, &table, "n")?;
        let last = time(row, &table, "last_at")?;
        let (items, current) = control_panel::section_delta(&event_type);
        let summary = &mut out[section(&table, row)?.index()];
        summary.items += items * n;
        summary.current += current * n;
        summary.changes += n;
        summary.last_changed_at = summary.last_changed_at.max(Some(last));
    }
    for summary in &mut out {
        summary.current =
            control_panel::section_current(summary.section, summary.items, summary.current);
    }
    Ok(out)
}
