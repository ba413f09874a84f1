use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;

const ORG: &str = "clinic-a";
const TOPIC: Uuid = Uuid::from_u128(10);
const ANNA: Uuid = Uuid::from_u128(1);
const BEN: Uuid = Uuid::from_u128(2);
const CARA: Uuid = Uuid::from_u128(3);
const NURSE: Uuid = Uuid::from_u128(4);
const MOD: Uuid = Uuid::from_u128(5);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn p(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn peer(person: Uuid) -> Member {
    Member {
        person,
        kind: MemberKind::Peer,
    }
}

fn staff(person: Uuid) -> Member {
    Member {
        person,
        kind: MemberKind::Staff,
    }
}

fn moderator() -> Member {
    Member {
        person: MOD,
        kind: MemberKind::Moderator,
    }
}

fn opened_forum() -> ForumEvent {
    match (Forum::default().decide(ForumCommand::Open {
        organisation: ORG.into(),
        at: t(0),
    }))
    .expect("opens")
    .remove(0)
    {
        e @ ForumEvent::ForumOpened { .. } => e,
        other => panic!("{other:?}"),
    }
}

fn choose(person: Uuid, name: &str) -> ForumCommand {
    ForumCommand::ChooseName {
        person,
        kind: MemberKind::Peer,
        name: name.into(),
        at: t(1),
    }
}

fn chosen(person: Uuid, name: &str, previous: Option<&str>) -> ForumEvent {
    ForumEvent::NameChosen {
        person,
        kind: MemberKind::Peer,
        name: name.into(),
        previous: previous.map(str::to_string),
        at: t(1),
    }
}

type Forums = TestFramework<Forum>;
type Topics = TestFramework<Topic>;

#[test]
fn a_new_forum_opens_with_the_default_categories() {
    let ForumEvent::ForumOpened { categories, .. } = opened_forum() else {
        unreachable!()
    };
    let keys: Vec<&str> = categories.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "everyday_life",
            "work_and_school",
            "sleep",
            "medication",
            "relationships",
            "recovery_stories"
        ]
    );
    Forums::with(())
        .given(vec![opened_forum()])
        .when(ForumCommand::Open {
            organisation: ORG.into(),
            at: t(2),
        })
        .then_expect_error(ForumError::NothingChanged("the forum is open"));
    // Nothing else happens in a forum that is not open.
    Forums::with(())
        .given_no_previous_events()
        .when(choose(ANNA, "Sunflower"))
        .then_expect_error(ForumError::WrongState {
            item: "the forum",
            state: "not open yet",
            action: "changed",
        });
}

#[test]
fn a_name_is_3_to_30_letters_digits_and_a_few_marks_and_not_reserved() {
    assert_eq!(check_name("  Sun   flower ").as_deref(), Ok("Sun flower"));
    assert_eq!(check_name("Søren-42").as_deref(), Ok("Søren-42"));
    assert_eq!(check_name("زهرة").as_deref(), Ok("زهرة"));
    for bad in [
        "ab",
        &"x".repeat(31),
        "-dash",
        "a@b.c",
        "hi<script>",
        "Moderator",
        "STAFF",
        "ad_min",
    ] {
        // "ad_min" is "ad min", which is free; the others are refused.
        if bad == "ad_min" {
            assert!(check_name(bad).is_ok());
            continue;
        }
        assert!(check_name(bad).is_err(), "{bad}");
    }
    assert_eq!(name_key("Sun_Flower"), name_key("sun flower"));
    assert_eq!(name_key("SUN.flower"), name_key("sun-Flower"));
}

