use chrono::{Duration, TimeZone};
use cqrs_es::test::TestFramework;

use super::*;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text::TextProblem;

type Rel = TestFramework<CareRelationship>;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

const USER: Uuid = Uuid::from_u128(1);
const PROVIDER: Uuid = Uuid::from_u128(2);

fn invite(by: Side, at: i64) -> CareCommand {
    CareCommand::Invite {
        user_id: USER,
        provider_id: PROVIDER,
        organisation: "org".into(),
        by,
        lasts: Duration::minutes(60),
        at: t(at),
    }
}

fn invited(by: Side, at: i64) -> CareEvent {
    CareEvent::Invited {
        relationship_id: relationship_id(USER, PROVIDER),
        user_id: USER,
        provider_id: PROVIDER,
        organisation: "org".into(),
        by,
        expires_at: t(at + 60),
        at: t(at),
    }
}

fn active() -> Vec<CareEvent> {
    vec![
        invited(Side::ServiceUser, 0),
        CareEvent::InvitationAccepted {
            by: Side::Provider,
            at: t(1),
        },
    ]
}

fn granted(section: Section, until: Option<i64>, at: i64) -> CareEvent {
    CareEvent::ConsentGranted {
        section,
        until: until.map(t),
        at: t(at),
    }
}

fn fold(events: &[CareEvent]) -> CareRelationship {
    let mut r = CareRelationship::default();
    for e in events {
        r.apply(e.clone());
    }
    r
}

#[test]
fn the_same_pair_always_has_the_same_relationship() {
    assert_eq!(
        relationship_id(USER, PROVIDER),
        relationship_id(USER, PROVIDER)
    );
    assert_ne!(
        relationship_id(USER, PROVIDER),
        relationship_id(PROVIDER, USER)
    );
    assert_eq!(relationship_id(USER, PROVIDER).get_version_num(), 8);
}

#[test]
fn either_side_invites_and_the_other_accepts() {
    for (inviter, answerer) in [
        (Side::ServiceUser, Side::Provider),
        (Side::Provider, Side::ServiceUser),
    ] {
        Rel::with(())
            .given_no_previous_events()
            .when(invite(inviter, 0))
            .then_expect_events(vec![invited(inviter, 0)]);
        Rel::with(())
            .given(vec![invited(inviter, 0)])
            .when(CareCommand::Accept {
                by: answerer,
                at: t(5),
            })
            .then_expect_events(vec![CareEvent::InvitationAccepted {
                by: answerer,
                at: t(5),
            }]);
        Rel::with(())
            .given(vec![invited(inviter, 0)])
            .when(CareCommand::Accept {
                by: inviter,
                at: t(5),
            })
            .then_expect_error(CareError::NotAllowed(
                "only the side that was invited can answer an invitation",
            ));
    }
}

#[test]
fn an_invitation_expires() {
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(CareCommand::Accept {
            by: Side::Provider,
            at: t(60),
        })
        .then_expect_error(CareError::InvitationExpired(t(60)));
    // An expired invitation can be sent again; an open one cannot.
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(invite(Side::Provider, 61))
        .then_expect_events(vec![invited(Side::Provider, 61)]);
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(invite(Side::Provider, 10))
        .then_expect_error(CareError::RelationshipState {
            state: "invited",
            action: "invited again",
        });
    let r = fold(&[invited(Side::ServiceUser, 0)]);
    assert_eq!(r.state_at(t(59)), "invited");
    assert_eq!(r.state_at(t(60)), "expired");
}

#[test]
fn declined_and_ended_relationships_can_start_again() {
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(CareCommand::Decline {
            by: Side::Provider,
            at: t(2),
        })
        .then_expect_events(vec![CareEvent::InvitationDeclined {
            by: Side::Provider,
            at: t(2),
        }]);
    let mut given = active();
    given.push(CareEvent::RelationshipEnded {
        by: Side::Provider,
        at: t(3),
    });
    Rel::with(())
        .given(given)
        .when(invite(Side::ServiceUser, 4))
        .then_expect_events(vec![invited(Side::ServiceUser, 4)]);
    Rel::with(())
        .given(active())
        .when(invite(Side::ServiceUser, 4))
        .then_expect_error(CareError::RelationshipState {
            state: "active",
            action: "invited again",
        });
}

