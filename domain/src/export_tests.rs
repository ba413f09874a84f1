#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use cqrs_es::DomainEvent;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::care::{CareEvent, Side};
use crate::forum::{MemberKind, TopicEvent};
use crate::messaging::ConversationEvent;
use crate::study::{EnrolmentEvent, ParticipantRole};
use crate::trail::{AccessRecord, Basis, GENESIS};

const ME: Uuid = Uuid::from_u128(1);
const PROVIDER: Uuid = Uuid::from_u128(2);
const OTHER: Uuid = Uuid::from_u128(3);
const ORG: &str = "clinic-a";

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()
}

/// One stored event: its payload as the store holds it.
struct Stored {
    aggregate_type: &'static str,
    aggregate_id: String,
    event_type: String,
    organisation: &'static str,
    actor: Uuid,
    payload: Value,
}

impl Stored {
    fn of<E: DomainEvent>(
        aggregate_type: &'static str,
        id: impl ToString,
        actor: Uuid,
        e: E,
    ) -> Self {
        Stored {
            aggregate_type,
            aggregate_id: id.to_string(),
            event_type: e.event_type(),
            organisation: ORG,
            actor,
            payload: serde_json::to_value(&e).unwrap(),
        }
    }

    fn raw(
        aggregate_type: &'static str,
        id: impl ToString,
        event_type: &str,
        actor: Uuid,
        fields: Value,
    ) -> Self {
        Stored {
            aggregate_type,
            aggregate_id: id.to_string(),
            event_type: event_type.to_string(),
            organisation: ORG,
            actor,
            payload: json!({ event_type: fields }),
        }
    }

    fn elsewhere(mut self) -> Self {
        self.organisation = "clinic-b";
        self
    }
}

fn choose(selector: &mut Selector, s: &Stored) -> Choice {
    let actor = s.actor.to_string();
    selector.select(&EventRef {
        aggregate_type: s.aggregate_type,
        aggregate_id: &s.aggregate_id,
        event_type: &s.event_type,
        organisation: s.organisation,
        actor: &actor,
        payload: &s.payload,
    })
}

fn invited(relationship: Uuid, user: Uuid, provider: Uuid) -> Stored {
    Stored::of(
        crate::care::RELATIONSHIP_TYPE,
        relationship,
        provider,
        CareEvent::Invited {
            relationship_id: relationship,
            user_id: user,
            provider_id: provider,
            organisation: ORG.into(),
            by: Side::Provider,
            expires_at: at(),
            at: at(),
        },
    )
}

#[test]
fn a_portal_goes_by_section_and_only_the_persons_own_in_their_organisation() {
    let mut s = Selector::new(ME, ORG);
    let goal = Stored::raw("Portal", ME, "GoalSet", ME, json!({"title": "walk"}));
    let med = Stored::raw("Portal", ME, "MedicationAdded", ME, json!({"name": "x"}));
    let plan = Stored::raw("Portal", ME, "CrisisPlanRevised", ME, json!({}));
    assert_eq!(choose(&mut s, &goal), Choice::Take(Part::Core));
    assert_eq!(choose(&mut s, &med), Choice::Take(Part::Medications));
    assert_eq!(choose(&mut s, &plan), Choice::Take(Part::CrisisPlan));
    let others = Stored::raw("Portal", OTHER, "GoalSet", OTHER, json!({"title": "x"}));
    assert_eq!(choose(&mut s, &others), Choice::Skip);
    let same_id_elsewhere = Stored::raw("Portal", ME, "GoalSet", ME, json!({})).elsewhere();
    assert_eq!(choose(&mut s, &same_id_elsewhere), Choice::Skip);
    let catalogue = Stored::raw(
        crate::catalogue::AGGREGATE_TYPE,
        ORG,
        "ExerciseAdded",
        ME,
        json!({}),
    );
    assert_eq!(choose(&mut s, &catalogue), Choice::Skip);
}