#[test]
fn names_are_unique_in_the_organisation_case_insensitively_and_changeable() {
    Forums::with(())
        .given(vec![opened_forum()])
        .when(choose(ANNA, "Sunflower"))
        .then_expect_events(vec![chosen(ANNA, "Sunflower", None)]);
    // Another person cannot take it, in any case or spelling.
    Forums::with(())
        .given(vec![opened_forum(), chosen(ANNA, "Sunflower", None)])
        .when(choose(BEN, "SUNFLOWER"))
        .then_expect_error(ForumError::NameTaken);
    Forums::with(())
        .given(vec![opened_forum(), chosen(ANNA, "Night Owl", None)])
        .when(choose(BEN, "night_OWL"))
        .then_expect_error(ForumError::NameTaken);
    // Its holder changes it; the previous name is kept in the event.
    Forums::with(())
        .given(vec![opened_forum(), chosen(ANNA, "Sunflower", None)])
        .when(choose(ANNA, "Night Owl"))
        .then_expect_events(vec![chosen(ANNA, "Night Owl", Some("Sunflower"))]);
    // A name given up is free again.
    Forums::with(())
        .given(vec![
            opened_forum(),
            chosen(ANNA, "Sunflower", None),
            chosen(ANNA, "Night Owl", Some("Sunflower")),
        ])
        .when(choose(BEN, "Sunflower"))
        .then_expect_events(vec![chosen(BEN, "Sunflower", None)]);
    Forums::with(())
        .given(vec![opened_forum(), chosen(ANNA, "Sunflower", None)])
        .when(choose(ANNA, "Sunflower"))
        .then_expect_error(ForumError::NothingChanged("that is your name already"));
    // Staff take part under their profile's name.
    Forums::with(())
        .given(vec![opened_forum()])
        .when(ForumCommand::ChooseName {
            person: NURSE,
            kind: MemberKind::Staff,
            name: "Nurse Joy".into(),
            at: t(1),
        })
        .then_expect_error(ForumError::NotAllowed(
            "staff take part under their profile's name",
        ));
}

#[test]
fn moderators_add_and_retire_categories_within_limits() {
    let add = |key: &str| ForumCommand::AddCategory {
        key: key.into(),
        title: "Hearing voices".into(),
        description: String::new(),
        by: MOD,
        at: t(2),
    };
    Forums::with(())
        .given(vec![opened_forum()])
        .when(add("voices"))
        .then_expect_events(vec![ForumEvent::CategoryAdded {
            category: Category {
                key: "voices".into(),
                title: "Hearing voices".into(),
                description: String::new(),
                retired: false,
            },
            by: MOD,
            at: t(2),
        }]);
    Forums::with(())
        .given(vec![opened_forum()])
        .when(add("sleep"))
        .then_expect_error(ForumError::Duplicate {
            item: "category",
            id: "sleep".into(),
        });
    Forums::with(())
        .given(vec![opened_forum()])
        .when(add("Bad Key"))
        .then_expect_error(InputError::InvalidDomainKey { max: 40 }.into());
    let retire = ForumCommand::RetireCategory {
        key: "sleep".into(),
        reason: "merged into everyday life".into(),
        by: MOD,
        at: t(3),
    };
    let mut forum = Forum::default();
    forum.apply(opened_forum());
    let events = forum.decide(retire.clone()).expect("retires");
    forum.apply(events[0].clone());
    assert!(forum.open_category("sleep").is_none());
    assert!(forum.open_category("medication").is_some());
    assert_eq!(
        forum.decide(retire),
        Err(ForumError::NothingChanged("the category is retired"))
    );
    // A key that could be no category's is refused as input, not echoed back.
    assert_eq!(
        forum.decide(ForumCommand::RetireCategory {
            key: "x".repeat(10_000),
            reason: "r".into(),
            by: MOD,
            at: t(4),
        }),
        Err(InputError::InvalidDomainKey { max: 40 }.into())
    );
}

