//! The exercise catalogue of an organisation: the default exercises every
//! organisation has, and the ones its admins add. One aggregate per
//! organisation (its id is the organisation's name).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::portal::limits::{DOMAIN_KEY_MAX, EXERCISES_MAX, EXERCISE_TITLE_MAX, NOTE_MAX};
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type name in the event store.
pub const AGGREGATE_TYPE: &str = "ExerciseCatalogue";

/// The exercises every organisation starts with: (key, title, description).
pub const DEFAULT_EXERCISES: &[(&str, &str, &str)] = &[
    (
        "sleep_hygiene",
        "Sleep hygiene",
        "Regular sleep times, a calm evening routine and a bedroom for sleeping.",
    ),
    (
        "mindfulness",
        "Mindfulness",
        "A few minutes of attention to breath, body and surroundings, without judging.",
    ),
    (
        "strengths_and_resources",
        "Strengths and resources",
        "Write down what you are good at and what and who helps you.",
    ),
];

/// A rule of the exercise catalogue refused a command: all the client's to
/// fix ([`ErrorKind::BadInput`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogueError {
    /// The key, title or description breaks a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("a {item} named `{name}` already exists")]
    DuplicateName { item: &'static str, name: String },
    #[error("at most {max} {items} are allowed")]
    TooMany { items: &'static str, max: usize },
}

impl Refusal for CatalogueError {
    fn kind(&self) -> ErrorKind {
        match self {
            CatalogueError::Input(input) => input.kind(),
            CatalogueError::DuplicateName { .. } | CatalogueError::TooMany { .. } => {
                ErrorKind::FailedPrecondition
            }
        }
    }
}

/// One exercise of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    pub title: String,
    pub description: String,
    /// False for the defaults, true for exercises an admin added.
    pub added: bool,
}

/// An organisation's exercise catalogue, folded from its events over the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    pub exercises: BTreeMap<String, Exercise>,
}

impl Default for Catalogue {
    fn default() -> Self {
        let exercises = DEFAULT_EXERCISES
            .iter()
            .map(|(key, title, description)| {
                (
                    (*key).to_string(),
                    Exercise {
                        title: (*title).to_string(),
                        description: (*description).to_string(),
                        added: false,
                    },
                )
            })
            .collect();
        Catalogue { exercises }
    }
}

/// What an admin asks of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogueCommand {
    /// Add an exercise to the organisation's catalogue.
    AddExercise {
        key: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
}

/// Facts recorded in a catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogueEvent {
    ExerciseAdded {
        key: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
}

impl CatalogueEvent {
    /// When the fact happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CatalogueEvent::ExerciseAdded { at, .. } => *at,
        }
    }
}

/// The catalogue is the organisation's, written by its admins: nothing in it
/// is anyone's personal data (`crate::personal`).
pub const PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: AGGREGATE_TYPE,
    events: &[crate::personal::Declared::clear(
        "ExerciseAdded",
        &["key", "title", "description", "at"],
    )],
};