#[test]
fn a_relationship_and_its_grants_and_agreements_are_both_sides_data() {
    let relationship = Uuid::from_u128(10);
    let unrelated = Uuid::from_u128(11);
    let grant = Stored::of(
        crate::care::RELATIONSHIP_TYPE,
        relationship,
        ME,
        CareEvent::ConsentGranted {
            section: crate::portal::Section::Medications,
            until: None,
            at: at(),
        },
    );
    let proposal = Stored::raw(
        crate::agreement::AGREEMENT_TYPE,
        relationship,
        "AgreementProposed",
        PROVIDER,
        json!({}),
    );
    for me in [ME, PROVIDER] {
        let mut s = Selector::new(me, ORG);
        assert_eq!(
            choose(&mut s, &invited(relationship, ME, PROVIDER)),
            Choice::Take(Part::Relationships)
        );
        assert_eq!(choose(&mut s, &grant), Choice::Take(Part::Consent));
        assert_eq!(choose(&mut s, &proposal), Choice::Take(Part::Agreements));
    }
    let mut s = Selector::new(ME, ORG);
    assert_eq!(
        choose(&mut s, &invited(unrelated, OTHER, PROVIDER)),
        Choice::Skip
    );
    let other_grant = Stored {
        aggregate_id: unrelated.to_string(),
        ..grant
    };
    assert_eq!(choose(&mut s, &other_grant), Choice::Skip);
    let other_proposal = Stored {
        aggregate_id: unrelated.to_string(),
        ..proposal
    };
    assert_eq!(choose(&mut s, &other_proposal), Choice::Skip);
}

#[test]
fn a_conversation_is_theirs_until_they_are_removed_from_it() {
    let conversation = Uuid::from_u128(20);
    let started = Stored::of(
        crate::messaging::CONVERSATION_TYPE,
        conversation,
        OTHER,
        ConversationEvent::ConversationStarted {
            conversation_id: conversation,
            organisation: ORG.into(),
            user_id: OTHER,
            providers: vec![PROVIDER, ME],
            subject: "s".into(),
            started_by: OTHER,
            at: at(),
        },
    );
    let message = Stored::raw(
        crate::messaging::CONVERSATION_TYPE,
        conversation,
        "MessagePosted",
        OTHER,
        json!({"by": OTHER.to_string()}),
    );
    let removed = Stored::raw(
        crate::messaging::CONVERSATION_TYPE,
        conversation,
        "ProviderRemoved",
        OTHER,
        json!({"provider": ME.to_string()}),
    );
    let mut s = Selector::new(ME, ORG);
    assert_eq!(choose(&mut s, &started), Choice::Take(Part::Messages));
    assert_eq!(choose(&mut s, &message), Choice::Take(Part::Messages));
    assert_eq!(choose(&mut s, &removed), Choice::Take(Part::Messages));
    assert_eq!(choose(&mut s, &message), Choice::Skip, "after removal");
    let mut outsider = Selector::new(Uuid::from_u128(99), ORG);
    assert_eq!(choose(&mut outsider, &started), Choice::Skip);
    assert_eq!(choose(&mut outsider, &message), Choice::Skip);
}

fn record(reader: Uuid, reader_org: &str, subject: Uuid, org: &str) -> Stored {
    let record = AccessRecord {
        reader_id: reader,
        reader_role: "provider".into(),
        reader_organisation: reader_org.into(),
        subject_id: Some(subject),
        organisation: org.into(),
        section: "core".into(),
        query: "portal".into(),
        basis: Basis::Grant,
        relationship_id: None,
        basis_sequence: None,
        refusal: None,
        detail: None,
        request_id: "r".into(),
        client_address: None,
        at: at(),
        attempts: 1,
        first_at: None,
        prev_hash: GENESIS.into(),
    };
    Stored {
        aggregate_type: crate::trail::AGGREGATE_TYPE,
        aggregate_id: org.into(),
        event_type: crate::trail::EVENT_TYPE.into(),
        organisation: ORG,
        actor: reader,
        payload: serde_json::to_value(record).unwrap(),
    }
}

