use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::commands::PortalCommand;
use super::errors::PortalError;
use super::events::PortalEvent;
use super::items::{CrisisPlan, Medication, MedicationState, Person};
use super::limits::DEFAULT_DOMAINS;
use super::limits::*;
use crate::refusal::InputError;
use crate::text;

/// The state a portal needs to decide commands; folded from its events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portal {
    pub owner: Option<Uuid>,
    pub organisation: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub domains: BTreeMap<String, LifeDomain>,
    pub goals: BTreeMap<Uuid, Goal>,
    /// activity id -> goal id, so activity commands need not name the goal.
    pub activity_goal: BTreeMap<Uuid, Uuid>,
    pub medications: BTreeMap<Uuid, Medication>,
    pub people: BTreeMap<Uuid, Person>,
    /// The latest revision number and its content.
    pub crisis_plan: Option<(u32, CrisisPlan)>,
    /// Exercise log entry id -> completed yet.
    pub exercise_log: BTreeMap<Uuid, bool>,
    /// Time of the latest event.
    pub last_at: Option<DateTime<Utc>>,
}

/// A life domain of the portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifeDomain {
    pub name: String,
    pub custom: bool,
}

/// Where a goal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoalState {
    Active,
    Achieved,
    Abandoned,
}

impl GoalState {
    /// Lower-case name used in messages and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            GoalState::Active => "active",
            GoalState::Achieved => "achieved",
            GoalState::Abandoned => "abandoned",
        }
    }
}

/// A goal and its activities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub domain: String,
    pub title: String,
    pub state: GoalState,
    pub activities: BTreeMap<Uuid, Activity>,
}

/// Where an activity stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityState {
    Planned,
    Done,
    Dropped,
}

impl ActivityState {
    /// Lower-case name used in messages and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityState::Planned => "planned",
            ActivityState::Done => "done",
            ActivityState::Dropped => "dropped",
        }
    }
}

/// A concrete step under a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub title: String,
    pub state: ActivityState,
}

impl Portal {
    fn require_open(&self) -> Result<(), PortalError> {
        if self.owner.is_none() {
            return Err(PortalError::NotOpen);
        }
        Ok(())
    }

    fn require_domain(&self, key: &str) -> Result<(), PortalError> {
        if !self.domains.contains_key(key) {
            return Err(PortalError::UnknownDomain(key.to_string()));
        }
        Ok(())
    }

    fn open_goal(&self, goal_id: Uuid) -> Result<&Goal, PortalError> {
        let goal = self
            .goals
            .get(&goal_id)
            .ok_or(PortalError::UnknownGoal(goal_id))?;
        if goal.state != GoalState::Active {
            return Err(PortalError::GoalClosed {
                goal_id,
                state: goal.state.as_str(),
            });
        }
        Ok(goal)
    }

    /// The goal of a planned activity, checking both are still open.
    fn planned_activity(&self, activity_id: Uuid) -> Result<Uuid, PortalError> {
        let goal_id = *self
            .activity_goal
            .get(&activity_id)
            .ok_or(PortalError::UnknownActivity(activity_id))?;
        let goal = self.open_goal(goal_id)?;
        let state = goal
            .activities
            .get(&activity_id)
            .map(|a| a.state)
            .ok_or(PortalError::UnknownActivity(activity_id))?;
        if state != ActivityState::Planned {
            return Err(PortalError::ActivityClosed {
                activity_id,
                state: state.as_str(),
            });
        }
        Ok(goal_id)
    }

    /// Decides a command: the events it causes, or the rule it breaks. The
    /// portal's clock never runs backwards: an event is stamped no earlier than
    /// the one before it (two requests may read the clock in one order and
    /// reach the portal in the other), so "as it stood at T" is always a
    /// prefix of the portal's events.
    pub fn decide(&self, command: PortalCommand) -> Result<Vec<PortalEvent>, PortalError> {
        let mut events = self.decide_unstamped(command)?;
        if let Some(last) = self.last_at {
            for event in &mut events {
                let at = event.at_mut();
                *at = (*at).max(last);
            }
        }
        Ok(events)
    }

