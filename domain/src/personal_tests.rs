//! Every field of every event type is declared personal or clear, and every
//! personal field's erased value still reads as the event.
//!
//! The variants are not listed by hand: `serde-reflection` traces each event
//! type's `Deserialize` and hands back one value of every variant, so a new
//! event, or a new field of an old one, fails here until it is declared.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::DomainEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_reflection::{Samples, Tracer, TracerConfig};

use super::*;
use crate::personal::*;

/// A text every traced string takes: it parses as the times the events hold.
const TIME: &str = "2026-01-01T00:00:00Z";

fn tracer() -> (Tracer, Samples) {
    let config = TracerConfig::default()
        .is_human_readable(false)
        .record_samples_for_structs(true)
        .default_borrowed_str_value(TIME)
        .default_string_value(TIME.to_string())
        // A uuid in the compact form: 16 bytes.
        .default_borrowed_bytes_value(&[1; 16])
        .default_byte_buf_value(vec![1; 16]);
    let mut tracer = Tracer::new(config);
    let mut samples = Samples::new();
    // Structs whose fields a placeholder text cannot stand for (dates): traced from a real value, then injected.
    tracer
        .trace_value(
            &mut samples,
            &crate::study::StudyInfo {
                study_id: uuid::Uuid::nil(),
                organisation: "org".into(),
                title: "A study".into(),
                protocol_id: "P-1".into(),
                starts_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date"),
                ends_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("a date"),
                researchers: vec![],
            },
        )
        .expect("traced");
    (tracer, samples)
}

/// One stored payload of every variant of `E`, with its event type.
fn traced<E: Serialize + DeserializeOwned>(
    event_type: impl Fn(&E) -> String,
) -> Vec<(String, serde_json::Value)> {
    let (mut tracer, samples) = tracer();
    let (_, values) = tracer.trace_type::<E>(&samples).expect("the type traces");
    values
        .iter()
        .map(|v| (event_type(v), serde_json::to_value(v).expect("serialises")))
        .collect()
}

fn events<E: DomainEvent + DeserializeOwned>() -> Vec<(String, serde_json::Value)> {
    traced::<E>(|e| e.event_type())
}

/// Every aggregate type's payloads, traced; and how to read one back.
type Reads = fn(&serde_json::Value) -> Result<(), String>;

