//! Given/when/then tests: one per toolbox rule (medications, network map,
//! crisis plan, exercise log).

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::{CrisisContact, CrisisPlan, PersonDetails, RelationKind, SupportKind};
use crate::portal::limits::*;
use crate::portal::{ErrorKind, PortalCommand, PortalError, PortalEvent};
use crate::refusal::{InputError, Refusal};
use crate::text::TextProblem;

type Portal = crate::portal::Portal;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0)
        .single()
        .expect("valid time")
}

fn later() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, 30, 0)
        .single()
        .expect("valid time")
}

fn owner() -> Uuid {
    Uuid::from_u128(1)
}
fn med() -> Uuid {
    Uuid::from_u128(100)
}
fn other_med() -> Uuid {
    Uuid::from_u128(101)
}
fn person() -> Uuid {
    Uuid::from_u128(200)
}
fn other_person() -> Uuid {
    Uuid::from_u128(201)
}
fn entry() -> Uuid {
    Uuid::from_u128(300)
}

fn framework() -> TestFramework<Portal> {
    TestFramework::with(())
}

fn opened() -> PortalEvent {
    PortalEvent::PortalOpened {
        owner: owner(),
        organisation: "clinic-a".into(),
        at: t(),
    }
}

// ---------------------------------------------------------------- medications

fn med_added() -> PortalEvent {
    med_added_as(med(), "Lithium")
}

fn med_added_as(medication_id: Uuid, name: &str) -> PortalEvent {
    PortalEvent::MedicationAdded {
        medication_id,
        name: name.into(),
        dose: "400 mg".into(),
        schedule: "Morning and evening".into(),
        purpose: String::new(),
        prescriber: String::new(),
        at: t(),
    }
}

fn add_med(name: &str, dose: &str, schedule: &str) -> PortalCommand {
    PortalCommand::AddMedication {
        medication_id: med(),
        name: name.into(),
        dose: dose.into(),
        schedule: schedule.into(),
        purpose: String::new(),
        prescriber: String::new(),
        at: t(),
    }
}

fn med_paused() -> PortalEvent {
    PortalEvent::MedicationPaused {
        medication_id: med(),
        reason: String::new(),
        at: t(),
    }
}

fn med_stopped() -> PortalEvent {
    PortalEvent::MedicationStopped {
        medication_id: med(),
        reason: String::new(),
        at: t(),
    }
}

fn change_med(dose: Option<&str>, schedule: Option<&str>) -> PortalCommand {
    PortalCommand::ChangeMedication {
        medication_id: med(),
        dose: dose.map(str::to_string),
        schedule: schedule.map(str::to_string),
        at: later(),
    }
}

fn pause_med() -> PortalCommand {
    PortalCommand::PauseMedication {
        medication_id: med(),
        reason: String::new(),
        at: later(),
    }
}

fn resume_med() -> PortalCommand {
    PortalCommand::ResumeMedication {
        medication_id: med(),
        at: later(),
    }
}

fn stop_med() -> PortalCommand {
    PortalCommand::StopMedication {
        medication_id: med(),
        reason: String::new(),
        at: later(),
    }
}

fn med_wrong_state(state: &'static str, action: &'static str) -> PortalError {
    PortalError::WrongState {
        item: "medication",
        id: med(),
        state,
        action,
    }
}

#[test]
fn adding_a_medication_records_all_fields_trimmed() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddMedication {
            medication_id: med(),
            name: "  Lithium ".into(),
            dose: " 400 mg ".into(),
            schedule: "\tMorning and evening\n".into(),
            purpose: "  Mood stabiliser  ".into(),
            prescriber: " Dr. Hansen ".into(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::MedicationAdded {
            medication_id: med(),
            name: "Lithium".into(),
            dose: "400 mg".into(),
            schedule: "Morning and evening".into(),
            purpose: "Mood stabiliser".into(),
            prescriber: "Dr. Hansen".into(),
            at: t(),
        }]);
}

#[test]
fn a_medication_may_be_written_in_any_script_with_emoji() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddMedication {
            medication_id: med(),
            name: "ليثيوم 💊".into(),
            dose: "٤٠٠ ملغ".into(),
            schedule: "🌅 + 🌙".into(),
            purpose: "מייצב מצב רוח".into(),
            prescriber: String::new(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::MedicationAdded {
            medication_id: med(),
            name: "ليثيوم 💊".into(),
            dose: "٤٠٠ ملغ".into(),
            schedule: "🌅 + 🌙".into(),
            purpose: "מייצב מצב רוח".into(),
            prescriber: String::new(),
            at: t(),
        }]);
}

