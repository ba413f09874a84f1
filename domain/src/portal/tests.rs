//! Given/when/then tests: one per portal rule.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::refusal::InputError;
use crate::text::TextProblem;

type Portal = super::Portal;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0)
        .single()
        .expect("valid time")
}

fn owner() -> Uuid {
    Uuid::from_u128(1)
}
fn goal() -> Uuid {
    Uuid::from_u128(10)
}
fn activity() -> Uuid {
    Uuid::from_u128(20)
}

fn opened() -> PortalEvent {
    PortalEvent::PortalOpened {
        owner: owner(),
        organisation: "clinic-a".into(),
        at: t(),
    }
}

fn goal_set() -> PortalEvent {
    PortalEvent::GoalSet {
        goal_id: goal(),
        domain: "housing".into(),
        title: "Find a flat".into(),
        description: String::new(),
        at: t(),
    }
}

fn activity_planned() -> PortalEvent {
    PortalEvent::ActivityPlanned {
        goal_id: goal(),
        activity_id: activity(),
        title: "Call the housing office".into(),
        at: t(),
    }
}

fn framework() -> TestFramework<Portal> {
    TestFramework::with(())
}

#[test]
fn opening_a_new_portal_records_it() {
    framework()
        .given_no_previous_events()
        .when(PortalCommand::OpenPortal {
            owner: owner(),
            organisation: "clinic-a".into(),
            at: t(),
        })
        .then_expect_events(vec![opened()]);
}

#[test]
fn a_portal_opens_only_once() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::OpenPortal {
            owner: owner(),
            organisation: "clinic-a".into(),
            at: t(),
        })
        .then_expect_error(PortalError::AlreadyOpen);
}

#[test]
fn nothing_happens_in_a_portal_not_yet_opened() {
    framework()
        .given_no_previous_events()
        .when(PortalCommand::AchieveGoal {
            goal_id: goal(),
            at: t(),
        })
        .then_expect_error(PortalError::NotOpen);
}

#[test]
fn rating_a_default_domain_records_the_status() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::RateStatus {
            domain: "housing".into(),
            score: 7,
            note: "  Better since the move  ".into(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::StatusRated {
            domain: "housing".into(),
            score: 7,
            note: "Better since the move".into(),
            at: t(),
        }]);
}

#[test]
fn a_score_outside_one_to_ten_is_refused() {
    for score in [0, 11, -3] {
        framework()
            .given(vec![opened()])
            .when(PortalCommand::RateStatus {
                domain: "housing".into(),
                score,
                note: String::new(),
                at: t(),
            })
            .then_expect_error(PortalError::ScoreOutOfRange {
                got: score,
                min: 1,
                max: 10,
            });
    }
}

#[test]
fn rating_an_unknown_domain_is_refused() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::RateStatus {
            domain: "astrology".into(),
            score: 5,
            note: String::new(),
            at: t(),
        })
        .then_expect_error(PortalError::UnknownDomain("astrology".into()));
}

#[test]
fn a_note_with_control_characters_is_refused() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::RateStatus {
            domain: "housing".into(),
            score: 5,
            note: "bell\u{7}".into(),
            at: t(),
        })
        .then_expect_error(PortalError::Input(InputError::InvalidText {
            field: "note",
            problem: TextProblem::ControlCharacter,
        }));
}

#[test]
fn a_custom_domain_can_be_added_and_then_rated() {
    let added = PortalEvent::LifeDomainAdded {
        key: "music".into(),
        name: "Music".into(),
        at: t(),
    };
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddLifeDomain {
            key: "music".into(),
            name: "Music".into(),
            at: t(),
        })
        .then_expect_events(vec![added.clone()]);
    framework()
        .given(vec![opened(), added])
        .when(PortalCommand::RateStatus {
            domain: "music".into(),
            score: 9,
            note: "🎸".into(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::StatusRated {
            domain: "music".into(),
            score: 9,
            note: "🎸".into(),
            at: t(),
        }]);
}

#[test]
fn a_domain_key_must_be_a_slug() {
    for key in [
        "",
        "Music",
        "9lives",
        "with space",
        &"a".repeat(DOMAIN_KEY_MAX + 1),
    ] {
        framework()
            .given(vec![opened()])
            .when(PortalCommand::AddLifeDomain {
                key: key.to_string(),
                name: "X".into(),
                at: t(),
            })
            .then_expect_error(PortalError::Input(InputError::InvalidDomainKey {
                max: DOMAIN_KEY_MAX,
            }));
    }
}