impl DomainEvent for CatalogueEvent {
    fn event_type(&self) -> String {
        match self {
            CatalogueEvent::ExerciseAdded { .. } => "ExerciseAdded".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Catalogue {
    /// Decides a command: the events it causes, or the rule it breaks.
    pub fn decide(&self, command: CatalogueCommand) -> Result<Vec<CatalogueEvent>, CatalogueError> {
        match command {
            CatalogueCommand::AddExercise {
                key,
                title,
                description,
                at,
            } => {
                if !text::key_ok(&key, DOMAIN_KEY_MAX) {
                    return Err(InputError::InvalidDomainKey {
                        max: DOMAIN_KEY_MAX,
                    }
                    .into());
                }
                let title = text::required(&title, EXERCISE_TITLE_MAX)
                    .map_err(InputError::text("title"))?;
                let description = text::optional(&description, NOTE_MAX)
                    .map_err(InputError::text("description"))?;
                if self.exercises.contains_key(&key) {
                    return Err(CatalogueError::DuplicateName {
                        item: "exercise key",
                        name: key,
                    });
                }
                if self
                    .exercises
                    .values()
                    .any(|e| e.title.to_lowercase() == title.to_lowercase())
                {
                    return Err(CatalogueError::DuplicateName {
                        item: "exercise",
                        name: title,
                    });
                }
                if self.exercises.values().filter(|e| e.added).count() >= EXERCISES_MAX {
                    return Err(CatalogueError::TooMany {
                        items: "added exercises",
                        max: EXERCISES_MAX,
                    });
                }
                Ok(vec![CatalogueEvent::ExerciseAdded {
                    key,
                    title,
                    description,
                    at,
                }])
            }
        }
    }
}

impl Aggregate for Catalogue {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = CatalogueCommand;
    type Event = CatalogueEvent;
    type Error = CatalogueError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            CatalogueEvent::ExerciseAdded {
                key,
                title,
                description,
                ..
            } => {
                self.exercises.insert(
                    key,
                    Exercise {
                        title,
                        description,
                        added: true,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::text::TextProblem;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0).unwrap()
    }

    fn add(key: &str, title: &str) -> CatalogueCommand {
        CatalogueCommand::AddExercise {
            key: key.into(),
            title: title.into(),
            description: "Five slow breaths".into(),
            at: t(),
        }
    }

    fn added(key: &str, title: &str) -> CatalogueEvent {
        CatalogueEvent::ExerciseAdded {
            key: key.into(),
            title: title.into(),
            description: "Five slow breaths".into(),
            at: t(),
        }
    }

    #[test]
    fn defaults_are_there_without_events() {
        let c = Catalogue::default();
        assert_eq!(c.exercises.len(), 3);
        assert!(c.exercises.contains_key("mindfulness"));
    }

    #[test]
    fn an_admin_adds_an_exercise() {
        TestFramework::<Catalogue>::with(())
            .given_no_previous_events()
            .when(add("breathing", "Breathing 🌬"))
            .then_expect_events(vec![added("breathing", "Breathing 🌬")]);
    }

    #[test]
    fn keys_and_titles_are_unique_defaults_included() {
        TestFramework::<Catalogue>::with(())
            .given_no_previous_events()
            .when(add("mindfulness", "Other"))
            .then_expect_error(CatalogueError::DuplicateName {
                item: "exercise key",
                name: "mindfulness".into(),
            });
        TestFramework::<Catalogue>::with(())
            .given(vec![added("breathing", "Breathing")])
            .when(add("breath2", " BREATHING "))
            .then_expect_error(CatalogueError::DuplicateName {
                item: "exercise",
                name: "BREATHING".into(),
            });
    }

    #[test]
    fn key_and_title_are_checked() {
        TestFramework::<Catalogue>::with(())
            .given_no_previous_events()
            .when(add("Bad Key", "x"))
            .then_expect_error(InputError::InvalidDomainKey { max: 40 }.into());
        TestFramework::<Catalogue>::with(())
            .given_no_previous_events()
            .when(add("walk", "  "))
            .then_expect_error(CatalogueError::Input(InputError::InvalidText {
                field: "title",
                problem: TextProblem::Empty,
            }));
    }

    #[test]
    fn at_most_so_many_exercises_are_added() {
        let given = (0..EXERCISES_MAX)
            .map(|i| added(&format!("e{i}"), &format!("E {i}")))
            .collect();
        TestFramework::<Catalogue>::with(())
            .given(given)
            .when(add("one_more", "One more"))
            .then_expect_error(CatalogueError::TooMany {
                items: "added exercises",
                max: EXERCISES_MAX,
            });
    }

    #[test]
    fn kinds_of_catalogue_refusals() {
        for state in [
            CatalogueError::DuplicateName {
                item: "exercise",
                name: "Breathing".into(),
            },
            CatalogueError::TooMany {
                items: "added exercises",
                max: EXERCISES_MAX,
            },
        ] {
            assert_eq!(state.kind(), ErrorKind::FailedPrecondition, "{state}");
        }
        let bad: CatalogueError = InputError::InvalidDomainKey { max: 40 }.into();
        assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
    }
}