#[test]
fn a_medication_needs_a_name_a_dose_and_a_schedule() {
    for (command, field) in [
        (add_med("   ", "400 mg", "Daily"), "name"),
        (add_med("Lithium", "", "Daily"), "dose"),
        (add_med("Lithium", "400 mg", " \n\t "), "schedule"),
    ] {
        framework()
            .given(vec![opened()])
            .when(command)
            .then_expect_error(PortalError::Input(InputError::InvalidText {
                field,
                problem: TextProblem::Empty,
            }));
    }
}

#[test]
fn medication_text_is_limited_in_length() {
    let long = |n: usize| "x".repeat(n);
    let with_extra = |purpose: String, prescriber: String| PortalCommand::AddMedication {
        medication_id: med(),
        name: "Lithium".into(),
        dose: "400 mg".into(),
        schedule: "Daily".into(),
        purpose,
        prescriber,
        at: t(),
    };
    for (command, field, max) in [
        (
            add_med(&long(MED_NAME_MAX + 1), "400 mg", "Daily"),
            "name",
            MED_NAME_MAX,
        ),
        (
            add_med("Lithium", &long(MED_DOSE_MAX + 1), "Daily"),
            "dose",
            MED_DOSE_MAX,
        ),
        (
            add_med("Lithium", "400 mg", &long(MED_SCHEDULE_MAX + 1)),
            "schedule",
            MED_SCHEDULE_MAX,
        ),
        (
            with_extra(long(MED_PURPOSE_MAX + 1), String::new()),
            "purpose",
            MED_PURPOSE_MAX,
        ),
        (
            with_extra(String::new(), long(PERSON_NAME_MAX + 1)),
            "prescriber",
            PERSON_NAME_MAX,
        ),
    ] {
        framework()
            .given(vec![opened()])
            .when(command)
            .then_expect_error(PortalError::Input(InputError::InvalidText {
                field,
                problem: TextProblem::TooLong { max },
            }));
    }
    // Exactly at the limit is fine.
    framework()
        .given(vec![opened()])
        .when(add_med(&long(MED_NAME_MAX), "400 mg", "Daily"))
        .then_expect_events(vec![PortalEvent::MedicationAdded {
            medication_id: med(),
            name: long(MED_NAME_MAX),
            dose: "400 mg".into(),
            schedule: "Daily".into(),
            purpose: String::new(),
            prescriber: String::new(),
            at: t(),
        }]);
}

#[test]
fn a_control_character_in_a_medication_is_refused() {
    framework()
        .given(vec![opened()])
        .when(add_med("Lithium\u{7}", "400 mg", "Daily"))
        .then_expect_error(PortalError::Input(InputError::InvalidText {
            field: "name",
            problem: TextProblem::ControlCharacter,
        }));
}

#[test]
fn newline_and_tab_are_accepted_in_the_purpose() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddMedication {
            medication_id: med(),
            name: "Lithium".into(),
            dose: "400 mg".into(),
            schedule: "Daily".into(),
            purpose: "Mood\n\tstabiliser".into(),
            prescriber: String::new(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::MedicationAdded {
            medication_id: med(),
            name: "Lithium".into(),
            dose: "400 mg".into(),
            schedule: "Daily".into(),
            purpose: "Mood\n\tstabiliser".into(),
            prescriber: String::new(),
            at: t(),
        }]);
}

#[test]
fn a_medication_id_is_used_once() {
    framework()
        .given(vec![opened(), med_added()])
        .when(add_med("Sertraline", "50 mg", "Daily"))
        .then_expect_error(PortalError::DuplicateId {
            item: "medication",
            id: med(),
        });
}

#[test]
fn a_medication_name_is_used_once_among_current_ones_ignoring_case() {
    for given in [
        vec![opened(), med_added_as(other_med(), "Lithium")],
        vec![
            opened(),
            med_added_as(other_med(), "Lithium"),
            PortalEvent::MedicationPaused {
                medication_id: other_med(),
                reason: String::new(),
                at: t(),
            },
        ],
    ] {
        framework()
            .given(given)
            .when(add_med(" LITHIUM ", "300 mg", "Daily"))
            .then_expect_error(PortalError::DuplicateName {
                item: "medication",
                name: "LITHIUM".into(),
            });
    }
}