#[test]
fn a_domain_cannot_be_added_twice_by_key_or_name() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddLifeDomain {
            key: "housing".into(),
            name: "Home".into(),
            at: t(),
        })
        .then_expect_error(PortalError::DuplicateDomain("housing".into()));
    framework()
        .given(vec![opened()])
        .when(PortalCommand::AddLifeDomain {
            key: "home".into(),
            name: "housing".into(),
            at: t(),
        })
        .then_expect_error(PortalError::DuplicateDomainName("housing".into()));
}

#[test]
fn custom_domains_are_limited() {
    let mut given = vec![opened()];
    for i in 0..CUSTOM_DOMAINS_MAX {
        given.push(PortalEvent::LifeDomainAdded {
            key: format!("d{i}"),
            name: format!("Domain {i}"),
            at: t(),
        });
    }
    framework()
        .given(given)
        .when(PortalCommand::AddLifeDomain {
            key: "one_more".into(),
            name: "One more".into(),
            at: t(),
        })
        .then_expect_error(PortalError::TooManyDomains(CUSTOM_DOMAINS_MAX));
}

#[test]
fn setting_a_goal_records_it_trimmed() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::SetGoal {
            goal_id: goal(),
            domain: "housing".into(),
            title: " Find a flat ".into(),
            description: String::new(),
            at: t(),
        })
        .then_expect_events(vec![goal_set()]);
}

#[test]
fn a_goal_title_must_not_be_empty_or_too_long() {
    for (title, problem) in [
        ("   ".to_string(), TextProblem::Empty),
        (
            "x".repeat(TITLE_MAX + 1),
            TextProblem::TooLong { max: TITLE_MAX },
        ),
    ] {
        framework()
            .given(vec![opened()])
            .when(PortalCommand::SetGoal {
                goal_id: goal(),
                domain: "housing".into(),
                title,
                description: String::new(),
                at: t(),
            })
            .then_expect_error(PortalError::Input(InputError::InvalidText {
                field: "title",
                problem,
            }));
    }
}

#[test]
fn a_goal_needs_an_existing_domain() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::SetGoal {
            goal_id: goal(),
            domain: "nowhere".into(),
            title: "X".into(),
            description: String::new(),
            at: t(),
        })
        .then_expect_error(PortalError::UnknownDomain("nowhere".into()));
}

#[test]
fn a_goal_id_is_used_once() {
    framework()
        .given(vec![opened(), goal_set()])
        .when(PortalCommand::SetGoal {
            goal_id: goal(),
            domain: "housing".into(),
            title: "Again".into(),
            description: String::new(),
            at: t(),
        })
        .then_expect_error(PortalError::DuplicateGoal(goal()));
}