    fn decide_unstamped(&self, command: PortalCommand) -> Result<Vec<PortalEvent>, PortalError> {
        if !matches!(command, PortalCommand::OpenPortal { .. }) {
            self.require_open()?;
        }
        let event = match command {
            PortalCommand::OpenPortal {
                owner,
                organisation,
                at,
            } => {
                if self.owner.is_some() {
                    return Err(PortalError::AlreadyOpen);
                }
                let organisation =
                    text::required(&organisation, 100).map_err(InputError::text("organisation"))?;
                PortalEvent::PortalOpened {
                    owner,
                    organisation,
                    at,
                }
            }
            PortalCommand::AddLifeDomain { key, name, at } => {
                if !text::key_ok(&key, DOMAIN_KEY_MAX) {
                    return Err(InputError::InvalidDomainKey {
                        max: DOMAIN_KEY_MAX,
                    }
                    .into());
                }
                let name =
                    text::required(&name, DOMAIN_NAME_MAX).map_err(InputError::text("name"))?;
                if self.domains.contains_key(&key) {
                    return Err(PortalError::DuplicateDomain(key));
                }
                if self
                    .domains
                    .values()
                    .any(|d| d.name.to_lowercase() == name.to_lowercase())
                {
                    return Err(PortalError::DuplicateDomainName(name));
                }
                if self.domains.values().filter(|d| d.custom).count() >= CUSTOM_DOMAINS_MAX {
                    return Err(PortalError::TooManyDomains(CUSTOM_DOMAINS_MAX));
                }
                PortalEvent::LifeDomainAdded { key, name, at }
            }
            PortalCommand::RateStatus {
                domain,
                score,
                note,
                at,
            } => {
                self.require_domain(&domain)?;
                if !(SCORE_MIN..=SCORE_MAX).contains(&score) {
                    return Err(PortalError::ScoreOutOfRange {
                        got: score,
                        min: SCORE_MIN,
                        max: SCORE_MAX,
                    });
                }
                let note = text::optional(&note, NOTE_MAX).map_err(InputError::text("note"))?;
                PortalEvent::StatusRated {
                    domain,
                    score,
                    note,
                    at,
                }
            }
            PortalCommand::SetGoal {
                goal_id,
                domain,
                title,
                description,
                at,
            } => {
                self.require_domain(&domain)?;
                let title = text::required(&title, TITLE_MAX).map_err(InputError::text("title"))?;
                let description = text::optional(&description, NOTE_MAX)
                    .map_err(InputError::text("description"))?;
                if self.goals.contains_key(&goal_id) {
                    return Err(PortalError::DuplicateGoal(goal_id));
                }
                if self.goals.len() >= GOALS_MAX {
                    return Err(PortalError::TooManyGoals(GOALS_MAX));
                }
                PortalEvent::GoalSet {
                    goal_id,
                    domain,
                    title,
                    description,
                    at,
                }
            }
            PortalCommand::ReviseGoal {
                goal_id,
                title,
                description,
                at,
            } => {
                self.open_goal(goal_id)?;
                let title = text::required(&title, TITLE_MAX).map_err(InputError::text("title"))?;
                let description = text::optional(&description, NOTE_MAX)
                    .map_err(InputError::text("description"))?;
                PortalEvent::GoalRevised {
                    goal_id,
                    title,
                    description,
                    at,
                }
            }
            PortalCommand::AchieveGoal { goal_id, at } => {
                self.open_goal(goal_id)?;
                PortalEvent::GoalAchieved { goal_id, at }
            }
            PortalCommand::AbandonGoal {
                goal_id,
                reason,
                at,
            } => {
                self.open_goal(goal_id)?;
                let reason =
                    text::optional(&reason, NOTE_MAX).map_err(InputError::text("reason"))?;
                PortalEvent::GoalAbandoned {
                    goal_id,
                    reason,
                    at,
                }
            }
            PortalCommand::PlanActivity {
                goal_id,
                activity_id,
                title,
                at,
            } => {
                let goal = self.open_goal(goal_id)?;
                let title = text::required(&title, TITLE_MAX).map_err(InputError::text("title"))?;
                if self.activity_goal.contains_key(&activity_id) {
                    return Err(PortalError::DuplicateActivity(activity_id));
                }
                if goal.activities.len() >= ACTIVITIES_PER_GOAL_MAX {
                    return Err(PortalError::TooManyActivities(ACTIVITIES_PER_GOAL_MAX));
                }
                PortalEvent::ActivityPlanned {
                    goal_id,
                    activity_id,
                    title,
                    at,
                }
            }
            PortalCommand::CompleteActivity { activity_id, at } => {
                let goal_id = self.planned_activity(activity_id)?;
                PortalEvent::ActivityCompleted {
                    goal_id,
                    activity_id,
                    at,
                }
            }
            PortalCommand::DropActivity {
                activity_id,
                reason,
                at,
            } => {
                let goal_id = self.planned_activity(activity_id)?;
                let reason =
                    text::optional(&reason, NOTE_MAX).map_err(InputError::text("reason"))?;
                PortalEvent::ActivityDropped {
                    goal_id,
                    activity_id,
                    reason,
                    at,
                }
            }
            PortalCommand::AddMedication {
                medication_id,
                name,
                dose,
                schedule,
                purpose,
                prescriber,
                at,
            } => self.add_medication(
                medication_id,
                [name, dose, schedule, purpose, prescriber],
                at,
            )?,
            PortalCommand::ChangeMedication {
                medication_id,
                dose,
                schedule,
                at,
            } => self.change_medication(medication_id, dose, schedule, at)?,
            PortalCommand::PauseMedication {
                medication_id,
                reason,
                at,
            } => self.pause_medication(medication_id, reason, at)?,
            PortalCommand::ResumeMedication { medication_id, at } => {
                self.resume_medication(medication_id, at)?
            }
            PortalCommand::StopMedication {
                medication_id,
                reason,
                at,
            } => self.stop_medication(medication_id, reason, at)?,
            PortalCommand::AddPerson {
                person_id,
                details,
                at,
            } => self.add_person(person_id, details, at)?,
            PortalCommand::UpdatePerson {
                person_id,
                details,
                at,
            } => self.update_person(person_id, details, at)?,
            PortalCommand::RemovePerson {
                person_id,
                reason,
                at,
            } => self.remove_person(person_id, reason, at)?,
            PortalCommand::ReviseCrisisPlan { plan, at } => self.revise_crisis_plan(plan, at)?,
            PortalCommand::StartExercise {
                entry_id,
                exercise,
                catalogue_title,
                at,
            } => self.start_exercise(entry_id, exercise, catalogue_title, at)?,
            PortalCommand::CompleteExercise {
                entry_id,
                reflection,
                rating,
                at,
            } => self.complete_exercise(entry_id, reflection, rating, at)?,
        };
        Ok(vec![event])
    }
}