#[test]
fn a_stopped_medications_name_can_be_used_again() {
    framework()
        .given(vec![
            opened(),
            med_added_as(other_med(), "Lithium"),
            PortalEvent::MedicationStopped {
                medication_id: other_med(),
                reason: "side effects".into(),
                at: t(),
            },
        ])
        .when(add_med("lithium", "300 mg", "Evening"))
        .then_expect_events(vec![PortalEvent::MedicationAdded {
            medication_id: med(),
            name: "lithium".into(),
            dose: "300 mg".into(),
            schedule: "Evening".into(),
            purpose: String::new(),
            prescriber: String::new(),
            at: t(),
        }]);
}

#[test]
fn medications_are_limited() {
    let mut given = vec![opened()];
    for i in 0..MEDICATIONS_MAX {
        given.push(med_added_as(
            Uuid::from_u128(10_000 + i as u128),
            &format!("Medication {i}"),
        ));
    }
    framework()
        .given(given)
        .when(add_med("One more", "1 mg", "Daily"))
        .then_expect_error(PortalError::TooMany {
            items: "medications",
            max: MEDICATIONS_MAX,
        });
}

#[test]
fn changing_only_the_dose_keeps_the_schedule() {
    framework()
        .given(vec![opened(), med_added()])
        .when(change_med(Some(" 600 mg "), None))
        .then_expect_events(vec![PortalEvent::MedicationChanged {
            medication_id: med(),
            dose: "600 mg".into(),
            schedule: "Morning and evening".into(),
            at: later(),
        }]);
}

#[test]
fn changing_only_the_schedule_keeps_the_dose() {
    framework()
        .given(vec![opened(), med_added()])
        .when(change_med(None, Some("Evening only")))
        .then_expect_events(vec![PortalEvent::MedicationChanged {
            medication_id: med(),
            dose: "400 mg".into(),
            schedule: "Evening only".into(),
            at: later(),
        }]);
}

#[test]
fn a_paused_medication_can_be_changed() {
    framework()
        .given(vec![opened(), med_added(), med_paused()])
        .when(change_med(Some("200 mg"), Some("Evening")))
        .then_expect_events(vec![PortalEvent::MedicationChanged {
            medication_id: med(),
            dose: "200 mg".into(),
            schedule: "Evening".into(),
            at: later(),
        }]);
}

#[test]
fn a_change_to_the_same_values_is_refused() {
    for command in [
        change_med(Some("400 mg"), Some("Morning and evening")),
        change_med(Some("  400 mg  "), None),
        change_med(None, None),
    ] {
        framework()
            .given(vec![opened(), med_added()])
            .when(command)
            .then_expect_error(PortalError::NothingChanged("medication"));
    }
}

#[test]
fn a_changed_dose_must_not_be_blank() {
    framework()
        .given(vec![opened(), med_added()])
        .when(change_med(Some("  "), None))
        .then_expect_error(PortalError::Input(InputError::InvalidText {
            field: "dose",
            problem: TextProblem::Empty,
        }));
}

#[test]
fn a_stopped_medication_cannot_be_changed_paused_resumed_or_stopped() {
    let given = vec![opened(), med_added(), med_stopped()];
    for (command, action) in [
        (change_med(Some("1 mg"), None), "changed"),
        (pause_med(), "paused"),
        (resume_med(), "resumed"),
        (stop_med(), "stopped"),
    ] {
        framework()
            .given(given.clone())
            .when(command)
            .then_expect_error(med_wrong_state("stopped", action));
    }
}

#[test]
fn an_active_medication_can_be_paused_with_a_reason() {
    framework()
        .given(vec![opened(), med_added()])
        .when(PortalCommand::PauseMedication {
            medication_id: med(),
            reason: "  holiday  ".into(),
            at: later(),
        })
        .then_expect_events(vec![PortalEvent::MedicationPaused {
            medication_id: med(),
            reason: "holiday".into(),
            at: later(),
        }]);
}

#[test]
fn a_paused_medication_cannot_be_paused_again() {
    framework()
        .given(vec![opened(), med_added(), med_paused()])
        .when(pause_med())
        .then_expect_error(med_wrong_state("paused", "paused"));
}

#[test]
fn an_active_medication_cannot_be_resumed() {
    framework()
        .given(vec![opened(), med_added()])
        .when(resume_med())
        .then_expect_error(med_wrong_state("active", "resumed"));
}

