use chrono::{Duration, TimeZone};
use cqrs_es::test::TestFramework;

use super::*;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text::TextProblem;

type Framework = TestFramework<Agreement>;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn terms(days: i32) -> Terms {
    Terms {
        initiative: Initiative::Both,
        provider_looks_in_days: days,
        user_replies_within: ReplyTime::WorkingDays(3),
        provider_replies_within: ReplyTime::Hours(48),
        opened_together: true,
        notes: "  Weekly check-in  ".into(),
    }
}

fn trimmed(days: i32) -> Terms {
    Terms {
        notes: "Weekly check-in".into(),
        ..terms(days)
    }
}

fn propose(by: Side, days: i32, at: i64) -> AgreementCommand {
    AgreementCommand::Propose {
        by,
        terms: terms(days),
        at: t(at),
    }
}

fn proposed(version: i32, by: Side, counter: bool, days: i32, at: i64) -> AgreementEvent {
    AgreementEvent::AgreementProposed {
        version,
        by,
        counter,
        terms: trimmed(days),
        at: t(at),
    }
}

fn accepted(version: i32, by: Side, at: i64) -> AgreementEvent {
    AgreementEvent::AgreementAccepted {
        version,
        by,
        at: t(at),
    }
}

#[test]
fn either_side_proposes_and_the_other_accepts() {
    Framework::with(())
        .given_no_previous_events()
        .when(propose(Side::Provider, 7, 0))
        .then_expect_events(vec![proposed(1, Side::Provider, false, 7, 0)]);
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(AgreementCommand::Accept {
            by: Side::ServiceUser,
            at: t(1),
        })
        .then_expect_events(vec![accepted(1, Side::ServiceUser, 1)]);
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(AgreementCommand::Accept {
            by: Side::Provider,
            at: t(1),
        })
        .then_expect_error(AgreementError::NotAllowed(
            "the other side answers a proposal",
        ));
}

#[test]
fn a_counter_proposal_answers_and_waits_in_turn() {
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(propose(Side::ServiceUser, 14, 1))
        .then_expect_events(vec![proposed(2, Side::ServiceUser, true, 14, 1)]);
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(propose(Side::ServiceUser, 7, 1))
        .then_expect_error(AgreementError::NothingChanged("proposal"));
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(propose(Side::Provider, 10, 1))
        .then_expect_error(AgreementError::NotAllowed(
            "your proposal is waiting for an answer: withdraw it first",
        ));
    let mut a = Agreement::default();
    for e in [
        proposed(1, Side::Provider, false, 7, 0),
        proposed(2, Side::ServiceUser, true, 14, 1),
        accepted(2, Side::Provider, 2),
    ] {
        a.apply(e);
    }
    assert_eq!(a.accepted, Some((2, trimmed(14))));
    assert_eq!(a.pending, None);
}

#[test]
fn a_revision_leaves_the_agreement_in_force_until_accepted() {
    let given = vec![
        proposed(1, Side::Provider, false, 7, 0),
        accepted(1, Side::ServiceUser, 1),
    ];
    Framework::with(())
        .given(given.clone())
        .when(propose(Side::ServiceUser, 7, 2))
        .then_expect_error(AgreementError::NothingChanged("agreement in force"));
    Framework::with(())
        .given(given.clone())
        .when(propose(Side::ServiceUser, 30, 2))
        .then_expect_events(vec![proposed(2, Side::ServiceUser, false, 30, 2)]);
    let mut a = Agreement::default();
    for e in given
        .into_iter()
        .chain([proposed(2, Side::ServiceUser, false, 30, 2)])
        .chain([AgreementEvent::AgreementDeclined {
            version: 2,
            by: Side::Provider,
            at: t(3),
        }])
    {
        a.apply(e);
    }
    assert_eq!(a.accepted, Some((1, trimmed(7))), "the old version holds");
    assert_eq!(a.pending, None);
    assert_eq!(a.versions, 2, "every version keeps its number");
}

#[test]
fn only_the_proposer_withdraws_and_only_a_waiting_proposal() {
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(AgreementCommand::Withdraw {
            by: Side::ServiceUser,
            at: t(1),
        })
        .then_expect_error(AgreementError::NotAllowed(
            "only the side that proposed can withdraw",
        ));
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 0)])
        .when(AgreementCommand::Withdraw {
            by: Side::Provider,
            at: t(1),
        })
        .then_expect_events(vec![AgreementEvent::ProposalWithdrawn {
            version: 1,
            by: Side::Provider,
            at: t(1),
        }]);
    Framework::with(())
        .given_no_previous_events()
        .when(AgreementCommand::Decline {
            by: Side::Provider,
            at: t(1),
        })
        .then_expect_error(AgreementError::NotAllowed("there is no proposal waiting"));
}