#[test]
fn the_trail_gives_reads_of_them_and_reads_by_them_within_their_organisation() {
    let mut s = Selector::new(ME, ORG);
    assert_eq!(
        choose(&mut s, &record(PROVIDER, ORG, ME, ORG)),
        Choice::Take(Part::AccessLog)
    );
    assert_eq!(
        choose(&mut s, &record(ME, ORG, OTHER, ORG)),
        Choice::Take(Part::ReadsMade)
    );
    assert_eq!(
        choose(&mut s, &record(PROVIDER, ORG, OTHER, ORG)),
        Choice::Skip
    );
    // The same ids in another organisation's trail are other people.
    assert_eq!(
        choose(&mut s, &record(PROVIDER, "clinic-b", ME, "clinic-b")),
        Choice::Skip
    );
    assert_eq!(
        choose(&mut s, &record(ME, "clinic-b", OTHER, "clinic-b")),
        Choice::Skip
    );
}

#[test]
fn a_study_is_theirs_once_they_enrolled_and_usage_is_theirs_alone() {
    let study = Uuid::from_u128(30);
    let registered = Stored::raw(
        crate::study::STUDY_TYPE,
        study,
        "StudyRegistered",
        OTHER,
        json!({"info": {"study_id": study.to_string()}}),
    );
    let enrolled = Stored::of(
        crate::study::ENROLMENT_TYPE,
        crate::study::enrolment_id(study, ME),
        ME,
        EnrolmentEvent::Enrolled {
            study_id: study,
            participant_id: ME,
            role: ParticipantRole::ServiceUser,
            at: at(),
        },
    );
    let mut s = Selector::new(ME, ORG);
    assert_eq!(choose(&mut s, &registered), Choice::IfEnrolled(study));
    assert!(!s.enrolled(study));
    assert_eq!(choose(&mut s, &enrolled), Choice::Take(Part::Studies));
    assert!(s.enrolled(study));
    let used = |who: Uuid| Stored {
        aggregate_type: crate::study::USAGE_TYPE,
        aggregate_id: "u".into(),
        event_type: crate::study::USAGE_EVENT.into(),
        organisation: ORG,
        actor: who,
        payload: json!({"participant_id": who.to_string(), "module": "network"}),
    };
    assert_eq!(choose(&mut s, &used(ME)), Choice::Take(Part::ResearchUsage));
    assert_eq!(choose(&mut s, &used(OTHER)), Choice::Skip);
    let mut other = Selector::new(OTHER, ORG);
    assert_eq!(choose(&mut other, &enrolled), Choice::Skip);
    assert!(!other.enrolled(study));
}