#[test]
fn a_silence_lasts_until_it_ends_or_is_lifted() {
    let silence = ForumCommand::Silence {
        silence_id: p(1),
        person: ANNA,
        shown_as: "Sunflower".into(),
        until: t(60 * 24),
        reason: "repeated insults".into(),
        by: MOD,
        at: t(0),
    };
    let mut forum = Forum::default();
    forum.apply(opened_forum());
    for e in forum.decide(silence.clone()).expect("silences") {
        forum.apply(e);
    }
    assert_eq!(forum.silenced(ANNA, t(10)), Some(t(60 * 24)));
    assert!(!may_write(forum.silenced(ANNA, t(10)), t(10)));
    assert!(may_write(forum.silenced(ANNA, t(60 * 24)), t(60 * 24)));
    assert_eq!(forum.silenced(BEN, t(10)), None);
    let lift = ForumCommand::LiftSilence {
        silence_id: p(1),
        reason: "apologised".into(),
        by: MOD,
        at: t(20),
    };
    for e in forum.decide(lift.clone()).expect("lifts") {
        forum.apply(e);
    }
    assert_eq!(forum.silenced(ANNA, t(30)), None);
    assert_eq!(
        forum.decide(lift),
        Err(ForumError::NothingChanged("the silence is over"))
    );
    // Not oneself, not for more than a year, not into the past.
    let mut own = silence.clone();
    if let ForumCommand::Silence { person, .. } = &mut own {
        *person = MOD;
    }
    assert!(matches!(forum.decide(own), Err(ForumError::NotAllowed(_))));
    for until in [t(-1), t(0) + Duration::days(SILENCE_MAX_DAYS + 1)] {
        let mut long = silence.clone();
        if let ForumCommand::Silence {
            until: u,
            silence_id,
            ..
        } = &mut long
        {
            *u = until;
            *silence_id = p(2);
        }
        assert!(matches!(forum.decide(long), Err(ForumError::NotAllowed(_))));
    }
}

fn open_topic(by: Member) -> TopicCommand {
    TopicCommand::Open {
        topic_id: TOPIC,
        organisation: ORG.into(),
        category: "sleep".into(),
        title: " Awake at 4 ".into(),
        post_id: p(1),
        body: "Anyone else awake at 4 every night?".into(),
        by,
        at: t(0),
    }
}

fn topic_opened(by: Member) -> TopicEvent {
    TopicEvent::TopicOpened {
        topic_id: TOPIC,
        organisation: ORG.into(),
        category: "sleep".into(),
        title: "Awake at 4".into(),
        post_id: p(1),
        author: by.person,
        kind: by.kind,
        body: "Anyone else awake at 4 every night?".into(),
        at: t(0),
    }
}

fn reply(n: u128, by: Member, at: i64) -> TopicCommand {
    TopicCommand::Reply {
        post_id: p(n),
        body: format!("reply {n}"),
        quote_of: None,
        by,
        at: t(at),
    }
}

fn replied(n: u128, by: Member, number: u32, at: i64) -> TopicEvent {
    TopicEvent::ReplyPosted {
        post_id: p(n),
        author: by.person,
        kind: by.kind,
        body: format!("reply {n}"),
        quote_of: None,
        number,
        at: t(at),
    }
}

fn topic(events: Vec<TopicEvent>) -> Topic {
    let mut topic = Topic::default();
    for e in events {
        topic.apply(e);
    }
    topic
}

#[test]
fn a_topic_opens_with_its_first_post_and_takes_replies_and_quotes() {
    Topics::with(())
        .given_no_previous_events()
        .when(open_topic(peer(ANNA)))
        .then_expect_events(vec![topic_opened(peer(ANNA))]);
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(reply(2, staff(NURSE), 5))
        .then_expect_events(vec![replied(2, staff(NURSE), 2, 5)]);
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(TopicCommand::Reply {
            post_id: p(2),
            body: "me too".into(),
            quote_of: Some(p(1)),
            by: peer(BEN),
            at: t(5),
        })
        .then_expect_events(vec![TopicEvent::ReplyPosted {
            post_id: p(2),
            author: BEN,
            kind: MemberKind::Peer,
            body: "me too".into(),
            quote_of: Some(p(1)),
            number: 2,
            at: t(5),
        }]);
    // Quoting a post that is not in the topic, or was withdrawn, is refused.
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(TopicCommand::Reply {
            post_id: p(2),
            body: "me too".into(),
            quote_of: Some(p(9)),
            by: peer(BEN),
            at: t(5),
        })
        .then_expect_error(ForumError::Unknown {
            item: "post",
            id: p(9).to_string(),
        });
    // Texts have limits.
    let long = TopicCommand::Reply {
        post_id: p(2),
        body: "x".repeat(POST_MAX + 1),
        quote_of: None,
        by: peer(BEN),
        at: t(5),
    };
    assert!(matches!(
        topic(vec![topic_opened(peer(ANNA))]).decide(long),
        Err(ForumError::Input(_))
    ));
    let mut untitled = open_topic(peer(ANNA));
    if let TopicCommand::Open { title, .. } = &mut untitled {
        *title = "   ".into();
    }
    assert!(matches!(
        Topic::default().decide(untitled),
        Err(ForumError::Input(_))
    ));
    // Nothing happens in a topic that does not exist.
    assert!(matches!(
        Topic::default().decide(reply(2, peer(BEN), 1)),
        Err(ForumError::Unknown { item: "topic", .. })
    ));
}

