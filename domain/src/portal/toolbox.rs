//! The rules that decide the toolbox's commands: medications, the network
//! map, the crisis plan and the exercise log (their items are in
//! `items.rs`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::aggregate::Portal;
use super::errors::PortalError;
use super::events::PortalEvent;
use super::items::*;
use super::limits::*;
use crate::refusal::InputError;
use crate::text;

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
