use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::items::{CrisisPlan, PersonDetails};

/// What a service user asks their portal to do. Ids and times are chosen by the
/// caller (the API), never inside the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum PortalCommand {
    /// Create the portal for its owner, within an organisation.
    OpenPortal {
        owner: Uuid,
        organisation: String,
        at: DateTime<Utc>,
    },
    /// Add a life domain of the user's own beside the default set.
    AddLifeDomain {
        key: String,
        name: String,
        at: DateTime<Utc>,
    },
    /// Record how a life domain stands now: a 1-10 self-rating with a note.
    RateStatus {
        domain: String,
        score: i32,
        note: String,
        at: DateTime<Utc>,
    },
    /// Set a new goal in a life domain.
    SetGoal {
        goal_id: Uuid,
        domain: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    /// Change the wording of an open goal.
    ReviseGoal {
        goal_id: Uuid,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    /// Mark an open goal as achieved.
    AchieveGoal { goal_id: Uuid, at: DateTime<Utc> },
    /// Give up an open goal, optionally saying why.
    AbandonGoal {
        goal_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Plan a concrete step under an open goal.
    PlanActivity {
        goal_id: Uuid,
        activity_id: Uuid,
        title: String,
        at: DateTime<Utc>,
    },
    /// Mark a planned activity as done.
    CompleteActivity {
        activity_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Drop a planned activity, optionally saying why.
    DropActivity {
        activity_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Add a medication the user takes.
    AddMedication {
        medication_id: Uuid,
        name: String,
        dose: String,
        schedule: String,
        purpose: String,
        prescriber: String,
        at: DateTime<Utc>,
    },
    /// Change the dose or the schedule (or both) of a medication not stopped;
    /// `None` keeps the current value.
    ChangeMedication {
        medication_id: Uuid,
        dose: Option<String>,
        schedule: Option<String>,
        at: DateTime<Utc>,
    },
    /// Pause an active medication, optionally saying why.
    PauseMedication {
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Take a paused medication again.
    ResumeMedication {
        medication_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Stop a medication for good, optionally saying why.
    StopMedication {
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Put a person on the network map.
    AddPerson {
        person_id: Uuid,
        details: PersonDetails,
        at: DateTime<Utc>,
    },
    /// Change what the network map says about a person (all details at once).
    UpdatePerson {
        person_id: Uuid,
        details: PersonDetails,
        at: DateTime<Utc>,
    },
    /// Take a person off the network map; they stay in the history.
    RemovePerson {
        person_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Write a new revision of the crisis plan (the whole document).
    ReviseCrisisPlan { plan: CrisisPlan, at: DateTime<Utc> },
    /// Start an exercise from the organisation's catalogue. The caller looks the
    /// key up in the catalogue and passes the title it found, or `None`.
    StartExercise {
        entry_id: Uuid,
        exercise: String,
        catalogue_title: Option<String>,
        at: DateTime<Utc>,
    },
    /// Complete a started exercise, with an optional reflection and 1-5 self-rating.
    CompleteExercise {
        entry_id: Uuid,
        reflection: String,
        rating: Option<i32>,
        at: DateTime<Utc>,
    },
}