#[test]
fn in_the_forum_their_own_acts_and_what_was_done_to_their_posts_but_not_others_words() {
    let topic = Uuid::from_u128(40);
    let (mine, theirs) = (Uuid::from_u128(41), Uuid::from_u128(42));
    let opened = Stored::of(
        crate::forum::TOPIC_TYPE,
        topic,
        ME,
        TopicEvent::TopicOpened {
            topic_id: topic,
            organisation: ORG.into(),
            category: "c".into(),
            title: "t".into(),
            post_id: mine,
            author: ME,
            kind: MemberKind::Peer,
            body: "b".into(),
            at: at(),
        },
    );
    let reply = Stored::of(
        crate::forum::TOPIC_TYPE,
        topic,
        OTHER,
        TopicEvent::ReplyPosted {
            post_id: theirs,
            author: OTHER,
            kind: MemberKind::Peer,
            body: "someone else's words".into(),
            quote_of: Some(mine),
            number: 2,
            at: at(),
        },
    );
    let hidden = Stored::of(
        crate::forum::TOPIC_TYPE,
        topic,
        PROVIDER,
        TopicEvent::PostHidden {
            post_id: mine,
            by: Some(PROVIDER),
            reason: "r".into(),
            at: at(),
        },
    );
    let flagged_by_other = Stored::raw(
        crate::forum::TOPIC_TYPE,
        topic,
        "PostFlagged",
        OTHER,
        json!({"post_id": mine.to_string(), "by": OTHER.to_string(), "note": "n"}),
    );
    let support_by_other = Stored::raw(
        crate::forum::TOPIC_TYPE,
        topic,
        "SupportGiven",
        OTHER,
        json!({"post_id": mine.to_string(), "by": OTHER.to_string()}),
    );
    let my_support = Stored::raw(
        crate::forum::TOPIC_TYPE,
        topic,
        "SupportGiven",
        ME,
        json!({"post_id": theirs.to_string(), "by": ME.to_string()}),
    );
    let edited_other = Stored::raw(
        crate::forum::TOPIC_TYPE,
        topic,
        "PostEdited",
        OTHER,
        json!({"post_id": theirs.to_string(), "body": "x"}),
    );
    let mut s = Selector::new(ME, ORG);
    assert_eq!(choose(&mut s, &opened), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &reply), Choice::Skip);
    assert_eq!(choose(&mut s, &hidden), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &flagged_by_other), Choice::Skip);
    assert_eq!(choose(&mut s, &support_by_other), Choice::Skip);
    assert_eq!(choose(&mut s, &my_support), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &edited_other), Choice::Skip);
    let name = Stored::raw(
        crate::forum::FORUM_TYPE,
        ORG,
        "NameChosen",
        ME,
        json!({"person": ME.to_string(), "name": "n"}),
    );
    let silenced = Stored::raw(
        crate::forum::FORUM_TYPE,
        ORG,
        "MemberSilenced",
        PROVIDER,
        json!({"person": ME.to_string()}),
    );
    let someone_elses_name = Stored::raw(
        crate::forum::FORUM_TYPE,
        ORG,
        "NameChosen",
        OTHER,
        json!({"person": OTHER.to_string()}),
    );
    assert_eq!(choose(&mut s, &name), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &silenced), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &someone_elses_name), Choice::Skip);
    let reading = |who: Uuid| {
        Stored::raw(
            crate::forum::READER_TYPE,
            crate::forum::reader_id(ORG, who),
            "TopicRead",
            who,
            json!({}),
        )
    };
    assert_eq!(choose(&mut s, &reading(ME)), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &reading(OTHER)), Choice::Skip);
    // Their silence lifted, their topic closed: theirs; someone else's: not.
    let silence = Uuid::from_u128(43);
    let silenced = Stored::raw(
        crate::forum::FORUM_TYPE,
        ORG,
        "MemberSilenced",
        PROVIDER,
        json!({"silence_id": silence.to_string(), "person": ME.to_string(), "by": PROVIDER.to_string()}),
    );
    let lifted = |id: Uuid| {
        Stored::raw(
            crate::forum::FORUM_TYPE,
            ORG,
            "SilenceLifted",
            PROVIDER,
            json!({"silence_id": id.to_string(), "by": PROVIDER.to_string()}),
        )
    };
    assert_eq!(choose(&mut s, &silenced), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &lifted(silence)), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &lifted(Uuid::from_u128(44))), Choice::Skip);
    let closed = |topic: Uuid| {
        Stored::raw(
            crate::forum::TOPIC_TYPE,
            topic,
            "TopicClosed",
            PROVIDER,
            json!({"by": PROVIDER.to_string(), "reason": "r"}),
        )
    };
    assert_eq!(choose(&mut s, &closed(topic)), Choice::Take(Part::Forum));
    assert_eq!(choose(&mut s, &closed(Uuid::from_u128(45))), Choice::Skip);
}