impl Aggregate for Portal {
    const TYPE: &'static str = "Portal";
    type Command = PortalCommand;
    type Event = PortalEvent;
    type Error = PortalError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.last_at = Some(event.at());
        match event {
            PortalEvent::PortalOpened {
                owner,
                organisation,
                at,
            } => {
                self.owner = Some(owner);
                self.organisation = organisation;
                self.opened_at = Some(at);
                for (key, name) in DEFAULT_DOMAINS {
                    self.domains.insert(
                        (*key).to_string(),
                        LifeDomain {
                            name: (*name).to_string(),
                            custom: false,
                        },
                    );
                }
            }
            PortalEvent::LifeDomainAdded { key, name, .. } => {
                self.domains.insert(key, LifeDomain { name, custom: true });
            }
            PortalEvent::StatusRated { .. } => {}
            PortalEvent::GoalSet {
                goal_id,
                domain,
                title,
                ..
            } => {
                self.goals.insert(
                    goal_id,
                    Goal {
                        domain,
                        title,
                        state: GoalState::Active,
                        activities: BTreeMap::new(),
                    },
                );
            }
            PortalEvent::GoalRevised { goal_id, title, .. } => {
                if let Some(goal) = self.goals.get_mut(&goal_id) {
                    goal.title = title;
                }
            }
            PortalEvent::GoalAchieved { goal_id, .. } => {
                self.set_goal_state(goal_id, GoalState::Achieved)
            }
            PortalEvent::GoalAbandoned { goal_id, .. } => {
                self.set_goal_state(goal_id, GoalState::Abandoned)
            }
            PortalEvent::ActivityPlanned {
                goal_id,
                activity_id,
                title,
                ..
            } => {
                if let Some(goal) = self.goals.get_mut(&goal_id) {
                    goal.activities.insert(
                        activity_id,
                        Activity {
                            title,
                            state: ActivityState::Planned,
                        },
                    );
                }
                self.activity_goal.insert(activity_id, goal_id);
            }
            PortalEvent::ActivityCompleted {
                goal_id,
                activity_id,
                ..
            } => self.set_activity_state(goal_id, activity_id, ActivityState::Done),
            PortalEvent::ActivityDropped {
                goal_id,
                activity_id,
                ..
            } => self.set_activity_state(goal_id, activity_id, ActivityState::Dropped),
            PortalEvent::MedicationAdded {
                medication_id,
                name,
                dose,
                schedule,
                ..
            } => {
                self.medications.insert(
                    medication_id,
                    Medication {
                        name,
                        dose,
                        schedule,
                        state: MedicationState::Active,
                    },
                );
            }
            PortalEvent::MedicationChanged {
                medication_id,
                dose,
                schedule,
                ..
            } => {
                if let Some(m) = self.medications.get_mut(&medication_id) {
                    m.dose = dose;
                    m.schedule = schedule;
                }
            }
            PortalEvent::MedicationPaused { medication_id, .. } => {
                self.set_medication_state(medication_id, MedicationState::Paused)
            }
            PortalEvent::MedicationResumed { medication_id, .. } => {
                self.set_medication_state(medication_id, MedicationState::Active)
            }
            PortalEvent::MedicationStopped { medication_id, .. } => {
                self.set_medication_state(medication_id, MedicationState::Stopped)
            }
            PortalEvent::PersonAdded {
                person_id,
                display_name,
                relation,
                closeness,
                support,
                ..
            }
            | PortalEvent::PersonUpdated {
                person_id,
                display_name,
                relation,
                closeness,
                support,
                ..
            } => {
                self.people.insert(
                    person_id,
                    Person {
                        display_name,
                        relation,
                        closeness,
                        support,
                        removed: false,
                    },
                );
            }
            PortalEvent::PersonRemoved { person_id, .. } => {
                if let Some(p) = self.people.get_mut(&person_id) {
                    p.removed = true;
                }
            }
            PortalEvent::CrisisPlanRevised { revision, plan, .. } => {
                self.crisis_plan = Some((revision, plan));
            }
            PortalEvent::ExerciseStarted { entry_id, .. } => {
                self.exercise_log.insert(entry_id, false);
            }
            PortalEvent::ExerciseCompleted { entry_id, .. } => {
                self.exercise_log.insert(entry_id, true);
            }
        }
    }
}

impl Portal {
    fn set_medication_state(&mut self, id: Uuid, state: MedicationState) {
        if let Some(m) = self.medications.get_mut(&id) {
            m.state = state;
        }
    }

    fn set_goal_state(&mut self, goal_id: Uuid, state: GoalState) {
        if let Some(goal) = self.goals.get_mut(&goal_id) {
            goal.state = state;
        }
    }

    fn set_activity_state(&mut self, goal_id: Uuid, activity_id: Uuid, state: ActivityState) {
        if let Some(activity) = self
            .goals
            .get_mut(&goal_id)
            .and_then(|g| g.activities.get_mut(&activity_id))
        {
            activity.state = state;
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
