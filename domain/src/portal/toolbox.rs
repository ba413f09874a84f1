//! The toolbox sections beside life domains and goals: medications, the
//! network map, the crisis plan and the exercise log. Types shared by
//! commands, events and views, and the rules that decide toolbox commands.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aggregate::Portal;
use super::errors::PortalError;
use super::events::PortalEvent;
use super::limits::*;
use crate::refusal::InputError;
use crate::text;

/// How a person on the network map is related to the service user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    Family,
    Friend,
    Professional,
    Peer,
    Other,
}

/// A kind of support a person gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportKind {
    /// Listening, comfort, encouragement.
    Emotional,
    /// Help with everyday tasks.
    Practical,
    /// Advice and information.
    Informational,
    /// Company and shared activities.
    Social,
    /// Money or material help.
    Financial,
    /// Anything else.
    Other,
}

/// Where a medication stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicationState {
    Active,
    Paused,
    Stopped,
}

impl MedicationState {
    /// Lower-case name used in messages and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            MedicationState::Active => "active",
            MedicationState::Paused => "paused",
            MedicationState::Stopped => "stopped",
        }
    }
}

/// Someone to contact in a crisis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrisisContact {
    pub name: String,
    pub phone: String,
    pub when_to_call: String,
}

/// The content of one revision of the crisis plan. Every revision holds the
/// whole document, so any revision is readable from its one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrisisPlan {
    pub warning_signs: Vec<String>,
    pub what_helps: Vec<String>,
    pub what_does_not_help: Vec<String>,
    pub contacts: Vec<CrisisContact>,
    pub own_words: String,
}

/// What the aggregate keeps of a medication to decide commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    pub name: String,
    pub dose: String,
    pub schedule: String,
    pub state: MedicationState,
}

/// What the aggregate keeps of a person on the network map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub display_name: String,
    pub relation: RelationKind,
    pub closeness: i32,
    pub support: Vec<SupportKind>,
    pub removed: bool,
}