#[test]
fn a_closed_topic_takes_replies_from_moderators_only() {
    let closed = vec![
        topic_opened(peer(ANNA)),
        TopicEvent::TopicClosed {
            by: MOD,
            reason: "resolved".into(),
            at: t(1),
        },
    ];
    Topics::with(())
        .given(closed.clone())
        .when(reply(2, peer(BEN), 5))
        .then_expect_error(ForumError::WrongState {
            item: "the topic",
            state: "closed",
            action: "replied to",
        });
    Topics::with(())
        .given(closed.clone())
        .when(reply(2, moderator(), 5))
        .then_expect_events(vec![replied(2, moderator(), 2, 5)]);
    // Only moderators close and reopen.
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(TopicCommand::Close {
            reason: "done".into(),
            by: peer(ANNA),
            at: t(2),
        })
        .then_expect_error(ForumError::NotAllowed("only moderators do this"));
    Topics::with(())
        .given(closed)
        .when(TopicCommand::Reopen {
            reason: "asked to".into(),
            by: moderator(),
            at: t(2),
        })
        .then_expect_events(vec![TopicEvent::TopicReopened {
            by: MOD,
            reason: "asked to".into(),
            at: t(2),
        }]);
}

#[test]
fn the_author_edits_keeping_revisions_and_withdraws_their_post() {
    let edit = |by: Member, title: Option<&str>| TopicCommand::Edit {
        post_id: p(1),
        body: "Anyone else awake at 4? (edited)".into(),
        title: title.map(str::to_string),
        by,
        at: t(3),
    };
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(edit(peer(ANNA), Some("Awake at four")))
        .then_expect_events(vec![TopicEvent::PostEdited {
            post_id: p(1),
            body: "Anyone else awake at 4? (edited)".into(),
            title: Some("Awake at four".into()),
            revision: 2,
            at: t(3),
        }]);
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(edit(peer(BEN), None))
        .then_expect_error(ForumError::NotAllowed("only the author edits a post"));
    // A moderator does not edit others' words either.
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(edit(moderator(), None))
        .then_expect_error(ForumError::NotAllowed("only the author edits a post"));
    // A reply has no title.
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA)), replied(2, peer(BEN), 2, 1)])
        .when(TopicCommand::Edit {
            post_id: p(2),
            body: "x".into(),
            title: Some("t".into()),
            by: peer(BEN),
            at: t(3),
        })
        .then_expect_error(ForumError::NotAllowed(
            "only the topic's first post carries its title",
        ));
    let withdrawn = TopicEvent::PostWithdrawn {
        post_id: p(1),
        at: t(4),
    };
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(TopicCommand::Withdraw {
            post_id: p(1),
            by: peer(BEN),
            at: t(4),
        })
        .then_expect_error(ForumError::NotAllowed("only the author withdraws a post"));
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(TopicCommand::Withdraw {
            post_id: p(1),
            by: peer(ANNA),
            at: t(4),
        })
        .then_expect_events(vec![withdrawn.clone()]);
    // Withdrawn is final: no edit, quote, support or flag of it.
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA)), withdrawn])
        .when(edit(peer(ANNA), None))
        .then_expect_error(ForumError::WrongState {
            item: "the post",
            state: "withdrawn",
            action: "edited",
        });
}

#[test]
fn support_is_one_per_person_per_post_and_not_for_ones_own() {
    let support = |by: Member| TopicCommand::Support {
        post_id: p(1),
        by,
        at: t(2),
    };
    let given = TopicEvent::SupportGiven {
        post_id: p(1),
        by: BEN,
        at: t(2),
    };
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(support(peer(BEN)))
        .then_expect_events(vec![given.clone()]);
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA)), given.clone()])
        .when(support(peer(BEN)))
        .then_expect_error(ForumError::NothingChanged("you support this post already"));
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA))])
        .when(support(peer(ANNA)))
        .then_expect_error(ForumError::NotAllowed("you cannot support your own post"));
    Topics::with(())
        .given(vec![topic_opened(peer(ANNA)), given])
        .when(TopicCommand::Unsupport {
            post_id: p(1),
            by: peer(BEN),
            at: t(3),
        })
        .then_expect_events(vec![TopicEvent::SupportTakenBack {
            post_id: p(1),
            by: BEN,
            at: t(3),
        }]);
}

