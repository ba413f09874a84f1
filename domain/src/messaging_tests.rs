use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text::TextProblem;

type Framework = TestFramework<Conversation>;

const THREAD: Uuid = Uuid::from_u128(10);
const USER: Uuid = Uuid::from_u128(1);
const NURSE: Uuid = Uuid::from_u128(2);
const DOCTOR: Uuid = Uuid::from_u128(3);
const STRANGER: Uuid = Uuid::from_u128(4);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn m(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn start(by: Uuid, providers: Vec<Uuid>) -> ConversationCommand {
    ConversationCommand::Start {
        conversation_id: THREAD,
        organisation: "org".into(),
        user_id: USER,
        providers,
        subject: " Sleep ".into(),
        by,
        message_id: m(1),
        body: "I slept badly again".into(),
        at: t(0),
    }
}

fn started(by: Uuid, side: Side) -> Vec<ConversationEvent> {
    vec![
        ConversationEvent::ConversationStarted {
            conversation_id: THREAD,
            organisation: "org".into(),
            user_id: USER,
            providers: vec![NURSE, DOCTOR],
            subject: "Sleep".into(),
            started_by: by,
            at: t(0),
        },
        ConversationEvent::MessagePosted {
            message_id: m(1),
            by,
            side,
            body: "I slept badly again".into(),
            starts_exchange: true,
            at: t(0),
        },
    ]
}

fn post(by: Uuid, n: u128, at: i64) -> ConversationCommand {
    ConversationCommand::Post {
        by,
        message_id: m(n),
        body: format!("message {n} ✉"),
        exchange_gap: Duration::hours(24),
        at: t(at),
    }
}

fn posted(by: Uuid, side: Side, n: u128, starts: bool, at: i64) -> ConversationEvent {
    ConversationEvent::MessagePosted {
        message_id: m(n),
        by,
        side,
        body: format!("message {n} ✉"),
        starts_exchange: starts,
        at: t(at),
    }
}

fn fold(events: Vec<ConversationEvent>) -> Conversation {
    let mut c = Conversation::default();
    for e in events {
        c.apply(e);
    }
    c
}

#[test]
fn a_participant_starts_a_thread_with_its_first_message() {
    Framework::with(())
        .given_no_previous_events()
        .when(start(USER, vec![NURSE, DOCTOR]))
        .then_expect_events(started(USER, Side::ServiceUser));
    Framework::with(())
        .given_no_previous_events()
        .when(start(DOCTOR, vec![NURSE, DOCTOR]))
        .then_expect_events(started(DOCTOR, Side::Provider));
    Framework::with(())
        .given_no_previous_events()
        .when(start(STRANGER, vec![NURSE, DOCTOR]))
        .then_expect_error(ConversationError::NotAllowed(
            "only a participant can start a conversation",
        ));
    Framework::with(())
        .given(started(USER, Side::ServiceUser))
        .when(start(USER, vec![NURSE, DOCTOR]))
        .then_expect_error(ConversationError::DuplicateId {
            item: "conversation",
            id: THREAD,
        });
}

#[test]
fn a_thread_needs_different_providers_and_not_the_user() {
    for providers in [vec![], vec![NURSE, NURSE]] {
        Framework::with(())
            .given_no_previous_events()
            .when(start(USER, providers))
            .then_expect_error(ConversationError::NotAllowed(
                "a conversation needs one or more different providers",
            ));
    }
    Framework::with(())
        .given_no_previous_events()
        .when(start(USER, vec![NURSE, USER]))
        .then_expect_error(ConversationError::NotAllowed(
            "the service user cannot also be a provider of the conversation",
        ));
}

#[test]
fn messages_have_limits_and_only_participants_write() {
    let mut long = post(USER, 2, 1);
    if let ConversationCommand::Post { body, .. } = &mut long {
        *body = "x".repeat(MESSAGE_MAX + 1);
    }
    Framework::with(())
        .given(started(USER, Side::ServiceUser))
        .when(long)
        .then_expect_error(ConversationError::Input(InputError::InvalidText {
            field: "body",
            problem: TextProblem::TooLong { max: MESSAGE_MAX },
        }));
    Framework::with(())
        .given(started(USER, Side::ServiceUser))
        .when(post(STRANGER, 2, 1))
        .then_expect_error(ConversationError::NotAllowed(
            "you are not in this conversation",
        ));
    Framework::with(())
        .given(started(USER, Side::ServiceUser))
        .when(post(NURSE, 1, 1))
        .then_expect_error(ConversationError::DuplicateId {
            item: "message",
            id: m(1),
        });
}

#[test]
fn a_message_after_a_quiet_spell_starts_an_exchange() {
    Framework::with(())
        .given(started(USER, Side::ServiceUser))
        .when(post(NURSE, 2, 60))
        .then_expect_events(vec![posted(NURSE, Side::Provider, 2, false, 60)]);
    let mut given = started(USER, Side::ServiceUser);
    given.push(posted(NURSE, Side::Provider, 2, false, 60));
    Framework::with(())
        .given(given)
        .when(post(NURSE, 3, 60 + 24 * 60))
        .then_expect_events(vec![posted(NURSE, Side::Provider, 3, true, 60 + 24 * 60)]);
}

#[test]
fn read_receipts_move_forward_and_ones_own_messages_are_read() {
    let mut events = started(USER, Side::ServiceUser);
    events.push(posted(NURSE, Side::Provider, 2, false, 5));
    events.push(posted(USER, Side::ServiceUser, 3, false, 6));
    let c = fold(events.clone());
    assert_eq!(c.unread(USER), 0, "writing reads what came before");
    assert_eq!(c.unread(NURSE), 1);
    assert_eq!(c.unread(DOCTOR), 3);
    Framework::with(())
        .given(events.clone())
        .when(ConversationCommand::MarkRead {
            by: DOCTOR,
            up_to: m(2),
            at: t(7),
        })
        .then_expect_events(vec![ConversationEvent::MessagesRead {
            by: DOCTOR,
            up_to: m(2),
            count: 2,
            at: t(7),
        }]);
    Framework::with(())
        .given(events.clone())
        .when(ConversationCommand::MarkRead {
            by: NURSE,
            up_to: m(1),
            at: t(7),
        })
        .then_expect_error(ConversationError::NothingChanged("read receipt"));
    Framework::with(())
        .given(events)
        .when(ConversationCommand::MarkRead {
            by: NURSE,
            up_to: m(9),
            at: t(7),
        })
        .then_expect_error(ConversationError::Unknown {
            item: "message",
            id: m(9),
        });
}

#[test]
fn a_thread_closes_when_its_last_provider_leaves_and_keeps_everything() {
    let events = started(USER, Side::ServiceUser);
    Framework::with(())
        .given(events.clone())
        .when(ConversationCommand::RemoveProvider {
            provider: NURSE,
            at: t(1),
        })
        .then_expect_events(vec![ConversationEvent::ProviderRemoved {
            provider: NURSE,
            at: t(1),
        }]);
    let mut events = events;
    events.push(ConversationEvent::ProviderRemoved {
        provider: NURSE,
        at: t(1),
    });
    Framework::with(())
        .given(events.clone())
        .when(post(NURSE, 2, 2))
        .then_expect_error(ConversationError::NotAllowed(
            "you are not in this conversation",
        ));
    Framework::with(())
        .given(events.clone())
        .when(ConversationCommand::RemoveProvider {
            provider: DOCTOR,
            at: t(3),
        })
        .then_expect_events(vec![
            ConversationEvent::ProviderRemoved {
                provider: DOCTOR,
                at: t(3),
            },
            ConversationEvent::ConversationClosed { at: t(3) },
        ]);
    events.push(ConversationEvent::ProviderRemoved {
        provider: DOCTOR,
        at: t(3),
    });
    events.push(ConversationEvent::ConversationClosed { at: t(3) });
    Framework::with(())
        .given(events.clone())
        .when(post(USER, 2, 4))
        .then_expect_error(ConversationError::WrongState {
            item: "conversation",
            id: THREAD,
            state: "closed",
            action: "written to",
        });
    let c = fold(events);
    assert_eq!(c.messages.len(), 1, "nothing is deleted");
    assert_eq!(c.removed.get(&NURSE), Some(&t(1)));
}

#[test]
fn nothing_happens_in_a_thread_that_was_never_started() {
    Framework::with(())
        .given_no_previous_events()
        .when(post(USER, 1, 0))
        .then_expect_error(ConversationError::Unknown {
            item: "conversation",
            id: Uuid::nil(),
        });
}

#[test]
fn kinds_of_conversation_refusals() {
    assert_eq!(
        ConversationError::Unknown {
            item: "message",
            id: m(1),
        }
        .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        ConversationError::NotAllowed("you are not in this conversation").kind(),
        ErrorKind::Forbidden
    );
    for state in [
        ConversationError::DuplicateId {
            item: "conversation",
            id: THREAD,
        },
        ConversationError::TooMany {
            items: "messages in a conversation",
            max: MESSAGES_MAX,
        },
        ConversationError::WrongState {
            item: "conversation",
            id: THREAD,
            state: "closed",
            action: "written to",
        },
        ConversationError::NothingChanged("read receipt"),
    ] {
        assert_eq!(state.kind(), ErrorKind::FailedPrecondition, "{state}");
    }
    let bad = ConversationError::Input(InputError::InvalidText {
        field: "body",
        problem: TextProblem::Empty,
    });
    assert_eq!(bad.kind(), ErrorKind::BadInput, "{bad}");
}
