use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::items::{CrisisPlan, RelationKind, SupportKind};

/// Facts recorded in a portal. Never edited or removed; a new version of an
/// event gets a new `event_version` and an upcaster, not a rewrite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PortalEvent {
    PortalOpened {
        owner: Uuid,
        organisation: String,
        at: DateTime<Utc>,
    },
    LifeDomainAdded {
        key: String,
        name: String,
        at: DateTime<Utc>,
    },
    StatusRated {
        domain: String,
        score: i32,
        note: String,
        at: DateTime<Utc>,
    },
    GoalSet {
        goal_id: Uuid,
        domain: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    GoalRevised {
        goal_id: Uuid,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    GoalAchieved {
        goal_id: Uuid,
        at: DateTime<Utc>,
    },
    GoalAbandoned {
        goal_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ActivityPlanned {
        goal_id: Uuid,
        activity_id: Uuid,
        title: String,
        at: DateTime<Utc>,
    },
    ActivityCompleted {
        goal_id: Uuid,
        activity_id: Uuid,
        at: DateTime<Utc>,
    },
    ActivityDropped {
        goal_id: Uuid,
        activity_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    MedicationAdded {
        medication_id: Uuid,
        name: String,
        dose: String,
        schedule: String,
        purpose: String,
        prescriber: String,
        at: DateTime<Utc>,
    },
    MedicationChanged {
        medication_id: Uuid,
        dose: String,
        schedule: String,
        at: DateTime<Utc>,
    },
    MedicationPaused {
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    MedicationResumed {
        medication_id: Uuid,
        at: DateTime<Utc>,
    },
    MedicationStopped {
        medication_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    PersonAdded {
        person_id: Uuid,
        display_name: String,
        relation: RelationKind,
        closeness: i32,
        support: Vec<SupportKind>,
        at: DateTime<Utc>,
    },
    PersonUpdated {
        person_id: Uuid,
        display_name: String,
        relation: RelationKind,
        closeness: i32,
        support: Vec<SupportKind>,
        at: DateTime<Utc>,
    },
    PersonRemoved {
        person_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    CrisisPlanRevised {
        revision: u32,
        plan: CrisisPlan,
        at: DateTime<Utc>,
    },
    ExerciseStarted {
        entry_id: Uuid,
        exercise: String,
        title: String,
        at: DateTime<Utc>,
    },
    ExerciseCompleted {
        entry_id: Uuid,
        reflection: String,
        rating: Option<i32>,
        at: DateTime<Utc>,
    },
}

/// The part of the portal an event belongs to, for as-of reads and the
/// access rules of later issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Opening, life domains, status ratings, goals and activities.
    Core,
    Medications,
    Network,
    CrisisPlan,
    Exercises,
}

impl Section {
    /// Every section, in display order.
    pub const ALL: [Section; 5] = [
        Section::Core,
        Section::Medications,
        Section::Network,
        Section::CrisisPlan,
        Section::Exercises,
    ];

    /// Stable lower-case name stored in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Core => "core",
            Section::Medications => "medications",
            Section::Network => "network",
            Section::CrisisPlan => "crisis_plan",
            Section::Exercises => "exercises",
        }
    }

    /// The section a stored name ([`Section::as_str`]) stands for.
    pub fn parse(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Its place in [`Section::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The section a portal event of type `event_type` belongs to (a
    /// person's data export sorts stored events by it, before decoding).
    pub fn of_event_type(event_type: &str) -> Section {
        match event_type {
            "MedicationAdded" | "MedicationChanged" | "MedicationPaused" | "MedicationResumed"
            | "MedicationStopped" => Section::Medications,
            "PersonAdded" | "PersonUpdated" | "PersonRemoved" => Section::Network,
            "CrisisPlanRevised" => Section::CrisisPlan,
            "ExerciseStarted" | "ExerciseCompleted" => Section::Exercises,
            _ => Section::Core,
        }
    }
}

impl PortalEvent {
    /// When the fact happened, as stated by the command that caused it.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            PortalEvent::PortalOpened { at, .. }
            | PortalEvent::LifeDomainAdded { at, .. }
            | PortalEvent::StatusRated { at, .. }
            | PortalEvent::GoalSet { at, .. }
            | PortalEvent::GoalRevised { at, .. }
            | PortalEvent::GoalAchieved { at, .. }
            | PortalEvent::GoalAbandoned { at, .. }
            | PortalEvent::ActivityPlanned { at, .. }
            | PortalEvent::ActivityCompleted { at, .. }
            | PortalEvent::ActivityDropped { at, .. }
            | PortalEvent::MedicationAdded { at, .. }
            | PortalEvent::MedicationChanged { at, .. }
            | PortalEvent::MedicationPaused { at, .. }
            | PortalEvent::MedicationResumed { at, .. }
            | PortalEvent::MedicationStopped { at, .. }
            | PortalEvent::PersonAdded { at, .. }
            | PortalEvent::PersonUpdated { at, .. }
            | PortalEvent::PersonRemoved { at, .. }
            | PortalEvent::CrisisPlanRevised { at, .. }
            | PortalEvent::ExerciseStarted { at, .. }
            | PortalEvent::ExerciseCompleted { at, .. } => *at,
        }
    }

    /// The event's time, to adjust before it is stored.
    pub fn at_mut(&mut self) -> &mut DateTime<Utc> {
        match self {
            PortalEvent::PortalOpened { at, .. }
            | PortalEvent::LifeDomainAdded { at, .. }
            | PortalEvent::StatusRated { at, .. }
            | PortalEvent::GoalSet { at, .. }
            | PortalEvent::GoalRevised { at, .. }
            | PortalEvent::GoalAchieved { at, .. }
            | PortalEvent::GoalAbandoned { at, .. }
            | PortalEvent::ActivityPlanned { at, .. }
            | PortalEvent::ActivityCompleted { at, .. }
            | PortalEvent::ActivityDropped { at, .. }
            | PortalEvent::MedicationAdded { at, .. }
            | PortalEvent::MedicationChanged { at, .. }
            | PortalEvent::MedicationPaused { at, .. }
            | PortalEvent::MedicationResumed { at, .. }
            | PortalEvent::MedicationStopped { at, .. }
            | PortalEvent::PersonAdded { at, .. }
            | PortalEvent::PersonUpdated { at, .. }
            | PortalEvent::PersonRemoved { at, .. }
            | PortalEvent::CrisisPlanRevised { at, .. }
            | PortalEvent::ExerciseStarted { at, .. }
            | PortalEvent::ExerciseCompleted { at, .. } => at,
        }
    }

    /// The goal this event concerns, if any (activities belong to their goal).
    pub fn goal_id(&self) -> Option<Uuid> {
        match self {
            PortalEvent::GoalSet { goal_id, .. }
            | PortalEvent::GoalRevised { goal_id, .. }
            | PortalEvent::GoalAchieved { goal_id, .. }
            | PortalEvent::GoalAbandoned { goal_id, .. }
            | PortalEvent::ActivityPlanned { goal_id, .. }
            | PortalEvent::ActivityCompleted { goal_id, .. }
            | PortalEvent::ActivityDropped { goal_id, .. } => Some(*goal_id),
            _ => None,
        }
    }

    /// The section this event belongs to.
    pub fn section(&self) -> Section {
        Section::of_event_type(&self.event_type())
    }

    /// The toolbox item (medication, person, exercise log entry) this event concerns.
    pub fn item_id(&self) -> Option<Uuid> {
        match self {
            PortalEvent::MedicationAdded { medication_id, .. }
            | PortalEvent::MedicationChanged { medication_id, .. }
            | PortalEvent::MedicationPaused { medication_id, .. }
            | PortalEvent::MedicationResumed { medication_id, .. }
            | PortalEvent::MedicationStopped { medication_id, .. } => Some(*medication_id),
            PortalEvent::PersonAdded { person_id, .. }
            | PortalEvent::PersonUpdated { person_id, .. }
            | PortalEvent::PersonRemoved { person_id, .. } => Some(*person_id),
            PortalEvent::ExerciseStarted { entry_id, .. }
            | PortalEvent::ExerciseCompleted { entry_id, .. } => Some(*entry_id),
            _ => None,
        }
    }
}

impl PortalEvent {
    /// Every event type's stored name, as `event_type` gives it: add a new
    /// event here too (the API's test holds its `EventType` enum to this).
    pub const TYPES: [&'static str; 21] = [
        "PortalOpened",
        "LifeDomainAdded",
        "StatusRated",
        "GoalSet",
        "GoalRevised",
        "GoalAchieved",
        "GoalAbandoned",
        "ActivityPlanned",
        "ActivityCompleted",
        "ActivityDropped",
        "MedicationAdded",
        "MedicationChanged",
        "MedicationPaused",
        "MedicationResumed",
        "MedicationStopped",
        "PersonAdded",
        "PersonUpdated",
        "PersonRemoved",
        "CrisisPlanRevised",
        "ExerciseStarted",
        "ExerciseCompleted",
    ];
}

impl DomainEvent for PortalEvent {
    fn event_type(&self) -> String {
        match self {
            PortalEvent::PortalOpened { .. } => "PortalOpened",
            PortalEvent::LifeDomainAdded { .. } => "LifeDomainAdded",
            PortalEvent::StatusRated { .. } => "StatusRated",
            PortalEvent::GoalSet { .. } => "GoalSet",
            PortalEvent::GoalRevised { .. } => "GoalRevised",
            PortalEvent::GoalAchieved { .. } => "GoalAchieved",
            PortalEvent::GoalAbandoned { .. } => "GoalAbandoned",
            PortalEvent::ActivityPlanned { .. } => "ActivityPlanned",
            PortalEvent::ActivityCompleted { .. } => "ActivityCompleted",
            PortalEvent::ActivityDropped { .. } => "ActivityDropped",
            PortalEvent::MedicationAdded { .. } => "MedicationAdded",
            PortalEvent::MedicationChanged { .. } => "MedicationChanged",
            PortalEvent::MedicationPaused { .. } => "MedicationPaused",
            PortalEvent::MedicationResumed { .. } => "MedicationResumed",
            PortalEvent::MedicationStopped { .. } => "MedicationStopped",
            PortalEvent::PersonAdded { .. } => "PersonAdded",
            PortalEvent::PersonUpdated { .. } => "PersonUpdated",
            PortalEvent::PersonRemoved { .. } => "PersonRemoved",
            PortalEvent::CrisisPlanRevised { .. } => "CrisisPlanRevised",
            PortalEvent::ExerciseStarted { .. } => "ExerciseStarted",
            PortalEvent::ExerciseCompleted { .. } => "ExerciseCompleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

use crate::personal::{optional, other, text, Declarations, Declared, Owner};

/// Which fields of a portal's events are personal (sealed with the owner's
/// key) and which stay clear (`crate::personal`). Keys of life domains,
/// scores, ratings and the catalogue's exercise titles stay clear: rules and
/// research work with them.
pub const PERSONAL_DATA: Declarations = Declarations {
    aggregate_type: "Portal",
    events: &[
        Declared::clear("PortalOpened", &["owner", "organisation", "at"]),
        Declared {
            event_type: "LifeDomainAdded",
            owner: Owner::Aggregate,
            personal: &[text("name")],
            clear: &["key", "at"],
        },
        Declared {
            event_type: "StatusRated",
            owner: Owner::Aggregate,
            personal: &[text("note")],
            clear: &["domain", "score", "at"],
        },
        Declared {
            event_type: "GoalSet",
            owner: Owner::Aggregate,
            personal: &[text("title"), text("description")],
            clear: &["goal_id", "domain", "at"],
        },
        Declared {
            event_type: "GoalRevised",
            owner: Owner::Aggregate,
            personal: &[text("title"), text("description")],
            clear: &["goal_id", "at"],
        },
        Declared::clear("GoalAchieved", &["goal_id", "at"]),
        Declared {
            event_type: "GoalAbandoned",
            owner: Owner::Aggregate,
            personal: &[text("reason")],
            clear: &["goal_id", "at"],
        },
        Declared {
            event_type: "ActivityPlanned",
            owner: Owner::Aggregate,
            personal: &[text("title")],
            clear: &["goal_id", "activity_id", "at"],
        },
        Declared::clear("ActivityCompleted", &["goal_id", "activity_id", "at"]),
        Declared {
            event_type: "ActivityDropped",
            owner: Owner::Aggregate,
            personal: &[text("reason")],
            clear: &["goal_id", "activity_id", "at"],
        },
        Declared {
            event_type: "MedicationAdded",
            owner: Owner::Aggregate,
            personal: &[
                text("name"),
                text("dose"),
                text("schedule"),
                text("purpose"),
                text("prescriber"),
            ],
            clear: &["medication_id", "at"],
        },
        Declared {
            event_type: "MedicationChanged",
            owner: Owner::Aggregate,
            personal: &[text("dose"), text("schedule")],
            clear: &["medication_id", "at"],
        },
        Declared {
            event_type: "MedicationPaused",
            owner: Owner::Aggregate,
            personal: &[text("reason")],
            clear: &["medication_id", "at"],
        },
        Declared::clear("MedicationResumed", &["medication_id", "at"]),
        Declared {
            event_type: "MedicationStopped",
            owner: Owner::Aggregate,
            personal: &[text("reason")],
            clear: &["medication_id", "at"],
        },
        Declared {
            event_type: "PersonAdded",
            owner: Owner::Aggregate,
            personal: NETWORK_PERSON,
            clear: &["person_id", "at"],
        },
        Declared {
            event_type: "PersonUpdated",
            owner: Owner::Aggregate,
            personal: NETWORK_PERSON,
            clear: &["person_id", "at"],
        },
        Declared {
            event_type: "PersonRemoved",
            owner: Owner::Aggregate,
            personal: &[text("reason")],
            clear: &["person_id", "at"],
        },
        Declared {
            event_type: "CrisisPlanRevised",
            owner: Owner::Aggregate,
            personal: &[other(
                "plan",
                r#"{"warning_signs":[],"what_helps":[],"what_does_not_help":[],"contacts":[],"own_words":""}"#,
            )],
            clear: &["revision", "at"],
        },
        Declared::clear("ExerciseStarted", &["entry_id", "exercise", "title", "at"]),
        Declared {
            event_type: "ExerciseCompleted",
            owner: Owner::Aggregate,
            personal: &[text("reflection"), optional("rating")],
            clear: &["entry_id", "at"],
        },
    ],
};

/// Everything said of a person in the network map.
const NETWORK_PERSON: &[crate::personal::Personal] = &[
    text("display_name"),
    other("relation", "\"other\""),
    other("closeness", "0"),
    other("support", "[]"),
];