/// One aggregate type's traced payloads (event type, payload) and its reader.
type Traced = (&'static str, Vec<(String, serde_json::Value)>, Reads);

fn reads<E: DeserializeOwned>(value: &serde_json::Value) -> Result<(), String> {
    serde_json::from_value::<E>(value.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn every_payload() -> Vec<Traced> {
    use crate::*;
    vec![
        (
            "Portal",
            events::<portal::PortalEvent>(),
            reads::<portal::PortalEvent>,
        ),
        (
            catalogue::AGGREGATE_TYPE,
            events::<catalogue::CatalogueEvent>(),
            reads::<catalogue::CatalogueEvent>,
        ),
        (
            care::PROVIDER_TYPE,
            events::<care::ProviderEvent>(),
            reads::<care::ProviderEvent>,
        ),
        (
            care::RELATIONSHIP_TYPE,
            events::<care::CareEvent>(),
            reads::<care::CareEvent>,
        ),
        (
            agreement::AGREEMENT_TYPE,
            agreement_events(),
            reads::<agreement::AgreementEvent>,
        ),
        (
            messaging::CONVERSATION_TYPE,
            events::<messaging::ConversationEvent>(),
            reads::<messaging::ConversationEvent>,
        ),
        (
            forum::FORUM_TYPE,
            events::<forum::ForumEvent>(),
            reads::<forum::ForumEvent>,
        ),
        (
            forum::TOPIC_TYPE,
            events::<forum::TopicEvent>(),
            reads::<forum::TopicEvent>,
        ),
        (
            forum::READER_TYPE,
            events::<forum::ReaderEvent>(),
            reads::<forum::ReaderEvent>,
        ),
        (
            study::STUDY_TYPE,
            events::<study::StudyEvent>(),
            reads::<study::StudyEvent>,
        ),
        (
            study::ENROLMENT_TYPE,
            events::<study::EnrolmentEvent>(),
            reads::<study::EnrolmentEvent>,
        ),
        (
            study::USAGE_TYPE,
            traced::<study::Used>(|_| study::USAGE_EVENT.to_string()),
            reads::<study::Used>,
        ),
        (
            trail::AGGREGATE_TYPE,
            traced::<trail::AccessRecord>(|_| trail::EVENT_TYPE.to_string()),
            reads::<trail::AccessRecord>,
        ),
        (
            erasure::ERASURE_TYPE,
            events::<erasure::ErasureEvent>(),
            reads::<erasure::ErasureEvent>,
        ),
    ]
}

/// The agreement's events, built by hand: their terms hold an adjacently
/// tagged enum (`ReplyTime`), which `serde-reflection` cannot trace. Every
/// field is named (a new one fails to compile here), and
/// `every_agreement_event_is_sampled` holds the variants to `event_type`.
fn agreement_events() -> Vec<(String, serde_json::Value)> {
    use crate::agreement::{AgreementEvent, Initiative, ReplyTime, Terms};
    use crate::care::Side;
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).expect("a time");
    let terms = Terms {
        initiative: Initiative::Both,
        provider_looks_in_days: 7,
        user_replies_within: ReplyTime::WorkingDays(3),
        provider_replies_within: ReplyTime::Hours(48),
        opened_together: true,
        notes: "notes".into(),
    };
    [
        AgreementEvent::AgreementProposed {
            version: 1,
            by: Side::ServiceUser,
            counter: false,
            terms,
            at,
        },
        AgreementEvent::AgreementAccepted {
            version: 1,
            by: Side::Provider,
            at,
        },
        AgreementEvent::AgreementDeclined {
            version: 1,
            by: Side::Provider,
            at,
        },
        AgreementEvent::ProposalWithdrawn {
            version: 1,
            by: Side::ServiceUser,
            at,
        },
    ]
    .iter()
    .map(|e| (e.event_type(), serde_json::to_value(e).expect("serialises")))
    .collect()
}

#[test]
fn every_agreement_event_is_sampled() {
    use crate::agreement::AgreementEvent;
    // A new variant makes this match fail to compile until it is sampled.
    let sampled = |e: &AgreementEvent| match e {
        AgreementEvent::AgreementProposed { .. }
        | AgreementEvent::AgreementAccepted { .. }
        | AgreementEvent::AgreementDeclined { .. }
        | AgreementEvent::ProposalWithdrawn { .. } => true,
    };
    let events = agreement_events();
    assert_eq!(events.len(), 4);
    for (_, payload) in events {
        let event: AgreementEvent = serde_json::from_value(payload).expect("reads");
        assert!(sampled(&event));
    }
}

#[test]
fn every_field_of_every_event_is_declared_personal_or_clear() {
    let mut problems = Vec::new();
    for (aggregate_type, payloads, _) in every_payload() {
        assert!(!payloads.is_empty(), "{aggregate_type}: nothing traced");
        for (event_type, mut payload) in payloads {
            let Some(declared) = declared(aggregate_type, &event_type) else {
                problems.push(format!("{aggregate_type}/{event_type}: not declared"));
                continue;
            };
            let fields = fields_of(&mut payload, &event_type).expect("an object");
            for path in undeclared(declared, fields) {
                problems.push(format!(
                    "{aggregate_type}/{event_type}: field `{path}` is neither personal nor clear"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_declaration_names_a_stored_event_and_its_fields() {
    let traced: BTreeMap<&str, BTreeMap<String, Vec<serde_json::Value>>> = every_payload()
        .into_iter()
        .map(|(aggregate_type, payloads, _)| {
            let mut by_type: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
            for (event_type, payload) in payloads {
                by_type.entry(event_type).or_default().push(payload);
            }
            (aggregate_type, by_type)
        })
        .collect();
    let mut problems = Vec::new();
    let mut aggregate_types = BTreeSet::new();
    for declarations in all() {
        assert!(
            aggregate_types.insert(declarations.aggregate_type),
            "{} declared twice",
            declarations.aggregate_type
        );
        let Some(by_type) = traced.get(declarations.aggregate_type) else {
            problems.push(format!(
                "{}: no such aggregate type",
                declarations.aggregate_type
            ));
            continue;
        };
        for declared in declarations.events {
            let Some(payloads) = by_type.get(declared.event_type) else {
                problems.push(format!(
                    "{}/{}: no such event",
                    declarations.aggregate_type, declared.event_type
                ));
                continue;
            };
            let paths = declared
                .clear
                .iter()
                .copied()
                .chain(declared.personal.iter().map(|p| p.path));
            for path in paths {
                let present = payloads.iter().any(|payload| {
                    let mut payload = payload.clone();
                    let fields = fields_of(&mut payload, declared.event_type).expect("an object");
                    take(fields, path).is_some()
                });
                if !present {
                    problems.push(format!(
                        "{}/{}: declares `{path}`, which it does not have",
                        declarations.aggregate_type, declared.event_type
                    ));
                }
            }
            if let Owner::Field(field) | Owner::Writer(field) = declared.owner {
                if !declared.clear.contains(&field) {
                    problems.push(format!(
                        "{}/{}: its owner field `{field}` must be clear",
                        declarations.aggregate_type, declared.event_type
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_erased_event_still_reads_as_its_type() {
    let mut problems = Vec::new();
    for (aggregate_type, payloads, read) in every_payload() {
        for (event_type, mut payload) in payloads {
            let Some(declared) = declared(aggregate_type, &event_type) else {
                continue;
            };
            let fields = fields_of(&mut payload, &event_type).expect("an object");
            for personal in declared.personal {
                if take(fields, personal.path).is_none() {
                    continue;
                }
                let erased: serde_json::Value =
                    serde_json::from_str(personal.erased).expect("erased values are JSON");
                put(fields, personal.path, erased);
            }
            if let Err(e) = read(&payload) {
                problems.push(format!("{aggregate_type}/{event_type} erased: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn paths_reach_inside_objects() {
    let mut fields = serde_json::json!({"terms": {"notes": "n", "days": 7}, "at": "t"});
    let object = fields.as_object_mut().expect("an object");
    assert_eq!(take(object, "terms.notes"), Some(serde_json::json!("n")));
    assert_eq!(take(object, "terms.notes"), None);
    put(object, "terms.notes", serde_json::json!(""));
    assert_eq!(
        fields,
        serde_json::json!({"terms": {"notes": "", "days": 7}, "at": "t"})
    );
    const NOTES: &[Personal] = &[text("terms.notes")];
    let declared = Declared {
        event_type: "E",
        owner: Owner::Actor,
        personal: NOTES,
        clear: &["at"],
    };
    assert_eq!(
        undeclared(&declared, fields.as_object().expect("an object")),
        vec!["terms.days".to_string()]
    );
}