#[test]
fn either_side_ends_and_the_inviter_withdraws() {
    for by in [Side::ServiceUser, Side::Provider] {
        Rel::with(())
            .given(active())
            .when(CareCommand::End { by, at: t(9) })
            .then_expect_events(vec![CareEvent::RelationshipEnded { by, at: t(9) }]);
    }
    Rel::with(())
        .given(vec![invited(Side::Provider, 0)])
        .when(CareCommand::End {
            by: Side::Provider,
            at: t(1),
        })
        .then_expect_events(vec![CareEvent::RelationshipEnded {
            by: Side::Provider,
            at: t(1),
        }]);
    Rel::with(())
        .given_no_previous_events()
        .when(CareCommand::End {
            by: Side::Provider,
            at: t(1),
        })
        .then_expect_error(CareError::RelationshipState {
            state: "none",
            action: "ended",
        });
}

#[test]
fn only_the_user_grants_and_only_in_an_active_relationship() {
    Rel::with(())
        .given(active())
        .when(CareCommand::Grant {
            by: Side::ServiceUser,
            section: Section::Medications,
            until: Some(t(100)),
            at: t(2),
        })
        .then_expect_events(vec![granted(Section::Medications, Some(100), 2)]);
    Rel::with(())
        .given(active())
        .when(CareCommand::Grant {
            by: Side::Provider,
            section: Section::Medications,
            until: None,
            at: t(2),
        })
        .then_expect_error(CareError::NotAllowed(
            "only the service user grants and revokes access to their portal",
        ));
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(CareCommand::Grant {
            by: Side::ServiceUser,
            section: Section::Core,
            until: None,
            at: t(2),
        })
        .then_expect_error(CareError::RelationshipState {
            state: "invited",
            action: "granted",
        });
    Rel::with(())
        .given(active())
        .when(CareCommand::Grant {
            by: Side::ServiceUser,
            section: Section::Core,
            until: Some(t(2)),
            at: t(2),
        })
        .then_expect_error(CareError::NotInFuture("until"));
    let mut given = active();
    given.push(granted(Section::Core, None, 2));
    Rel::with(())
        .given(given)
        .when(CareCommand::Grant {
            by: Side::ServiceUser,
            section: Section::Core,
            until: None,
            at: t(3),
        })
        .then_expect_error(CareError::NothingChanged("consent grant"));
}

#[test]
fn a_grant_allows_its_section_until_revoked_or_expired() {
    let mut events = active();
    events.push(granted(Section::Core, None, 2));
    events.push(granted(Section::Network, Some(10), 2));
    let r = fold(&events);
    assert!(matches!(r.basis(Section::Core, t(3)), Some(Basis::Grant(g)) if g.sequence == 3));
    assert!(r.basis(Section::Network, t(9)).is_some());
    assert_eq!(r.basis(Section::Network, t(10)), None, "expired at `until`");
    assert_eq!(r.basis(Section::Medications, t(3)), None);
    assert_eq!(r.basis(Section::CrisisPlan, t(3)), None);
    assert_eq!(r.granted(t(11)).len(), 1);
    Rel::with(())
        .given(events.clone())
        .when(CareCommand::Revoke {
            by: Side::ServiceUser,
            section: Section::Network,
            at: t(11),
        })
        .then_expect_error(CareError::NothingChanged("consent grant"));
    events.push(CareEvent::ConsentRevoked {
        section: Section::Core,
        at: t(4),
    });
    assert_eq!(fold(&events).basis(Section::Core, t(4)), None);
    events.push(CareEvent::RelationshipEnded {
        by: Side::Provider,
        at: t(5),
    });
    assert!(fold(&events).granted(t(5)).is_empty());
}

#[test]
fn break_glass_opens_only_the_crisis_plan_for_a_while() {
    Rel::with(())
        .given(active())
        .when(CareCommand::BreakGlass {
            by: Side::Provider,
            code: BreakGlassCode::RiskToSelf,
            reason: "  Called the crisis line  ".into(),
            lasts: Duration::minutes(60),
            per_day: 3,
            provider_openings: 0,
            provider_per_day: 10,
            at: t(2),
        })
        .then_expect_events(vec![CareEvent::BreakGlassOpened {
            code: BreakGlassCode::RiskToSelf,
            reason: "Called the crisis line".into(),
            until: t(62),
            at: t(2),
        }]);
    Rel::with(())
        .given(active())
        .when(CareCommand::BreakGlass {
            by: Side::Provider,
            code: BreakGlassCode::Other,
            reason: " ".into(),
            lasts: Duration::minutes(60),
            per_day: 3,
            provider_openings: 0,
            provider_per_day: 10,
            at: t(2),
        })
        .then_expect_error(CareError::Input(InputError::InvalidText {
            field: "reason",
            problem: TextProblem::Empty,
        }));
    Rel::with(())
        .given(vec![invited(Side::ServiceUser, 0)])
        .when(CareCommand::BreakGlass {
            by: Side::Provider,
            code: BreakGlassCode::Other,
            reason: "x".into(),
            lasts: Duration::minutes(60),
            per_day: 3,
            provider_openings: 0,
            provider_per_day: 10,
            at: t(2),
        })
        .then_expect_error(CareError::RelationshipState {
            state: "invited",
            action: "used for break-glass",
        });
    let mut events = active();
    events.push(CareEvent::BreakGlassOpened {
        code: BreakGlassCode::RiskToSelf,
        reason: "x".into(),
        until: t(62),
        at: t(2),
    });
    let r = fold(&events);
    assert!(
        matches!(r.basis(Section::CrisisPlan, t(61)), Some(Basis::BreakGlass(b)) if b.sequence == 3)
    );
    assert_eq!(r.basis(Section::CrisisPlan, t(62)), None);
    assert_eq!(r.basis(Section::Medications, t(30)), None);
}