fn flag(by: Member, reason: FlagReason, at: i64) -> TopicCommand {
    TopicCommand::Flag {
        post_id: p(1),
        by,
        reason,
        note: String::new(),
        threshold: 3,
        at: t(at),
    }
}

fn flag_all(topic: &mut Topic, command: TopicCommand) -> Vec<TopicEvent> {
    let events = topic.decide(command).expect("flags");
    for e in &events {
        topic.apply(e.clone());
    }
    events
}

#[test]
fn flags_add_up_by_weight_and_hide_the_post_at_the_threshold() {
    assert_eq!(flag_weight(MemberKind::Peer), 1);
    assert_eq!(flag_weight(MemberKind::Staff), 2);
    assert_eq!(flag_weight(MemberKind::Moderator), 3);
    // Two peers: score 2, still shown.
    let mut t1 = topic(vec![topic_opened(peer(ANNA))]);
    assert_eq!(
        flag_all(&mut t1, flag(peer(BEN), FlagReason::Hurtful, 1)).len(),
        1
    );
    assert_eq!(
        flag_all(&mut t1, flag(peer(CARA), FlagReason::Spam, 2)).len(),
        1
    );
    assert!(t1.posts[0].hidden.is_none());
    assert_eq!(t1.posts[0].score, 2);
    // A staff member's flag weighs 2: score 4 >= 3, hidden pending review,
    // with the reason that weighs most.
    let events = flag_all(&mut t1, flag(staff(NURSE), FlagReason::Hurtful, 3));
    assert_eq!(
        events,
        vec![
            TopicEvent::PostFlagged {
                post_id: p(1),
                by: NURSE,
                kind: MemberKind::Staff,
                reason: FlagReason::Hurtful,
                note: String::new(),
                weight: 2,
                score: 4,
                at: t(3),
            },
            TopicEvent::PostHidden {
                post_id: p(1),
                by: None,
                reason: "hidden pending review: members flagged it as hurtful".into(),
                at: t(3),
            }
        ]
    );
    // One flag per person per post; not one's own.
    assert_eq!(
        t1.decide(flag(peer(BEN), FlagReason::Spam, 4)),
        Err(ForumError::NothingChanged("you flagged this post already"))
    );
    assert_eq!(
        t1.decide(flag(peer(ANNA), FlagReason::Spam, 4)),
        Err(ForumError::NotAllowed("you cannot flag your own post"))
    );
    // "Other" needs a note.
    let mut t2 = topic(vec![topic_opened(peer(ANNA))]);
    assert!(matches!(
        t2.decide(flag(peer(BEN), FlagReason::Other, 1)),
        Err(ForumError::Input(_))
    ));
    // A moderator's flag alone reaches the default threshold.
    let events = flag_all(&mut t2, flag(moderator(), FlagReason::OffTopic, 1));
    assert!(matches!(
        events.last(),
        Some(TopicEvent::PostHidden { by: None, .. })
    ));
}

