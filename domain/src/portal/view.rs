//! Read-side folds: what each section of a portal shows, computed from its
//! events. The API answers both "now" and "as it stood at time T" by folding
//! the events up to T with [`PortalView::apply`], so the two can never differ.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::PortalEvent;
use super::items::{CrisisPlan, MedicationState, RelationKind, SupportKind};
use super::limits::DEFAULT_DOMAINS;

/// A medication as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MedicationView {
    pub id: Uuid,
    pub name: String,
    pub dose: String,
    pub schedule: String,
    pub purpose: String,
    pub prescriber: String,
    pub state: MedicationState,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why it was paused (while paused) or stopped (once stopped).
    pub reason: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// How many dose or schedule changes it has had.
    pub changes: u32,
}

/// A person on the network map.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonView {
    pub id: Uuid,
    pub display_name: String,
    pub relation: RelationKind,
    pub closeness: i32,
    pub support: Vec<SupportKind>,
    pub added_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_reason: Option<String>,
}

/// One revision of the crisis plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CrisisPlanView {
    pub revision: u32,
    pub revised_at: DateTime<Utc>,
    pub plan: CrisisPlan,
}

/// One entry of the exercise log.
#[derive(Debug, Clone, PartialEq)]
pub struct ExerciseEntryView {
    pub id: Uuid,
    pub exercise: String,
    pub title: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub reflection: Option<String>,
    pub rating: Option<i32>,
}

/// A life domain with its latest status.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainView {
    pub key: String,
    pub name: String,
    pub custom: bool,
    pub latest: Option<(i32, String, DateTime<Utc>)>,
    pub ratings: i64,
}

/// A goal with its activities.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalView {
    pub id: Uuid,
    pub domain: String,
    pub title: String,
    pub description: String,
    pub state: &'static str,
    pub set_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub activities: Vec<ActivityView>,
}

/// An activity under a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityView {
    pub id: Uuid,
    pub title: String,
    pub state: &'static str,
    pub planned_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Goal,
    Activity,
    Medication,
    Person,
    Entry,
}

/// Everything a portal shows, for the events folded so far. Lists keep the
/// order in which items were first added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortalView {
    pub organisation: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub domains: Vec<DomainView>,
    pub goals: Vec<GoalView>,
    pub medications: Vec<MedicationView>,
    pub people: Vec<PersonView>,
    /// The latest revision of the crisis plan.
    pub crisis_plan: Option<CrisisPlanView>,
    pub exercise_log: Vec<ExerciseEntryView>,
    /// Position of each item in its list, by (kind, id): ids are chosen by
    /// clients and only unique within their kind.
    index: BTreeMap<(Kind, Uuid), usize>,
}