#[test]
fn a_paused_medication_can_be_resumed_and_then_paused_again() {
    framework()
        .given(vec![opened(), med_added(), med_paused()])
        .when(resume_med())
        .then_expect_events(vec![PortalEvent::MedicationResumed {
            medication_id: med(),
            at: later(),
        }]);
    framework()
        .given(vec![
            opened(),
            med_added(),
            med_paused(),
            PortalEvent::MedicationResumed {
                medication_id: med(),
                at: t(),
            },
        ])
        .when(pause_med())
        .then_expect_events(vec![PortalEvent::MedicationPaused {
            medication_id: med(),
            reason: String::new(),
            at: later(),
        }]);
}

#[test]
fn a_paused_medication_can_be_stopped() {
    framework()
        .given(vec![opened(), med_added(), med_paused()])
        .when(PortalCommand::StopMedication {
            medication_id: med(),
            reason: "Doctor's advice 👩‍⚕️".into(),
            at: later(),
        })
        .then_expect_events(vec![PortalEvent::MedicationStopped {
            medication_id: med(),
            reason: "Doctor's advice 👩‍⚕️".into(),
            at: later(),
        }]);
}

#[test]
fn an_unknown_medication_is_refused() {
    for command in [
        change_med(Some("1 mg"), None),
        pause_med(),
        resume_med(),
        stop_med(),
    ] {
        framework()
            .given(vec![opened(), med_added_as(other_med(), "Lithium")])
            .when(command)
            .then_expect_error(PortalError::Unknown {
                item: "medication",
                id: med(),
            });
    }
}

#[test]
fn toolbox_commands_need_an_open_portal() {
    for command in [
        add_med("Lithium", "400 mg", "Daily"),
        stop_med(),
        PortalCommand::AddPerson {
            person_id: person(),
            details: details("Anna", 3, vec![]),
            at: t(),
        },
        PortalCommand::ReviseCrisisPlan {
            plan: signs(&["Sleeping badly"]),
            at: t(),
        },
        start_exercise(Some("Mindfulness")),
        complete_exercise(Some(3)),
    ] {
        framework()
            .given_no_previous_events()
            .when(command)
            .then_expect_error(PortalError::NotOpen);
    }
}

// ---------------------------------------------------------------- network map

fn details(name: &str, closeness: i32, support: Vec<SupportKind>) -> PersonDetails {
    PersonDetails {
        display_name: name.into(),
        relation: RelationKind::Friend,
        closeness,
        support,
    }
}

fn person_added() -> PortalEvent {
    person_added_as(person(), "Anna")
}

fn person_added_as(person_id: Uuid, name: &str) -> PortalEvent {
    PortalEvent::PersonAdded {
        person_id,
        display_name: name.into(),
        relation: RelationKind::Friend,
        closeness: 2,
        support: vec![SupportKind::Emotional, SupportKind::Social],
        at: t(),
    }
}

fn person_removed(person_id: Uuid) -> PortalEvent {
    PortalEvent::PersonRemoved {
        person_id,
        reason: String::new(),
        at: t(),
    }
}

fn add_person(name: &str) -> PortalCommand {
    PortalCommand::AddPerson {
        person_id: person(),
        details: details(name, 2, vec![SupportKind::Practical]),
        at: t(),
    }
}

#[test]
fn adding_a_person_records_them_trimmed() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddPerson {
            person_id: person(),
            details: PersonDetails {
                display_name: "  Dr. Ødegård  ".into(),
                relation: RelationKind::Professional,
                closeness: 4,
                support: vec![SupportKind::Informational],
            },
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::PersonAdded {
            person_id: person(),
            display_name: "Dr. Ødegård".into(),
            relation: RelationKind::Professional,
            closeness: 4,
            support: vec![SupportKind::Informational],
            at: t(),
        }]);
}

#[test]
fn closeness_outside_one_to_five_is_refused() {
    for closeness in [0, 6, -1] {
        framework()
            .given(vec![opened()])
            .when(PortalCommand::AddPerson {
                person_id: person(),
                details: details("Anna", closeness, vec![]),
                at: t(),
            })
            .then_expect_error(PortalError::Input(InputError::OutOfRange {
                field: "closeness",
                got: closeness,
                min: CLOSENESS_MIN,
                max: CLOSENESS_MAX,
            }));
    }
}