#[test]
fn the_clock_never_runs_backwards() {
    let mut given = active();
    given.push(granted(Section::Core, None, 30));
    Rel::with(())
        .given(given)
        .when(CareCommand::Revoke {
            by: Side::ServiceUser,
            section: Section::Core,
            at: t(20),
        })
        .then_expect_events(vec![CareEvent::ConsentRevoked {
            section: Section::Core,
            at: t(30),
        }]);
}

#[test]
fn windows_tell_who_could_see_what_and_when() {
    let mut events = active();
    events.push(granted(Section::CrisisPlan, None, 10)); // 3
    events.push(granted(Section::CrisisPlan, Some(50), 20)); // 4: replaces 3
    events.push(granted(Section::Core, None, 20)); // 5
    events.push(CareEvent::BreakGlassOpened {
        code: BreakGlassCode::Other,
        reason: "x".into(),
        until: t(200),
        at: t(30),
    }); // 6
    events.push(CareEvent::ConsentRevoked {
        section: Section::Core,
        at: t(40),
    }); // 7
    events.push(CareEvent::RelationshipEnded {
        by: Side::ServiceUser,
        at: t(100),
    }); // 8
    let w = windows(&events);
    let got: Vec<_> = w
        .iter()
        .map(|w| (w.section, w.kind, w.from, w.to, w.sequence))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Section::CrisisPlan,
                WindowKind::Grant,
                t(10),
                Some(t(20)),
                3
            ),
            (
                Section::CrisisPlan,
                WindowKind::Grant,
                t(20),
                Some(t(50)),
                4
            ),
            (Section::Core, WindowKind::Grant, t(20), Some(t(40)), 5),
            (
                Section::CrisisPlan,
                WindowKind::BreakGlass,
                t(30),
                Some(t(100)),
                6
            ),
        ]
    );
    assert!(w[1].overlaps(t(49), t(60)));
    assert!(!w[1].overlaps(t(50), t(60)));
}

#[test]
fn provider_profiles_register_once_per_organisation() {
    let save = |org: &str, name: &str| ProviderCommand::SaveProfile {
        organisation: org.into(),
        display_name: name.into(),
        profession: Profession::Nurse,
        at: t(0),
    };
    let registered = ProviderEvent::ProviderRegistered {
        organisation: "org".into(),
        display_name: "Kari".into(),
        profession: Profession::Nurse,
        at: t(0),
    };
    TestFramework::<Provider>::with(())
        .given_no_previous_events()
        .when(save("org", " Kari "))
        .then_expect_events(vec![registered.clone()]);
    TestFramework::<Provider>::with(())
        .given(vec![registered.clone()])
        .when(save("org", "Kari"))
        .then_expect_error(ProviderError::NothingChanged("profile"));
    TestFramework::<Provider>::with(())
        .given(vec![registered.clone()])
        .when(save("other", "Kari"))
        .then_expect_error(ProviderError::NotAllowed(
            "this provider is registered in another organisation",
        ));
    TestFramework::<Provider>::with(())
        .given(vec![registered])
        .when(save("org", "Kari N."))
        .then_expect_events(vec![ProviderEvent::ProviderProfileChanged {
            display_name: "Kari N.".into(),
            profession: Profession::Nurse,
            at: t(0),
        }]);
}

#[test]
fn active_spans_leave_out_the_time_between() {
    let mut events = active();
    events.push(CareEvent::RelationshipEnded {
        by: Side::Provider,
        at: t(10),
    });
    events.push(invited(Side::Provider, 20));
    events.push(CareEvent::InvitationAccepted {
        by: Side::ServiceUser,
        at: t(30),
    });
    let spans = active_spans(&events);
    assert_eq!(spans, vec![(t(1), Some(t(10))), (t(30), None)]);
    assert!(within(&spans, t(5)));
    assert!(!within(&spans, t(15)), "away");
    assert!(within(&spans, t(40)));
}