#[test]
fn terms_are_checked() {
    Framework::with(())
        .given_no_previous_events()
        .when(propose(Side::Provider, 0, 0))
        .then_expect_error(AgreementError::Input(InputError::OutOfRange {
            field: "providerLooksInDays",
            got: 0,
            min: 1,
            max: LOOK_IN_DAYS_MAX,
        }));
    let mut bad = terms(7);
    bad.provider_replies_within = ReplyTime::WorkingDays(21);
    Framework::with(())
        .given_no_previous_events()
        .when(AgreementCommand::Propose {
            by: Side::Provider,
            terms: bad,
            at: t(0),
        })
        .then_expect_error(AgreementError::Input(InputError::OutOfRange {
            field: "providerRepliesWithin",
            got: 21,
            min: 1,
            max: REPLY_WORKING_DAYS_MAX,
        }));
    let mut bad = terms(7);
    bad.notes = "x".repeat(NOTES_MAX + 1);
    Framework::with(())
        .given_no_previous_events()
        .when(AgreementCommand::Propose {
            by: Side::Provider,
            terms: bad,
            at: t(0),
        })
        .then_expect_error(AgreementError::Input(InputError::InvalidText {
            field: "notes",
            problem: TextProblem::TooLong { max: NOTES_MAX },
        }));
}

#[test]
fn the_clock_never_runs_backwards() {
    Framework::with(())
        .given(vec![proposed(1, Side::Provider, false, 7, 10)])
        .when(AgreementCommand::Accept {
            by: Side::ServiceUser,
            at: t(5),
        })
        .then_expect_events(vec![accepted(1, Side::ServiceUser, 10)]);
}

#[test]
fn reply_times_keep_their_unit_in_the_stored_event() {
    let json = serde_json::to_value(ReplyTime::WorkingDays(3)).expect("serialises");
    assert_eq!(
        json,
        serde_json::json!({ "unit": "working_days", "value": 3 })
    );
}

#[test]
fn kinds_of_agreement_refusals() {
    assert_eq!(
        AgreementError::NotAllowed("the other side answers a proposal").kind(),
        ErrorKind::Forbidden
    );
    assert_eq!(
        AgreementError::NothingChanged("proposal").kind(),
        ErrorKind::FailedPrecondition
    );
    let bad = AgreementError::Input(InputError::OutOfRange {
        field: "providerLooksInDays",
        got: 0,
        min: 1,
        max: LOOK_IN_DAYS_MAX,
    });
    assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
}

#[test]
fn what_became_of_each_version() {
    use Outcome::*;
    let (user, provider) = (Side::ServiceUser, Side::Provider);
    let accepted = |version, by, at| AgreementEvent::AgreementAccepted {
        version,
        by,
        at: t(at),
    };
    let declined = |version, by, at| AgreementEvent::AgreementDeclined {
        version,
        by,
        at: t(at),
    };
    let withdrawn = |version, by, at| AgreementEvent::ProposalWithdrawn {
        version,
        by,
        at: t(at),
    };
    // (events, the outcome and decision minute of each version)
    type Decided = Vec<(Outcome, Option<i64>)>;
    let table: Vec<(Vec<AgreementEvent>, Decided)> = vec![
        (vec![], vec![]),
        (vec![proposed(1, user, false, 2, 0)], vec![(Pending, None)]),
        (
            vec![proposed(1, user, false, 2, 0), accepted(1, provider, 5)],
            vec![(InForce, Some(5))],
        ),
        (
            vec![proposed(1, user, false, 2, 0), declined(1, provider, 5)],
            vec![(Declined, Some(5))],
        ),
        (
            vec![proposed(1, user, false, 2, 0), withdrawn(1, user, 5)],
            vec![(Withdrawn, Some(5))],
        ),
        (
            vec![
                proposed(1, user, false, 2, 0),
                proposed(2, provider, true, 3, 5),
            ],
            vec![(Countered, Some(5)), (Pending, None)],
        ),
        (
            vec![
                proposed(1, user, false, 2, 0),
                accepted(1, provider, 5),
                proposed(2, provider, false, 3, 10),
                accepted(2, user, 15),
            ],
            vec![(Superseded, Some(15)), (InForce, Some(15))],
        ),
        (
            // A counter-proposal to nothing pending counters nothing.
            vec![
                proposed(1, user, false, 2, 0),
                accepted(1, provider, 5),
                proposed(2, provider, true, 3, 10),
            ],
            vec![(InForce, Some(5)), (Pending, None)],
        ),
    ];
    for (events, expected) in table {
        let got: Vec<(Outcome, Option<DateTime<Utc>>)> = versions(events.clone())
            .into_iter()
            .map(|v| (v.outcome, v.decided_at))
            .collect();
        let expected: Vec<(Outcome, Option<DateTime<Utc>>)> =
            expected.into_iter().map(|(o, at)| (o, at.map(t))).collect();
        assert_eq!(got, expected, "{events:?}");
    }
    let all = versions(vec![proposed(1, provider, false, 2, 3)]);
    assert_eq!(all[0].proposed_by, provider);
    assert_eq!(all[0].proposed_at, t(3));
    assert_eq!(all[0].terms, trimmed(2));
}