#[test]
fn a_display_name_is_required_and_limited() {
    for (name, problem) in [
        (" ".to_string(), TextProblem::Empty),
        (
            "a".repeat(PERSON_NAME_MAX + 1),
            TextProblem::TooLong {
                max: PERSON_NAME_MAX,
            },
        ),
    ] {
        framework()
            .given(vec![opened()])
            .when(add_person(&name))
            .then_expect_error(PortalError::Input(InputError::InvalidText {
                field: "displayName",
                problem,
            }));
    }
}

#[test]
fn support_kinds_are_recorded_sorted_without_repeats() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddPerson {
            person_id: person(),
            details: details(
                "Anna",
                1,
                vec![
                    SupportKind::Other,
                    SupportKind::Emotional,
                    SupportKind::Financial,
                    SupportKind::Emotional,
                    SupportKind::Practical,
                    SupportKind::Other,
                ],
            ),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::PersonAdded {
            person_id: person(),
            display_name: "Anna".into(),
            relation: RelationKind::Friend,
            closeness: 1,
            support: vec![
                SupportKind::Emotional,
                SupportKind::Practical,
                SupportKind::Financial,
                SupportKind::Other,
            ],
            at: t(),
        }]);
}

#[test]
fn a_person_id_is_used_once() {
    framework()
        .given(vec![opened(), person_added()])
        .when(add_person("Bjørn"))
        .then_expect_error(PortalError::DuplicateId {
            item: "person",
            id: person(),
        });
}

#[test]
fn a_display_name_is_used_once_among_present_people_ignoring_case() {
    framework()
        .given(vec![opened(), person_added_as(other_person(), "Anna")])
        .when(add_person(" ANNA "))
        .then_expect_error(PortalError::DuplicateName {
            item: "person",
            name: "ANNA".into(),
        });
}

#[test]
fn a_removed_persons_name_can_be_used_again() {
    framework()
        .given(vec![
            opened(),
            person_added_as(other_person(), "Anna"),
            person_removed(other_person()),
        ])
        .when(add_person("anna"))
        .then_expect_events(vec![PortalEvent::PersonAdded {
            person_id: person(),
            display_name: "anna".into(),
            relation: RelationKind::Friend,
            closeness: 2,
            support: vec![SupportKind::Practical],
            at: t(),
        }]);
}

#[test]
fn updating_a_person_records_all_their_details() {
    framework()
        .given(vec![opened(), person_added()])
        .when(PortalCommand::UpdatePerson {
            person_id: person(),
            details: PersonDetails {
                display_name: "Anna K.".into(),
                relation: RelationKind::Peer,
                closeness: 5,
                support: vec![SupportKind::Social, SupportKind::Emotional],
            },
            at: later(),
        })
        .then_expect_events(vec![PortalEvent::PersonUpdated {
            person_id: person(),
            display_name: "Anna K.".into(),
            relation: RelationKind::Peer,
            closeness: 5,
            support: vec![SupportKind::Emotional, SupportKind::Social],
            at: later(),
        }]);
}

#[test]
fn a_person_may_not_take_the_name_of_another_present_person() {
    framework()
        .given(vec![
            opened(),
            person_added(),
            person_added_as(other_person(), "Bjørn"),
        ])
        .when(PortalCommand::UpdatePerson {
            person_id: person(),
            details: details("BJØRN", 2, vec![]),
            at: later(),
        })
        .then_expect_error(PortalError::DuplicateName {
            item: "person",
            name: "BJØRN".into(),
        });
}

#[test]
fn an_update_that_changes_nothing_is_refused() {
    framework()
        .given(vec![opened(), person_added()])
        .when(PortalCommand::UpdatePerson {
            person_id: person(),
            details: details(
                " Anna ",
                2,
                vec![
                    SupportKind::Social,
                    SupportKind::Emotional,
                    SupportKind::Social,
                ],
            ),
            at: later(),
        })
        .then_expect_error(PortalError::NothingChanged("person"));
}

#[test]
fn a_removed_person_cannot_be_updated_or_removed_again() {
    let given = vec![opened(), person_added(), person_removed(person())];
    for (command, action) in [
        (
            PortalCommand::UpdatePerson {
                person_id: person(),
                details: details("Anna", 3, vec![]),
                at: later(),
            },
            "updated",
        ),
        (
            PortalCommand::RemovePerson {
                person_id: person(),
                reason: String::new(),
                at: later(),
            },
            "removed",
        ),
    ] {
        framework()
            .given(given.clone())
            .when(command)
            .then_expect_error(PortalError::WrongState {
                item: "person",
                id: person(),
                state: "removed",
                action,
            });
    }
}