#[test]
fn a_moderator_restores_a_hidden_post_and_later_flags_count_anew() {
    let mut t1 = topic(vec![topic_opened(peer(ANNA))]);
    flag_all(&mut t1, flag(moderator(), FlagReason::Hurtful, 1));
    assert!(t1.posts[0].hidden.is_some());
    // Members do not hide or restore.
    assert_eq!(
        t1.decide(TopicCommand::Restore {
            post_id: p(1),
            reason: "fine".into(),
            by: peer(BEN),
            at: t(2),
        }),
        Err(ForumError::NotAllowed("only moderators do this"))
    );
    let restored = flag_all(
        &mut t1,
        TopicCommand::Restore {
            post_id: p(1),
            reason: "read in context it is not hurtful".into(),
            by: moderator(),
            at: t(2),
        },
    );
    assert_eq!(
        restored,
        vec![TopicEvent::PostRestored {
            post_id: p(1),
            by: MOD,
            reason: "read in context it is not hurtful".into(),
            at: t(2),
        }]
    );
    assert_eq!(t1.posts[0].score, 0);
    // A new flag starts a new score: one peer does not hide it again.
    flag_all(&mut t1, flag(peer(BEN), FlagReason::Hurtful, 3));
    assert!(t1.posts[0].hidden.is_none());
    // Hiding by hand needs a reason, and not twice.
    assert!(matches!(
        t1.decide(TopicCommand::Hide {
            post_id: p(1),
            reason: " ".into(),
            by: moderator(),
            at: t(4),
        }),
        Err(ForumError::Input(_))
    ));
    flag_all(
        &mut t1,
        TopicCommand::Hide {
            post_id: p(1),
            reason: "names a person".into(),
            by: moderator(),
            at: t(4),
        },
    );
    assert_eq!(
        t1.posts[0].hidden,
        Some(Hidden {
            by: Some(MOD),
            reason: "names a person".into()
        })
    );
    assert_eq!(
        t1.decide(TopicCommand::Hide {
            post_id: p(1),
            reason: "again".into(),
            by: moderator(),
            at: t(5),
        }),
        Err(ForumError::NothingChanged("the post is hidden"))
    );
}

#[test]
fn a_concern_hides_nothing_and_is_raised_again_until_a_moderator_opens_it() {
    let mut t1 = topic(vec![topic_opened(peer(ANNA))]);
    let raise = TopicCommand::RaiseConcern {
        concern_id: p(50),
        post_id: p(1),
        note: "she sounds hopeless".into(),
        by: peer(BEN),
        at: t(1),
    };
    let events = flag_all(&mut t1, raise.clone());
    assert_eq!(
        events,
        vec![TopicEvent::ConcernRaised {
            concern_id: p(50),
            post_id: p(1),
            by: BEN,
            note: "she sounds hopeless".into(),
            at: t(1),
        }]
    );
    assert!(t1.posts[0].hidden.is_none(), "a concern hides nothing");
    // One open concern per person per post.
    let mut again = raise.clone();
    if let TopicCommand::RaiseConcern { concern_id, .. } = &mut again {
        *concern_id = p(51);
    }
    assert!(matches!(
        t1.decide(again.clone()),
        Err(ForumError::NothingChanged(_))
    ));
    // Unopened: raised again, round after round.
    assert!(concern_due(t(1), Duration::minutes(15), t(16)));
    assert!(!concern_due(
        t(1),
        Duration::minutes(15),
        t(15) + Duration::seconds(59)
    ));
    let first = flag_all(
        &mut t1,
        TopicCommand::RaiseConcernAgain {
            concern_id: p(50),
            every: Duration::minutes(15),
            at: t(16),
        },
    );
    assert_eq!(
        first,
        vec![TopicEvent::ConcernRaisedAgain {
            concern_id: p(50),
            round: 1,
            at: t(16),
        }]
    );
    let second = flag_all(
        &mut t1,
        TopicCommand::RaiseConcernAgain {
            concern_id: p(50),
            every: Duration::minutes(15),
            at: t(31),
        },
    );
    assert!(matches!(
        second[0],
        TopicEvent::ConcernRaisedAgain { round: 2, .. }
    ));
    // Another instance of the service, watching at the same moment, raises
    // it no second time in the same round.
    assert_eq!(
        t1.decide(TopicCommand::RaiseConcernAgain {
            concern_id: p(50),
            every: Duration::minutes(15),
            at: t(31),
        }),
        Err(ForumError::NothingChanged(
            "the concern was raised again lately"
        ))
    );
    // Members do not open or resolve concerns.
    assert_eq!(
        t1.decide(TopicCommand::OpenConcern {
            concern_id: p(50),
            by: staff(NURSE),
            at: t(32),
        }),
        Err(ForumError::NotAllowed("only moderators do this"))
    );
    flag_all(
        &mut t1,
        TopicCommand::OpenConcern {
            concern_id: p(50),
            by: moderator(),
            at: t(32),
        },
    );
    // Opened: never raised again.
    assert_eq!(
        t1.decide(TopicCommand::RaiseConcernAgain {
            concern_id: p(50),
            every: Duration::minutes(15),
            at: t(60),
        }),
        Err(ForumError::NothingChanged("a moderator has the concern"))
    );
    let resolved = flag_all(
        &mut t1,
        TopicCommand::ResolveConcern {
            concern_id: p(50),
            action: ConcernAction::ContactedPerson,
            note: "called her; she is with her sister tonight".into(),
            by: moderator(),
            at: t(40),
        },
    );
    assert_eq!(resolved.len(), 1);
    // Resolved: the same member may raise a new concern about the post.
    assert!(t1.decide(again).is_ok());
}