#[test]
fn kinds_of_provider_refusals() {
    assert_eq!(
        ProviderError::NotAllowed("this provider is registered in another organisation").kind(),
        ErrorKind::Forbidden
    );
    assert_eq!(
        ProviderError::NothingChanged("profile").kind(),
        ErrorKind::FailedPrecondition
    );
    let bad = ProviderError::Input(InputError::InvalidText {
        field: "displayName",
        problem: TextProblem::Empty,
    });
    assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
}

#[test]
fn kinds_of_care_refusals() {
    assert_eq!(
        CareError::NotAllowed("only the side that was invited can answer an invitation").kind(),
        ErrorKind::Forbidden
    );
    for state in [
        CareError::RelationshipState {
            state: "ended",
            action: "granted",
        },
        CareError::InvitationExpired(t(60)),
        CareError::NothingChanged("consent grant"),
    ] {
        assert_eq!(state.kind(), ErrorKind::FailedPrecondition, "{state}");
    }
    for bad in [
        CareError::NotInFuture("until"),
        CareError::Input(InputError::InvalidText {
            field: "reason",
            problem: TextProblem::Empty,
        }),
    ] {
        assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
    }
}

#[test]
fn standing_by_state_expiry_and_time() {
    use crate::care::{standing, RelationshipState as S, Standing};
    let expires = Some(t(60));
    // (state, expiry, minute asked, standing)
    let table = [
        (S::None, None, 0, Standing::None),
        (S::Invited, expires, 59, Standing::Invited),
        (S::Invited, expires, 60, Standing::Expired),
        (S::Invited, expires, 61, Standing::Expired),
        (S::Invited, None, 0, Standing::Expired),
        (S::Active, expires, 61, Standing::Active),
        (S::Declined, expires, 0, Standing::Declined),
        (S::Ended, None, 0, Standing::Ended),
    ];
    for (state, expiry, minute, expected) in table {
        assert_eq!(
            standing(state, expiry, t(minute)),
            expected,
            "{state:?} {expiry:?} {minute}"
        );
    }
}

/// Break-glass is one opening at a time, and at most `per_day` in any 24
/// hours of a relationship (issue 15): 20 openings in a row are refused.
#[test]
fn break_glass_is_one_at_a_time_and_bounded_a_day() {
    let open = |at: i64| CareEvent::BreakGlassOpened {
        code: BreakGlassCode::RiskToSelf,
        reason: "r".into(),
        until: t(at + 60),
        at: t(at),
    };
    let again = |at: i64| CareCommand::BreakGlass {
        by: Side::Provider,
        code: BreakGlassCode::RiskToSelf,
        reason: "again".into(),
        lasts: Duration::minutes(60),
        per_day: 2,
        provider_openings: 0,
        provider_per_day: 10,
        at: t(at),
    };
    let mut events = active();
    events.push(open(10));
    // Still open at minute 30.
    Rel::with(())
        .given(events.clone())
        .when(again(30))
        .then_expect_error(CareError::BreakGlassOpen(t(70)));
    // Closed at minute 80: a second one that day is allowed.
    Rel::with(())
        .given(events.clone())
        .when(again(80))
        .then_expect_events(vec![CareEvent::BreakGlassOpened {
            code: BreakGlassCode::RiskToSelf,
            reason: "again".into(),
            until: t(140),
            at: t(80),
        }]);
    // A third within 24 hours of the first is one too many.
    events.push(open(80));
    Rel::with(())
        .given(events.clone())
        .when(again(200))
        .then_expect_error(CareError::BreakGlassLimit(2));
    // A provider at their own limit, across all their relationships, is
    // refused even where this relationship has room.
    Rel::with(())
        .given(active())
        .when(CareCommand::BreakGlass {
            by: Side::Provider,
            code: BreakGlassCode::RiskToSelf,
            reason: "elsewhere".into(),
            lasts: Duration::minutes(60),
            per_day: 2,
            provider_openings: 10,
            provider_per_day: 10,
            at: t(30),
        })
        .then_expect_error(CareError::BreakGlassProviderLimit(10));
    // A day after the first, one is allowed again.
    Rel::with(())
        .given(events)
        .when(again(10 + 24 * 60 + 1))
        .then_expect_events(vec![CareEvent::BreakGlassOpened {
            code: BreakGlassCode::RiskToSelf,
            reason: "again".into(),
            until: t(10 + 24 * 60 + 61),
            at: t(10 + 24 * 60 + 1),
        }]);
}