impl PortalView {
    /// Folds a whole sequence of events.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a PortalEvent>) -> PortalView {
        let mut view = PortalView::default();
        for event in events {
            view.apply(event);
        }
        view
    }

    fn medication(&mut self, id: &Uuid) -> Option<&mut MedicationView> {
        let i = *self.index.get(&(Kind::Medication, *id))?;
        self.medications.get_mut(i).filter(|m| m.id == *id)
    }

    fn person(&mut self, id: &Uuid) -> Option<&mut PersonView> {
        let i = *self.index.get(&(Kind::Person, *id))?;
        self.people.get_mut(i).filter(|p| p.id == *id)
    }

    fn entry(&mut self, id: &Uuid) -> Option<&mut ExerciseEntryView> {
        let i = *self.index.get(&(Kind::Entry, *id))?;
        self.exercise_log.get_mut(i).filter(|e| e.id == *id)
    }

    fn goal(&mut self, id: &Uuid) -> Option<&mut GoalView> {
        let i = *self.index.get(&(Kind::Goal, *id))?;
        self.goals.get_mut(i).filter(|g| g.id == *id)
    }

    fn activity(&mut self, goal: &Uuid, id: &Uuid) -> Option<&mut ActivityView> {
        let i = *self.index.get(&(Kind::Activity, *id))?;
        self.goal(goal)?
            .activities
            .get_mut(i)
            .filter(|a| a.id == *id)
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &PortalEvent) {
        let at = event.at();
        self.updated_at = Some(at);
        match event {
            PortalEvent::PortalOpened { organisation, .. } => {
                self.organisation = organisation.clone();
                self.opened_at = Some(at);
                self.domains = DEFAULT_DOMAINS
                    .iter()
                    .map(|(key, name)| DomainView {
                        key: (*key).to_string(),
                        name: (*name).to_string(),
                        custom: false,
                        latest: None,
                        ratings: 0,
                    })
                    .collect();
            }
            PortalEvent::LifeDomainAdded { key, name, .. } => self.domains.push(DomainView {
                key: key.clone(),
                name: name.clone(),
                custom: true,
                latest: None,
                ratings: 0,
            }),
            PortalEvent::StatusRated {
                domain,
                score,
                note,
                ..
            } => {
                if let Some(d) = self.domains.iter_mut().find(|d| &d.key == domain) {
                    d.latest = Some((*score, note.clone(), at));
                    d.ratings += 1;
                }
            }
            PortalEvent::GoalSet {
                goal_id,
                domain,
                title,
                description,
                ..
            } => {
                self.index.insert((Kind::Goal, *goal_id), self.goals.len());
                self.goals.push(GoalView {
                    id: *goal_id,
                    domain: domain.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    state: "active",
                    set_at: at,
                    updated_at: at,
                    closed_at: None,
                    activities: Vec::new(),
                });
            }
            PortalEvent::GoalRevised {
                goal_id,
                title,
                description,
                ..
            } => {
                if let Some(g) = self.goal(goal_id) {
                    g.title = title.clone();
                    g.description = description.clone();
                    g.updated_at = at;
                }
            }
            PortalEvent::GoalAchieved { goal_id, .. } => self.close_goal(goal_id, "achieved", at),
            PortalEvent::GoalAbandoned { goal_id, .. } => self.close_goal(goal_id, "abandoned", at),
            PortalEvent::ActivityPlanned {
                goal_id,
                activity_id,
                title,
                ..
            } => {
                if let Some(g) = self.goal(goal_id) {
                    let i = g.activities.len();
                    g.activities.push(ActivityView {
                        id: *activity_id,
                        title: title.clone(),
                        state: "planned",
                        planned_at: at,
                        updated_at: at,
                    });
                    g.updated_at = at;
                    self.index.insert((Kind::Activity, *activity_id), i);
                }
            }
            PortalEvent::ActivityCompleted {
                goal_id,
                activity_id,
                ..
            } => self.set_activity(goal_id, activity_id, "done", at),
            PortalEvent::ActivityDropped {
                goal_id,
                activity_id,
                ..
            } => self.set_activity(goal_id, activity_id, "dropped", at),
            PortalEvent::MedicationAdded {
                medication_id,
                name,
                dose,
                schedule,
                purpose,
                prescriber,
                ..
            } => {
                self.index
                    .insert((Kind::Medication, *medication_id), self.medications.len());
                self.medications.push(MedicationView {
                    id: *medication_id,
                    name: name.clone(),
                    dose: dose.clone(),
                    schedule: schedule.clone(),
                    purpose: purpose.clone(),
                    prescriber: prescriber.clone(),
                    state: MedicationState::Active,
                    started_at: at,
                    updated_at: at,
                    reason: None,
                    stopped_at: None,
                    changes: 0,
                });
            }
            PortalEvent::MedicationChanged {
                medication_id,
                dose,
                schedule,
                ..
            } => {
                if let Some(m) = self.medication(medication_id) {
                    m.dose = dose.clone();
                    m.schedule = schedule.clone();
                    m.changes += 1;
                    m.updated_at = at;
                }
            }
            PortalEvent::MedicationPaused {
                medication_id,
                reason,
                ..
            } => {
                if let Some(m) = self.medication(medication_id) {
                    m.state = MedicationState::Paused;
                    m.reason = Some(reason.clone());
                    m.updated_at = at;
                }
            }
            PortalEvent::MedicationResumed { medication_id, .. } => {
                if let Some(m) = self.medication(medication_id) {
                    m.state = MedicationState::Active;
                    m.reason = None;
                    m.updated_at = at;
                }
            }
            PortalEvent::MedicationStopped {
                medication_id,
                reason,
                ..
            } => {
                if let Some(m) = self.medication(medication_id) {
                    m.state = MedicationState::Stopped;
                    m.reason = Some(reason.clone());
                    m.stopped_at = Some(at);
                    m.updated_at = at;
                }
            }
            PortalEvent::PersonAdded {
                person_id,
                display_name,
                relation,
                closeness,
                support,
                ..
            } => {
                self.index
                    .insert((Kind::Person, *person_id), self.people.len());
                self.people.push(PersonView {
                    id: *person_id,
                    display_name: display_name.clone(),
                    relation: *relation,
                    closeness: *closeness,
                    support: support.clone(),
                    added_at: at,
                    updated_at: at,
                    removed_at: None,
                    removal_reason: None,
                });
            }
            PortalEvent::PersonUpdated {
                person_id,
                display_name,
                relation,
                closeness,
                support,
                ..
            } => {
                if let Some(p) = self.person(person_id) {
                    p.display_name = display_name.clone();
                    p.relation = *relation;
                    p.closeness = *closeness;
                    p.support = support.clone();
                    p.updated_at = at;
                }
            }
            PortalEvent::PersonRemoved {
                person_id, reason, ..
            } => {
                if let Some(p) = self.person(person_id) {
                    p.removed_at = Some(at);
                    p.removal_reason = Some(reason.clone());
                    p.updated_at = at;
                }
            }
            PortalEvent::CrisisPlanRevised { revision, plan, .. } => {
                self.crisis_plan = Some(CrisisPlanView {
                    revision: *revision,
                    revised_at: at,
                    plan: plan.clone(),
                });
            }
            PortalEvent::ExerciseStarted {
                entry_id,
                exercise,
                title,
                ..
            } => {
                self.index
                    .insert((Kind::Entry, *entry_id), self.exercise_log.len());
                self.exercise_log.push(ExerciseEntryView {
                    id: *entry_id,
                    exercise: exercise.clone(),
                    title: title.clone(),
                    started_at: at,
                    completed_at: None,
                    reflection: None,
                    rating: None,
                });
            }
            PortalEvent::ExerciseCompleted {
                entry_id,
                reflection,
                rating,
                ..
            } => {
                if let Some(e) = self.entry(entry_id) {
                    e.completed_at = Some(at);
                    e.reflection = Some(reflection.clone());
                    e.rating = *rating;
                }
            }
        }
    }

    fn close_goal(&mut self, id: &Uuid, state: &'static str, at: DateTime<Utc>) {
        if let Some(g) = self.goal(id) {
            g.state = state;
            g.closed_at = Some(at);
            g.updated_at = at;
        }
    }

    fn set_activity(&mut self, goal: &Uuid, id: &Uuid, state: &'static str, at: DateTime<Utc>) {
        if let Some(a) = self.activity(goal, id) {
            a.state = state;
            a.updated_at = at;
        }
        if let Some(g) = self.goal(goal) {
            g.updated_at = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 10, minute, 0).unwrap()
    }

    #[test]
    fn folding_a_prefix_gives_the_state_at_that_time() {
        let m = Uuid::from_u128(7);
        let events = [
            PortalEvent::MedicationAdded {
                medication_id: m,
                name: "Sertraline".into(),
                dose: "50 mg".into(),
                schedule: "morning".into(),
                purpose: String::new(),
                prescriber: String::new(),
                at: t(1),
            },
            PortalEvent::MedicationChanged {
                medication_id: m,
                dose: "100 mg".into(),
                schedule: "morning".into(),
                at: t(2),
            },
            PortalEvent::MedicationStopped {
                medication_id: m,
                reason: "side effects".into(),
                at: t(3),
            },
        ];
        let at = |n: usize| PortalView::fold(&events[..n]).medications;
        assert!(at(0).is_empty());
        assert_eq!(at(1)[0].dose, "50 mg");
        assert_eq!(at(2)[0].dose, "100 mg");
        assert_eq!(at(2)[0].changes, 1);
        assert_eq!(at(3)[0].state, MedicationState::Stopped);
        assert_eq!(at(3)[0].reason.as_deref(), Some("side effects"));
        assert_eq!(at(3)[0].stopped_at, Some(t(3)));
    }
}