#[test]
fn removing_a_person_records_the_reason() {
    framework()
        .given(vec![opened(), person_added()])
        .when(PortalCommand::RemovePerson {
            person_id: person(),
            reason: " moved away ".into(),
            at: later(),
        })
        .then_expect_events(vec![PortalEvent::PersonRemoved {
            person_id: person(),
            reason: "moved away".into(),
            at: later(),
        }]);
}

#[test]
fn an_unknown_person_is_refused() {
    for command in [
        PortalCommand::UpdatePerson {
            person_id: person(),
            details: details("Anna", 3, vec![]),
            at: later(),
        },
        PortalCommand::RemovePerson {
            person_id: person(),
            reason: String::new(),
            at: later(),
        },
    ] {
        framework()
            .given(vec![opened(), person_added_as(other_person(), "Bjørn")])
            .when(command)
            .then_expect_error(PortalError::Unknown {
                item: "person",
                id: person(),
            });
    }
}

// ---------------------------------------------------------------- crisis plan

fn signs(items: &[&str]) -> CrisisPlan {
    CrisisPlan {
        warning_signs: items.iter().map(|s| s.to_string()).collect(),
        ..CrisisPlan::default()
    }
}

fn contact(name: &str, phone: &str) -> CrisisContact {
    CrisisContact {
        name: name.into(),
        phone: phone.into(),
        when_to_call: String::new(),
    }
}

fn with_contacts(contacts: Vec<CrisisContact>) -> CrisisPlan {
    CrisisPlan {
        contacts,
        ..CrisisPlan::default()
    }
}

fn revise(plan: CrisisPlan) -> PortalCommand {
    PortalCommand::ReviseCrisisPlan { plan, at: later() }
}

fn revised(revision: u32, plan: CrisisPlan) -> PortalEvent {
    PortalEvent::CrisisPlanRevised {
        revision,
        plan,
        at: later(),
    }
}

#[test]
fn the_first_crisis_plan_is_revision_one_and_stored_trimmed() {
    framework()
        .given(vec![opened()])
        .when(revise(CrisisPlan {
            warning_signs: vec!["  Sleeping badly ".into(), "لا آكل".into()],
            what_helps: vec!["Walks 🚶".into()],
            what_does_not_help: vec![" Being told to cheer up ".into()],
            contacts: vec![CrisisContact {
                name: " Anna ".into(),
                phone: " +47 22 33 44 55 ".into(),
                when_to_call: " Any time ".into(),
            }],
            own_words: "  I will get through this.\n\tOne day at a time.  ".into(),
        }))
        .then_expect_events(vec![revised(
            1,
            CrisisPlan {
                warning_signs: vec!["Sleeping badly".into(), "لا آكل".into()],
                what_helps: vec!["Walks 🚶".into()],
                what_does_not_help: vec!["Being told to cheer up".into()],
                contacts: vec![CrisisContact {
                    name: "Anna".into(),
                    phone: "+47 22 33 44 55".into(),
                    when_to_call: "Any time".into(),
                }],
                own_words: "I will get through this.\n\tOne day at a time.".into(),
            },
        )]);
}

#[test]
fn the_next_crisis_plan_revision_is_numbered_after_the_last() {
    framework()
        .given(vec![opened(), revised(1, signs(&["Sleeping badly"]))])
        .when(revise(signs(&["Sleeping badly", "Not eating"])))
        .then_expect_events(vec![revised(2, signs(&["Sleeping badly", "Not eating"]))]);
}

#[test]
fn an_empty_crisis_plan_is_refused() {
    for plan in [
        CrisisPlan::default(),
        CrisisPlan {
            own_words: "   \n ".into(),
            ..CrisisPlan::default()
        },
    ] {
        framework()
            .given(vec![opened()])
            .when(revise(plan))
            .then_expect_error(PortalError::EmptyCrisisPlan);
    }
}

#[test]
fn a_crisis_plan_identical_to_the_latest_is_refused() {
    framework()
        .given(vec![opened(), revised(1, signs(&["Sleeping badly"]))])
        .when(revise(signs(&[" Sleeping badly "])))
        .then_expect_error(PortalError::NothingChanged("crisis plan"));
}

#[test]
fn a_blank_crisis_plan_item_is_refused_with_its_index() {
    framework()
        .given(vec![opened()])
        .when(revise(signs(&["Sleeping badly", "Not eating", "  "])))
        .then_expect_error(PortalError::InvalidItem {
            field: "warningSigns",
            index: 2,
            problem: TextProblem::Empty,
        });
}