/// A person's details as a command gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDetails {
    pub display_name: String,
    pub relation: RelationKind,
    pub closeness: i32,
    pub support: Vec<SupportKind>,
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Checks every item of a list section of the crisis plan.
fn plan_list(field: &'static str, items: &[String]) -> Result<Vec<String>, PortalError> {
    if items.len() > PLAN_LIST_MAX {
        return Err(PortalError::TooManyItems {
            field,
            max: PLAN_LIST_MAX,
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            text::required(item, PLAN_ITEM_MAX).map_err(|problem| PortalError::InvalidItem {
                field,
                index,
                problem,
            })
        })
        .collect()
}

/// A phone number as people write them: digits with spaces, `+`, `-`, `.`,
/// `(` and `)`; at least 3 digits.
fn phone_ok(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (3..=PHONE_MAX).contains(&phone.chars().count())
        && digits >= 3
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
}

/// Checks a whole crisis plan and returns it as it will be stored (trimmed).
pub fn checked_plan(plan: CrisisPlan) -> Result<CrisisPlan, PortalError> {
    let warning_signs = plan_list("warningSigns", &plan.warning_signs)?;
    let what_helps = plan_list("whatHelps", &plan.what_helps)?;
    let what_does_not_help = plan_list("whatDoesNotHelp", &plan.what_does_not_help)?;
    if plan.contacts.len() > PLAN_CONTACTS_MAX {
        return Err(PortalError::TooManyItems {
            field: "contacts",
            max: PLAN_CONTACTS_MAX,
        });
    }
    let mut contacts: Vec<CrisisContact> = Vec::with_capacity(plan.contacts.len());
    for (index, c) in plan.contacts.iter().enumerate() {
        let item = |field| {
            move |problem| PortalError::InvalidItem {
                field,
                index,
                problem,
            }
        };
        let name = text::required(&c.name, PERSON_NAME_MAX).map_err(item("contacts.name"))?;
        let phone = c.phone.trim().to_string();
        if !phone_ok(&phone) {
            return Err(PortalError::InvalidPhone { index });
        }
        let when_to_call =
            text::optional(&c.when_to_call, PLAN_ITEM_MAX).map_err(item("contacts.whenToCall"))?;
        if contacts.iter().any(|other| same_name(&other.name, &name)) {
            return Err(PortalError::DuplicateName {
                item: "crisis contact",
                name,
            });
        }
        contacts.push(CrisisContact {
            name,
            phone,
            when_to_call,
        });
    }
    let own_words =
        text::optional(&plan.own_words, OWN_WORDS_MAX).map_err(InputError::text("ownWords"))?;
    let plan = CrisisPlan {
        warning_signs,
        what_helps,
        what_does_not_help,
        contacts,
        own_words,
    };
    if plan == CrisisPlan::default() {
        return Err(PortalError::EmptyCrisisPlan);
    }
    Ok(plan)
}

/// Checks a person's details and returns them as stored (trimmed, support
/// kinds sorted without repeats).
fn checked_person(details: PersonDetails) -> Result<PersonDetails, InputError> {
    let display_name = text::required(&details.display_name, PERSON_NAME_MAX)
        .map_err(InputError::text("displayName"))?;
    if !(CLOSENESS_MIN..=CLOSENESS_MAX).contains(&details.closeness) {
        return Err(InputError::OutOfRange {
            field: "closeness",
            got: details.closeness,
            min: CLOSENESS_MIN,
            max: CLOSENESS_MAX,
        });
    }
    let support: BTreeSet<SupportKind> = details.support.into_iter().collect();
    Ok(PersonDetails {
        display_name,
        relation: details.relation,
        closeness: details.closeness,
        support: support.into_iter().collect(),
    })
}

impl Portal {
    fn medication(&self, id: Uuid) -> Result<&Medication, PortalError> {
        self.medications.get(&id).ok_or(PortalError::Unknown {
            item: "medication",
            id,
        })
    }

    /// A medication that is not stopped, or why not.
    fn medication_in(
        &self,
        id: Uuid,
        allowed: &[MedicationState],
        action: &'static str,
    ) -> Result<&Medication, PortalError> {
        let medication = self.medication(id)?;
        if !allowed.contains(&medication.state) {
            return Err(PortalError::WrongState {
                item: "medication",
                id,
                state: medication.state.as_str(),
                action,
            });
        }
        Ok(medication)
    }

    pub(super) fn add_medication(
        &self,
        medication_id: Uuid,
        fields: [String; 5],
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let [name, dose, schedule, purpose, prescriber] = fields;
        let name = text::required(&name, MED_NAME_MAX).map_err(InputError::text("name"))?;
        let dose = text::required(&dose, MED_DOSE_MAX).map_err(InputError::text("dose"))?;
        let schedule =
            text::required(&schedule, MED_SCHEDULE_MAX).map_err(InputError::text("schedule"))?;
        let purpose =
            text::optional(&purpose, MED_PURPOSE_MAX).map_err(InputError::text("purpose"))?;
        let prescriber =
            text::optional(&prescriber, PERSON_NAME_MAX).map_err(InputError::text("prescriber"))?;
        if self.medications.contains_key(&medication_id) {
            return Err(PortalError::DuplicateId {
                item: "medication",
                id: medication_id,
            });
        }
        if self
            .medications
            .values()
            .any(|m| m.state != MedicationState::Stopped && same_name(&m.name, &name))
        {
            return Err(PortalError::DuplicateName {
                item: "medication",
                name,
            });
        }
        if self.medications.len() >= MEDICATIONS_MAX {
            return Err(PortalError::TooMany {
                items: "medications",
                max: MEDICATIONS_MAX,
            });
        }
        Ok(PortalEvent::MedicationAdded {
            medication_id,
            name,
            dose,
            schedule,
            purpose,
            prescriber,
            at,
        })
    }

    pub(super) fn change_medication(
        &self,
        medication_id: Uuid,
        dose: Option<String>,
        schedule: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let current = self.medication_in(
            medication_id,
            &[MedicationState::Active, MedicationState::Paused],
            "changed",
        )?;
        let dose = match dose {
            Some(d) => text::required(&d, MED_DOSE_MAX).map_err(InputError::text("dose"))?,
            None => current.dose.clone(),
        };
        let schedule = match schedule {
            Some(s) => {
                text::required(&s, MED_SCHEDULE_MAX).map_err(InputError::text("schedule"))?
            }
            None => current.schedule.clone(),
        };
        if dose == current.dose && schedule == current.schedule {
            return Err(PortalError::NothingChanged("medication"));
        }
        Ok(PortalEvent::MedicationChanged {
            medication_id,
            dose,
            schedule,
            at,
        })
    }

    pub(super) fn pause_medication(
        &self,
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        self.medication_in(medication_id, &[MedicationState::Active], "paused")?;
        let reason = text::optional(&reason, NOTE_MAX).map_err(InputError::text("reason"))?;
        Ok(PortalEvent::MedicationPaused {
            medication_id,
            reason,
            at,
        })
    }

    pub(super) fn resume_medication(
        &self,
        medication_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        self.medication_in(medication_id, &[MedicationState::Paused], "resumed")?;
        Ok(PortalEvent::MedicationResumed { medication_id, at })
    }

    pub(super) fn stop_medication(
        &self,
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        self.medication_in(
            medication_id,
            &[MedicationState::Active, MedicationState::Paused],
            "stopped",
        )?;
        let reason = text::optional(&reason, NOTE_MAX).map_err(InputError::text("reason"))?;
        Ok(PortalEvent::MedicationStopped {
            medication_id,
            reason,
            at,
        })
    }

    fn name_taken(&self, person_id: Uuid, name: &str) -> bool {
        self.people
            .iter()
            .any(|(id, p)| *id != person_id && !p.removed && same_name(&p.display_name, name))
    }

    pub(super) fn add_person(
        &self,
        person_id: Uuid,
        details: PersonDetails,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let d = checked_person(details)?;
        if self.people.contains_key(&person_id) {
            return Err(PortalError::DuplicateId {
                item: "person",
                id: person_id,
            });
        }
        if self.name_taken(person_id, &d.display_name) {
            return Err(PortalError::DuplicateName {
                item: "person",
                name: d.display_name,
            });
        }
        if self.people.len() >= PEOPLE_MAX {
            return Err(PortalError::TooMany {
                items: "people on the network map",
                max: PEOPLE_MAX,
            });
        }
        Ok(PortalEvent::PersonAdded {
            person_id,
            display_name: d.display_name,
            relation: d.relation,
            closeness: d.closeness,
            support: d.support,
            at,
        })
    }

    fn present_person(&self, id: Uuid, action: &'static str) -> Result<&Person, PortalError> {
        let person = self
            .people
            .get(&id)
            .ok_or(PortalError::Unknown { item: "person", id })?;
        if person.removed {
            return Err(PortalError::WrongState {
                item: "person",
                id,
                state: "removed",
                action,
            });
        }
        Ok(person)
    }

    pub(super) fn update_person(
        &self,
        person_id: Uuid,
        details: PersonDetails,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let current = self.present_person(person_id, "updated")?;
        let d = checked_person(details)?;
        if self.name_taken(person_id, &d.display_name) {
            return Err(PortalError::DuplicateName {
                item: "person",
                name: d.display_name,
            });
        }
        if current.display_name == d.display_name
            && current.relation == d.relation
            && current.closeness == d.closeness
            && current.support == d.support
        {
            return Err(PortalError::NothingChanged("person"));
        }
        Ok(PortalEvent::PersonUpdated {
            person_id,
            display_name: d.display_name,
            relation: d.relation,
            closeness: d.closeness,
            support: d.support,
            at,
        })
    }

    pub(super) fn remove_person(
        &self,
        person_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        self.present_person(person_id, "removed")?;
        let reason = text::optional(&reason, NOTE_MAX).map_err(InputError::text("reason"))?;
        Ok(PortalEvent::PersonRemoved {
            person_id,
            reason,
            at,
        })
    }

    pub(super) fn revise_crisis_plan(
        &self,
        plan: CrisisPlan,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let plan = checked_plan(plan)?;
        if self.crisis_plan.as_ref().map(|(_, p)| p) == Some(&plan) {
            return Err(PortalError::NothingChanged("crisis plan"));
        }
        let revision = self.crisis_plan.as_ref().map_or(1, |(r, _)| r + 1);
        Ok(PortalEvent::CrisisPlanRevised { revision, plan, at })
    }

    pub(super) fn start_exercise(
        &self,
        entry_id: Uuid,
        exercise: String,
        catalogue_title: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        if !text::key_ok(&exercise, DOMAIN_KEY_MAX) {
            return Err(PortalError::InvalidExerciseKey {
                max: DOMAIN_KEY_MAX,
            });
        }
        let title =
            catalogue_title.ok_or_else(|| PortalError::UnknownExercise(exercise.clone()))?;
        if self.exercise_log.contains_key(&entry_id) {
            return Err(PortalError::DuplicateId {
                item: "exercise log entry",
                id: entry_id,
            });
        }
        Ok(PortalEvent::ExerciseStarted {
            entry_id,
            exercise,
            title,
            at,
        })
    }

    pub(super) fn complete_exercise(
        &self,
        entry_id: Uuid,
        reflection: String,
        rating: Option<i32>,
        at: DateTime<Utc>,
    ) -> Result<PortalEvent, PortalError> {
        let completed = *self
            .exercise_log
            .get(&entry_id)
            .ok_or(PortalError::Unknown {
                item: "exercise log entry",
                id: entry_id,
            })?;
        if completed {
            return Err(PortalError::WrongState {
                item: "exercise log entry",
                id: entry_id,
                state: "completed",
                action: "completed again",
            });
        }
        let reflection =
            text::optional(&reflection, NOTE_MAX).map_err(InputError::text("reflection"))?;
        if let Some(got) = rating {
            if !(RATING_MIN..=RATING_MAX).contains(&got) {
                return Err(InputError::OutOfRange {
                    field: "rating",
                    got,
                    min: RATING_MIN,
                    max: RATING_MAX,
                }
                .into());
            }
        }
        Ok(PortalEvent::ExerciseCompleted {
            entry_id,
            reflection,
            rating,
            at,
        })
    }
}

#[cfg(test)]
#[path = "toolbox_tests.rs"]
mod tests;