#[test]
fn an_open_goal_can_be_revised() {
    framework()
        .given(vec![opened(), goal_set()])
        .when(PortalCommand::ReviseGoal {
            goal_id: goal(),
            title: "Find a flat near work".into(),
            description: "two rooms".into(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::GoalRevised {
            goal_id: goal(),
            title: "Find a flat near work".into(),
            description: "two rooms".into(),
            at: t(),
        }]);
}

#[test]
fn an_unknown_goal_cannot_be_revised() {
    framework()
        .given(vec![opened()])
        .when(PortalCommand::ReviseGoal {
            goal_id: goal(),
            title: "X".into(),
            description: String::new(),
            at: t(),
        })
        .then_expect_error(PortalError::UnknownGoal(goal()));
}

#[test]
fn an_open_goal_can_be_achieved_once() {
    let achieved = PortalEvent::GoalAchieved {
        goal_id: goal(),
        at: t(),
    };
    framework()
        .given(vec![opened(), goal_set()])
        .when(PortalCommand::AchieveGoal {
            goal_id: goal(),
            at: t(),
        })
        .then_expect_events(vec![achieved.clone()]);
    framework()
        .given(vec![opened(), goal_set(), achieved])
        .when(PortalCommand::AchieveGoal {
            goal_id: goal(),
            at: t(),
        })
        .then_expect_error(PortalError::GoalClosed {
            goal_id: goal(),
            state: "achieved",
        });
}

#[test]
fn an_abandoned_goal_cannot_be_revised_achieved_or_given_activities() {
    let abandoned = PortalEvent::GoalAbandoned {
        goal_id: goal(),
        reason: "not now".into(),
        at: t(),
    };
    let closed = PortalError::GoalClosed {
        goal_id: goal(),
        state: "abandoned",
    };
    let given = vec![opened(), goal_set(), abandoned];
    framework()
        .given(given.clone())
        .when(PortalCommand::ReviseGoal {
            goal_id: goal(),
            title: "X".into(),
            description: String::new(),
            at: t(),
        })
        .then_expect_error(closed.clone());
    framework()
        .given(given.clone())
        .when(PortalCommand::AchieveGoal {
            goal_id: goal(),
            at: t(),
        })
        .then_expect_error(closed.clone());
    framework()
        .given(given.clone())
        .when(PortalCommand::AbandonGoal {
            goal_id: goal(),
            reason: String::new(),
            at: t(),
        })
        .then_expect_error(closed.clone());
    framework()
        .given(given)
        .when(PortalCommand::PlanActivity {
            goal_id: goal(),
            activity_id: activity(),
            title: "X".into(),
            at: t(),
        })
        .then_expect_error(closed);
}

#[test]
fn an_activity_is_planned_under_an_open_goal() {
    framework()
        .given(vec![opened(), goal_set()])
        .when(PortalCommand::PlanActivity {
            goal_id: goal(),
            activity_id: activity(),
            title: "Call the housing office".into(),
            at: t(),
        })
        .then_expect_events(vec![activity_planned()]);
}

#[test]
fn an_activity_id_is_used_once() {
    framework()
        .given(vec![opened(), goal_set(), activity_planned()])
        .when(PortalCommand::PlanActivity {
            goal_id: goal(),
            activity_id: activity(),
            title: "Again".into(),
            at: t(),
        })
        .then_expect_error(PortalError::DuplicateActivity(activity()));
}

#[test]
fn a_planned_activity_can_be_completed_once() {
    let done = PortalEvent::ActivityCompleted {
        goal_id: goal(),
        activity_id: activity(),
        at: t(),
    };
    framework()
        .given(vec![opened(), goal_set(), activity_planned()])
        .when(PortalCommand::CompleteActivity {
            activity_id: activity(),
            at: t(),
        })
        .then_expect_events(vec![done.clone()]);
    framework()
        .given(vec![opened(), goal_set(), activity_planned(), done])
        .when(PortalCommand::DropActivity {
            activity_id: activity(),
            reason: String::new(),
            at: t(),
        })
        .then_expect_error(PortalError::ActivityClosed {
            activity_id: activity(),
            state: "done",
        });
}

#[test]
fn a_planned_activity_can_be_dropped_with_a_reason() {
    framework()
        .given(vec![opened(), goal_set(), activity_planned()])
        .when(PortalCommand::DropActivity {
            activity_id: activity(),
            reason: "moved instead".into(),
            at: t(),
        })
        .then_expect_events(vec![PortalEvent::ActivityDropped {
            goal_id: goal(),
            activity_id: activity(),
            reason: "moved instead".into(),
            at: t(),
        }]);
}

#[test]
fn an_unknown_activity_cannot_be_completed() {
    framework()
        .given(vec![opened(), goal_set()])
        .when(PortalCommand::CompleteActivity {
            activity_id: activity(),
            at: t(),
        })
        .then_expect_error(PortalError::UnknownActivity(activity()));
}

#[test]
fn activities_of_an_achieved_goal_are_frozen() {
    framework()
        .given(vec![
            opened(),
            goal_set(),
            activity_planned(),
            PortalEvent::GoalAchieved {
                goal_id: goal(),
                at: t(),
            },
        ])
        .when(PortalCommand::CompleteActivity {
            activity_id: activity(),
            at: t(),
        })
        .then_expect_error(PortalError::GoalClosed {
            goal_id: goal(),
            state: "achieved",
        });
}

#[test]
fn the_portal_clock_never_runs_backwards() {
    let earlier = t() - chrono::Duration::seconds(5);
    framework()
        .given(vec![opened()])
        .when(PortalCommand::RateStatus {
            domain: "housing".into(),
            score: 5,
            note: String::new(),
            at: earlier,
        })
        .then_expect_events(vec![PortalEvent::StatusRated {
            domain: "housing".into(),
            score: 5,
            note: String::new(),
            at: t(),
        }]);
}

#[test]
fn sections_know_their_names_and_places() {
    use crate::portal::Section;
    for (i, section) in Section::ALL.into_iter().enumerate() {
        assert_eq!(section.index(), i);
        assert_eq!(Section::parse(section.as_str()), Some(section));
    }
    assert_eq!(Section::parse("forum"), None);
}