#[test]
fn a_too_long_crisis_plan_item_is_refused() {
    framework()
        .given(vec![opened()])
        .when(revise(CrisisPlan {
            what_helps: vec!["Music".into(), "x".repeat(PLAN_ITEM_MAX + 1)],
            ..CrisisPlan::default()
        }))
        .then_expect_error(PortalError::InvalidItem {
            field: "whatHelps",
            index: 1,
            problem: TextProblem::TooLong { max: PLAN_ITEM_MAX },
        });
}

#[test]
fn crisis_plan_lists_are_limited() {
    let items: Vec<String> = (0..=PLAN_LIST_MAX).map(|i| format!("Thing {i}")).collect();
    framework()
        .given(vec![opened()])
        .when(revise(CrisisPlan {
            what_does_not_help: items,
            ..CrisisPlan::default()
        }))
        .then_expect_error(PortalError::TooManyItems {
            field: "whatDoesNotHelp",
            max: PLAN_LIST_MAX,
        });
}

#[test]
fn crisis_contacts_are_limited() {
    let contacts = (0..=PLAN_CONTACTS_MAX)
        .map(|i| contact(&format!("Contact {i}"), "112"))
        .collect();
    framework()
        .given(vec![opened()])
        .when(revise(with_contacts(contacts)))
        .then_expect_error(PortalError::TooManyItems {
            field: "contacts",
            max: PLAN_CONTACTS_MAX,
        });
}

#[test]
fn a_bad_phone_number_is_refused_with_its_index() {
    for phone in [
        "",
        "12",
        "call me",
        "+47 22 33 44 55 ext",
        "1-2",
        "123#",
        &"1".repeat(PHONE_MAX + 1),
    ] {
        framework()
            .given(vec![opened()])
            .when(revise(with_contacts(vec![
                contact("Anna", "113"),
                contact("Bjørn", phone),
            ])))
            .then_expect_error(PortalError::InvalidPhone { index: 1 });
    }
}

#[test]
fn common_phone_formats_are_accepted() {
    let phones = [
        "+47 22 33 44 55",
        "(020) 123-4567",
        "113",
        "0800.123.456",
        &"1".repeat(PHONE_MAX),
    ];
    let contacts: Vec<CrisisContact> = phones
        .iter()
        .enumerate()
        .map(|(i, phone)| contact(&format!("Contact {i}"), phone))
        .collect();
    framework()
        .given(vec![opened()])
        .when(revise(with_contacts(contacts.clone())))
        .then_expect_events(vec![revised(1, with_contacts(contacts))]);
}

#[test]
fn crisis_contacts_need_distinct_names() {
    framework()
        .given(vec![opened()])
        .when(revise(with_contacts(vec![
            contact("Anna", "113"),
            contact(" ANNA ", "22 33 44 55"),
        ])))
        .then_expect_error(PortalError::DuplicateName {
            item: "crisis contact",
            name: "ANNA".into(),
        });
}

#[test]
fn a_crisis_contact_needs_a_name() {
    framework()
        .given(vec![opened()])
        .when(revise(with_contacts(vec![contact("  ", "113")])))
        .then_expect_error(PortalError::InvalidItem {
            field: "contacts.name",
            index: 0,
            problem: TextProblem::Empty,
        });
}

#[test]
fn own_words_are_limited() {
    framework()
        .given(vec![opened()])
        .when(revise(CrisisPlan {
            own_words: "ö".repeat(OWN_WORDS_MAX + 1),
            ..CrisisPlan::default()
        }))
        .then_expect_error(PortalError::Input(InputError::InvalidText {
            field: "ownWords",
            problem: TextProblem::TooLong { max: OWN_WORDS_MAX },
        }));
}

// ---------------------------------------------------------------- exercises

fn start_exercise(catalogue_title: Option<&str>) -> PortalCommand {
    PortalCommand::StartExercise {
        entry_id: entry(),
        exercise: "mindfulness".into(),
        catalogue_title: catalogue_title.map(str::to_string),
        at: t(),
    }
}

fn exercise_started() -> PortalEvent {
    PortalEvent::ExerciseStarted {
        entry_id: entry(),
        exercise: "mindfulness".into(),
        title: "Mindfulness".into(),
        at: t(),
    }
}