#[test]
fn resolving_an_unopened_concern_opens_it_first() {
    let mut t1 = topic(vec![topic_opened(peer(ANNA))]);
    flag_all(
        &mut t1,
        TopicCommand::RaiseConcern {
            concern_id: p(50),
            post_id: p(1),
            note: String::new(),
            by: staff(NURSE),
            at: t(1),
        },
    );
    let events = t1
        .decide(TopicCommand::ResolveConcern {
            concern_id: p(50),
            action: ConcernAction::NoActionNeeded,
            note: String::new(),
            by: moderator(),
            at: t(2),
        })
        .expect("resolves");
    assert!(matches!(events[0], TopicEvent::ConcernOpened { .. }));
    assert!(matches!(events[1], TopicEvent::ConcernResolved { .. }));
}

#[test]
fn a_post_shows_its_text_by_state_and_reader() {
    // Shown: everyone reads it.
    assert!(post_shown(false, false, false, false).text);
    // Withdrawn: nobody, the author and moderators included.
    for (author, moderator) in [(false, false), (true, false), (false, true)] {
        assert_eq!(
            post_shown(true, false, author, moderator),
            PostShown {
                text: false,
                hidden_reason: false
            }
        );
    }
    // Hidden: its author and moderators read it and why; others neither.
    assert_eq!(
        post_shown(false, true, true, false),
        PostShown {
            text: true,
            hidden_reason: true
        }
    );
    assert!(post_shown(false, true, false, true).text);
    assert_eq!(
        post_shown(false, true, false, false),
        PostShown {
            text: false,
            hidden_reason: false
        }
    );
}

#[test]
fn a_member_follows_and_reads_topics() {
    let mut reader = Reader::default();
    let follow = |following| ReaderCommand::Follow {
        topic_id: TOPIC,
        following,
        at: t(1),
    };
    for e in reader.decide(follow(false)).expect("follows") {
        reader.apply(e);
    }
    assert_eq!(
        reader.decide(follow(true)),
        Err(ForumError::NothingChanged("you follow this topic already"))
    );
    let read = |count| ReaderCommand::MarkRead {
        topic_id: TOPIC,
        count,
        posts: 5,
        at: t(2),
    };
    // Read marks only go forward, and not past the last post.
    assert_eq!(
        reader.decide(read(9)).expect("reads"),
        vec![ReaderEvent::TopicRead {
            topic_id: TOPIC,
            count: 5,
            at: t(2),
        }]
    );
    for e in reader.decide(read(3)).expect("reads") {
        reader.apply(e);
    }
    assert!(matches!(
        reader.decide(read(2)),
        Err(ForumError::NothingChanged(_))
    ));
    for e in reader
        .decide(ReaderCommand::Unfollow {
            topic_id: TOPIC,
            following: true,
            at: t(3),
        })
        .expect("unfollows")
    {
        reader.apply(e);
    }
    assert!(reader.follows.is_empty());
    // Not following (as the read model says): nothing to unfollow.
    assert!(matches!(
        reader.decide(ReaderCommand::Unfollow {
            topic_id: TOPIC,
            following: false,
            at: t(4),
        }),
        Err(ForumError::NothingChanged(_))
    ));
}

#[test]
fn refusals_have_the_right_class() {
    use crate::refusal::{ErrorKind, Refusal};
    assert_eq!(ForumError::NameTaken.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(ForumError::BadName("x").kind(), ErrorKind::BadInput);
    assert_eq!(ForumError::NotAllowed("x").kind(), ErrorKind::Forbidden);
    assert_eq!(
        ForumError::Unknown {
            item: "post",
            id: String::new()
        }
        .kind(),
        ErrorKind::NotFound
    );
}