fn redacted(s: &Stored, part: Part) -> Redaction {
    let actor = s.actor.to_string();
    redaction(
        ME,
        part,
        &EventRef {
            aggregate_type: s.aggregate_type,
            aggregate_id: &s.aggregate_id,
            event_type: &s.event_type,
            organisation: s.organisation,
            actor: &actor,
            payload: &s.payload,
        },
    )
}

#[test]
fn others_addresses_and_search_terms_and_who_moderated_are_left_out() {
    // A read of their data by someone else: as their own access log shows it.
    let read = record(PROVIDER, ORG, ME, ORG);
    assert_eq!(
        redacted(&read, Part::AccessLog),
        Redaction {
            fields: vec!["client_address", "request_id", "detail"],
            actor: false
        }
    );
    // An admin's stated reason for resolving their forum name is theirs.
    let mut resolved = record(PROVIDER, ORG, ME, ORG);
    resolved.payload["section"] = json!(crate::trail::FORUM_IDENTITY);
    assert_eq!(
        redacted(&resolved, Part::AccessLog).fields,
        vec!["client_address", "request_id"]
    );
    // Their own reads keep everything.
    assert_eq!(
        redacted(&record(ME, ORG, ME, ORG), Part::AccessLog),
        Redaction::default()
    );
    assert_eq!(
        redacted(&record(ME, ORG, OTHER, ORG), Part::ReadsMade),
        Redaction::default()
    );
    // Done to them in the forum: not by whom.
    let hidden = Stored::raw(
        crate::forum::TOPIC_TYPE,
        "t",
        "PostHidden",
        OTHER,
        json!({"by": null}),
    );
    assert_eq!(
        redacted(&hidden, Part::Forum),
        Redaction {
            fields: vec!["by"],
            actor: true
        }
    );
    // Their own silencing of a member: not the member's person id.
    let silencing = Stored::raw(
        crate::forum::FORUM_TYPE,
        ORG,
        "MemberSilenced",
        ME,
        json!({"person": OTHER.to_string(), "by": ME.to_string()}),
    );
    assert_eq!(
        redacted(&silencing, Part::Forum),
        Redaction {
            fields: vec!["person"],
            actor: false
        }
    );
    let own_post = Stored::raw(
        crate::forum::TOPIC_TYPE,
        "t",
        "ReplyPosted",
        ME,
        json!({"author": ME.to_string()}),
    );
    assert_eq!(redacted(&own_post, Part::Forum), Redaction::default());
    // Elsewhere nothing is left out.
    let goal = Stored::raw("Portal", ME, "GoalSet", ME, json!({}));
    assert_eq!(redacted(&goal, Part::Core), Redaction::default());
}

#[test]
fn their_erasure_stream_is_theirs() {
    let mut s = Selector::new(ME, ORG);
    let mine = Stored::raw(
        crate::erasure::ERASURE_TYPE,
        crate::erasure::stream_id(ORG, ME),
        "ErasureRequested",
        ME,
        json!({}),
    );
    let other = Stored::raw(
        crate::erasure::ERASURE_TYPE,
        crate::erasure::stream_id(ORG, OTHER),
        "ErasureRequested",
        OTHER,
        json!({}),
    );
    assert_eq!(choose(&mut s, &mine), Choice::Take(Part::Erasure));
    assert_eq!(choose(&mut s, &other), Choice::Skip);
}

#[test]
fn every_stored_event_kind_has_a_part_but_the_catalogue_and_every_part_has_kinds() {
    for declarations in crate::declarations::all() {
        for event in declarations.events {
            let parts = parts_of_kind(declarations.aggregate_type, event.event_type);
            assert_eq!(
                parts.is_empty(),
                declarations.aggregate_type == crate::catalogue::AGGREGATE_TYPE,
                "{}/{}",
                declarations.aggregate_type,
                event.event_type
            );
        }
    }
    for part in Part::ALL {
        assert!(!part.event_kinds().is_empty(), "{}", part.as_str());
        assert!(!part.description().is_empty());
    }
}