fn complete_exercise(rating: Option<i32>) -> PortalCommand {
    PortalCommand::CompleteExercise {
        entry_id: entry(),
        reflection: String::new(),
        rating,
        at: later(),
    }
}

#[test]
fn starting_a_catalogue_exercise_records_its_title() {
    framework()
        .given(vec![opened()])
        .when(start_exercise(Some("Mindfulness")))
        .then_expect_events(vec![exercise_started()]);
}

#[test]
fn an_exercise_not_in_the_catalogue_is_refused() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::StartExercise {
            entry_id: entry(),
            exercise: "astral_travel".into(),
            catalogue_title: None,
            at: t(),
        })
        .then_expect_error(PortalError::UnknownExercise("astral_travel".into()));
}

#[test]
fn an_exercise_entry_id_is_used_once() {
    framework()
        .given(vec![opened(), exercise_started()])
        .when(start_exercise(Some("Mindfulness")))
        .then_expect_error(PortalError::DuplicateId {
            item: "exercise log entry",
            id: entry(),
        });
}

#[test]
fn completing_an_exercise_records_the_rating_and_reflection() {
    for rating in RATING_MIN..=RATING_MAX {
        framework()
            .given(vec![opened(), exercise_started()])
            .when(PortalCommand::CompleteExercise {
                entry_id: entry(),
                reflection: "  Calmer afterwards 😌\nwill repeat ".into(),
                rating: Some(rating),
                at: later(),
            })
            .then_expect_events(vec![PortalEvent::ExerciseCompleted {
                entry_id: entry(),
                reflection: "Calmer afterwards 😌\nwill repeat".into(),
                rating: Some(rating),
                at: later(),
            }]);
    }
}

#[test]
fn a_rating_outside_one_to_five_is_refused() {
    for got in [0, 6] {
        framework()
            .given(vec![opened(), exercise_started()])
            .when(complete_exercise(Some(got)))
            .then_expect_error(PortalError::Input(InputError::OutOfRange {
                field: "rating",
                got,
                min: RATING_MIN,
                max: RATING_MAX,
            }));
    }
}

#[test]
fn a_rating_may_be_left_out() {
    framework()
        .given(vec![opened(), exercise_started()])
        .when(complete_exercise(None))
        .then_expect_events(vec![PortalEvent::ExerciseCompleted {
            entry_id: entry(),
            reflection: String::new(),
            rating: None,
            at: later(),
        }]);
}

#[test]
fn an_exercise_is_completed_once() {
    framework()
        .given(vec![
            opened(),
            exercise_started(),
            PortalEvent::ExerciseCompleted {
                entry_id: entry(),
                reflection: String::new(),
                rating: Some(4),
                at: t(),
            },
        ])
        .when(complete_exercise(Some(5)))
        .then_expect_error(PortalError::WrongState {
            item: "exercise log entry",
            id: entry(),
            state: "completed",
            action: "completed again",
        });
}

#[test]
fn an_unknown_exercise_entry_cannot_be_completed() {
    framework()
        .given(vec![opened()])
        .when(complete_exercise(Some(3)))
        .then_expect_error(PortalError::Unknown {
            item: "exercise log entry",
            id: entry(),
        });
}

// ---------------------------------------------------------------- error kinds

#[test]
fn unknown_items_are_not_found_and_wrong_states_failed_preconditions() {
    for unknown in ["medication", "person", "exercise log entry"] {
        assert_eq!(
            PortalError::Unknown {
                item: unknown,
                id: med(),
            }
            .kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(
        PortalError::UnknownExercise("x".into()).kind(),
        ErrorKind::NotFound
    );
    for state in [
        med_wrong_state("stopped", "changed"),
        PortalError::NothingChanged("medication"),
    ] {
        assert_eq!(state.kind(), ErrorKind::FailedPrecondition, "{state}");
    }
    for bad in [
        PortalError::EmptyCrisisPlan,
        PortalError::InvalidPhone { index: 0 },
        PortalError::Input(InputError::OutOfRange {
            field: "rating",
            got: 0,
            min: RATING_MIN,
            max: RATING_MAX,
        }),
    ] {
        assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
    }
}

#[test]
fn an_exercise_key_that_is_not_a_key_is_bad_input() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::StartExercise {
            entry_id: entry(),
            exercise: "x".repeat(41),
            catalogue_title: None,
            at: t(),
        })
        .then_expect_error(PortalError::InvalidExerciseKey { max: 40 });
}
