//! What a person's data export holds (issue 18, GDPR art. 15 and 20): which
//! stored events are theirs, and in which part of the archive each goes.
//!
//! A person's data is every event that is theirs to know of, within their
//! organisation: their portal's whole history, their provider profile, the
//! care relationships they are a party to (with the consent grants and
//! break-glass openings in them) and the agreements made in them, the
//! conversations they are in (until they are removed from one), the access
//! trail's records of reads of their data and of reads they made, their
//! studies and enrolments and the usage recorded for research, what they did
//! in the forum (and what moderators did to their posts or to them), and
//! their erasure requests.
//!
//! Left out on purpose, because they are other people's data: the words of
//! other people's forum posts, and others' flags, concerns and support on a
//! person's posts. Messages by others in a conversation the person is in
//! are in: the person read them there.
//!
//! [`Selector`] decides event by event, in the order of the global stream:
//! a relationship or conversation joins the person's data at its first
//! event, so what follows in it is known to be theirs.

use std::collections::HashSet;

use serde_json::{Map, Value};
use uuid::Uuid;

/// A part of the archive: one list of records, one CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Profile,
    Core,
    Medications,
    Network,
    CrisisPlan,
    Exercises,
    Relationships,
    Consent,
    Agreements,
    Messages,
    AccessLog,
    ReadsMade,
    Studies,
    ResearchUsage,
    Forum,
    Erasure,
}

impl Part {
    /// Every part, in the archive's order.
    pub const ALL: [Part; 16] = [
        Part::Profile,
        Part::Core,
        Part::Medications,
        Part::Network,
        Part::CrisisPlan,
        Part::Exercises,
        Part::Relationships,
        Part::Consent,
        Part::Agreements,
        Part::Messages,
        Part::AccessLog,
        Part::ReadsMade,
        Part::Studies,
        Part::ResearchUsage,
        Part::Forum,
        Part::Erasure,
    ];

    /// The part's stable name: its key in the JSON, its CSV file's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Profile => "profile",
            Part::Core => "core",
            Part::Medications => "medications",
            Part::Network => "network",
            Part::CrisisPlan => "crisis_plan",
            Part::Exercises => "exercises",
            Part::Relationships => "relationships",
            Part::Consent => "consent",
            Part::Agreements => "agreements",
            Part::Messages => "messages",
            Part::AccessLog => "access_log",
            Part::ReadsMade => "reads_made",
            Part::Studies => "studies",
            Part::ResearchUsage => "research_usage",
            Part::Forum => "forum",
            Part::Erasure => "erasure",
        }
    }

    /// What the part holds, in words for the person reading it.
    pub fn description(self) -> &'static str {
        match self {
            Part::Profile => "Your provider profile: the name and profession others see.",
            Part::Core => {
                "Your portal: its opening, life domains, status ratings, goals and activities, every change."
            }
            Part::Medications => "Your medications, every change.",
            Part::Network => "The people in your network map, every change.",
            Part::CrisisPlan => "Every revision of your crisis plan.",
            Part::Exercises => "The exercises you started and completed, with your reflections.",
            Part::Relationships => {
                "Your care relationships: invitations, answers and endings."
            }
            Part::Consent => {
                "Consent grants and revocations in your care relationships, and break-glass openings of a crisis plan."
            }
            Part::Agreements => "Expectation agreements proposed, accepted, declined or withdrawn in your care relationships.",
            Part::Messages => "Every event of the conversations you are in: starts, messages, reads, removals, closings.",
            Part::AccessLog => "Every recorded read of your data (and refused attempt), by whom, when and on what basis.",
            Part::ReadsMade => "Every recorded read you made of someone else's data.",
            Part::Studies => "The studies you enrolled in, your enrolments and withdrawals.",
            Part::ResearchUsage => "Usage recorded for the studies you are enrolled in: which part, view or write, when. Never content.",
            Part::Forum => {
                "What you did in the forum (names, topics, replies, edits, support, flags, moderation) and what was done to your posts or to you."
            }
            Part::Erasure => "Your requests for erasure, their cancellations, and an erasure carried out.",
        }
    }

    /// The stored event kinds (aggregate type, event type) that may go in
    /// this part.
    pub fn event_kinds(self) -> Vec<(&'static str, &'static str)> {
        crate::declarations::all()
            .into_iter()
            .flat_map(|d| d.events.iter().map(|e| (d.aggregate_type, e.event_type)))
            .filter(|(aggregate_type, event_type)| {
                parts_of_kind(aggregate_type, event_type).contains(&self)
            })
            .collect()
    }
}

/// The parts an event of this kind may go in, whoever it concerns.
pub fn parts_of_kind(aggregate_type: &str, event_type: &str) -> Vec<Part> {
    use crate::{agreement, care, erasure, forum, messaging, study, trail};
    match aggregate_type {
        "Portal" => vec![match crate::portal::Section::of_event_type(event_type) {
            crate::portal::Section::Core => Part::Core,
            crate::portal::Section::Medications => Part::Medications,
            crate::portal::Section::Network => Part::Network,
            crate::portal::Section::CrisisPlan => Part::CrisisPlan,
            crate::portal::Section::Exercises => Part::Exercises,
        }],
        care::PROVIDER_TYPE => vec![Part::Profile],
        care::RELATIONSHIP_TYPE => vec![relationship_part(event_type)],
        agreement::AGREEMENT_TYPE => vec![Part::Agreements],
        messaging::CONVERSATION_TYPE => vec![Part::Messages],
        trail::AGGREGATE_TYPE => vec![Part::AccessLog, Part::ReadsMade],
        study::STUDY_TYPE | study::ENROLMENT_TYPE => vec![Part::Studies],
        study::USAGE_TYPE => vec![Part::ResearchUsage],
        forum::FORUM_TYPE | forum::TOPIC_TYPE | forum::READER_TYPE => vec![Part::Forum],
        erasure::ERASURE_TYPE => vec![Part::Erasure],
        _ => vec![],
    }
}

fn relationship_part(event_type: &str) -> Part {
    match event_type {
        "ConsentGranted" | "ConsentRevoked" | "BreakGlassOpened" => Part::Consent,
        _ => Part::Relationships,
    }
}

/// One stored event as the selector sees it: payload opened.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub event_type: &'a str,
    /// The organisation in the event's metadata.
    pub organisation: &'a str,
    /// The actor in the event's metadata.
    pub actor: &'a str,
    pub payload: &'a Value,
}

/// What becomes of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Not the person's.
    Skip,
    /// In the person's archive, in this part.
    Take(Part),
    /// A study's registration: in the archive (part [`Part::Studies`]) if
    /// the person ever enrolled in the study ([`Selector::enrolled`]), which
    /// is known only later in the stream.
    IfEnrolled(Uuid),
}

/// Decides, event by event in the global order, what is one person's.
#[derive(Debug, Clone)]
pub struct Selector {
    person: Uuid,
    organisation: String,
    relationships: HashSet<String>,
    conversations: HashSet<String>,
    posts: HashSet<Uuid>,
    topics: HashSet<String>,
    silences: HashSet<Uuid>,
    studies: HashSet<Uuid>,
}

/// The object holding an event's fields (the variant's object for an
/// enum's event).
pub fn fields<'a>(payload: &'a Value, event_type: &str) -> Option<&'a Map<String, Value>> {
    let root = payload.as_object()?;
    match root.get(event_type) {
        Some(Value::Object(inner)) if root.len() == 1 => Some(inner),
        _ => Some(root),
    }
}

fn uuid_at(fields: &Map<String, Value>, key: &str) -> Option<Uuid> {
    fields.get(key)?.as_str()?.parse().ok()
}

fn text_at<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields.get(key)?.as_str()
}

impl Selector {
    /// A selector for `person` of `organisation`.
    pub fn new(person: Uuid, organisation: &str) -> Self {
        Selector {
            person,
            organisation: organisation.to_string(),
            relationships: HashSet::new(),
            conversations: HashSet::new(),
            posts: HashSet::new(),
            topics: HashSet::new(),
            silences: HashSet::new(),
            studies: HashSet::new(),
        }
    }

    /// Whether the person enrolled in `study` in any event seen so far.
    pub fn enrolled(&self, study: Uuid) -> bool {
        self.studies.contains(&study)
    }

    fn is(&self, fields: &Map<String, Value>, key: &str) -> bool {
        uuid_at(fields, key) == Some(self.person)
    }

    /// Where `event` goes. Call it for every event, in the global order.
    pub fn select(&mut self, event: &EventRef<'_>) -> Choice {
        use crate::{agreement, care, erasure, forum, messaging, study, trail};
        let Some(f) = fields(event.payload, event.event_type) else {
            return Choice::Skip;
        };
        // The access trail says whose organisation each side is in.
        if event.aggregate_type == trail::AGGREGATE_TYPE {
            let here = |key: &str| text_at(f, key) == Some(self.organisation.as_str());
            return if self.is(f, "subject_id") && here("organisation") {
                Choice::Take(Part::AccessLog)
            } else if self.is(f, "reader_id") && here("reader_organisation") {
                Choice::Take(Part::ReadsMade)
            } else {
                Choice::Skip
            };
        }
        // Identity is scoped to the organisation: the same id elsewhere is
        // someone else.
        if event.organisation != self.organisation {
            return Choice::Skip;
        }
        let person = self.person.to_string();
        let by_actor = event.actor == person;
        let take = |part: Part, yes: bool| {
            if yes {
                Choice::Take(part)
            } else {
                Choice::Skip
            }
        };
        match event.aggregate_type {
            "Portal" | care::PROVIDER_TYPE => {
                let parts = parts_of_kind(event.aggregate_type, event.event_type);
                match parts.first() {
                    Some(part) => take(*part, event.aggregate_id == person),
                    None => Choice::Skip,
                }
            }
            care::RELATIONSHIP_TYPE => {
                if event.event_type == "Invited"
                    && (self.is(f, "user_id") || self.is(f, "provider_id"))
                {
                    self.relationships.insert(event.aggregate_id.to_string());
                }
                take(
                    relationship_part(event.event_type),
                    self.relationships.contains(event.aggregate_id),
                )
            }
            // An agreement's stream is its relationship's id.
            agreement::AGREEMENT_TYPE => take(
                Part::Agreements,
                self.relationships.contains(event.aggregate_id),
            ),
            messaging::CONVERSATION_TYPE => {
                if event.event_type == "ConversationStarted" {
                    let among = f
                        .get("providers")
                        .and_then(Value::as_array)
                        .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(&person)));
                    if self.is(f, "user_id") || among {
                        self.conversations.insert(event.aggregate_id.to_string());
                    }
                }
                let member = self.conversations.contains(event.aggregate_id);
                // Removed from a conversation: what follows is no longer theirs.
                if member && event.event_type == "ProviderRemoved" && self.is(f, "provider") {
                    self.conversations.remove(event.aggregate_id);
                }
                take(Part::Messages, member)
            }
            study::STUDY_TYPE => match f
                .get("info")
                .and_then(Value::as_object)
                .and_then(|info| uuid_at(info, "study_id"))
            {
                Some(study) => Choice::IfEnrolled(study),
                None => Choice::Skip,
            },
            study::ENROLMENT_TYPE => {
                let mine = self.is(f, "participant_id");
                if let (true, Some(study)) = (mine, uuid_at(f, "study_id")) {
                    self.studies.insert(study);
                }
                take(Part::Studies, mine)
            }
            study::USAGE_TYPE => take(Part::ResearchUsage, self.is(f, "participant_id")),
            forum::READER_TYPE => take(
                Part::Forum,
                event.aggregate_id == forum::reader_id(&self.organisation, self.person),
            ),
            forum::FORUM_TYPE => {
                let silenced = event.event_type == "MemberSilenced" && self.is(f, "person");
                if let (true, Some(silence)) = (silenced, uuid_at(f, "silence_id")) {
                    self.silences.insert(silence);
                }
                let lifted = event.event_type == "SilenceLifted"
                    && uuid_at(f, "silence_id").is_some_and(|s| self.silences.contains(&s));
                take(
                    Part::Forum,
                    silenced || lifted || self.is(f, "by") || by_actor,
                )
            }
            forum::TOPIC_TYPE => self.forum_topic(event, f, by_actor),
            erasure::ERASURE_TYPE => take(
                Part::Erasure,
                event.aggregate_id == erasure::stream_id(&self.organisation, self.person),
            ),
            _ => Choice::Skip,
        }
    }

    /// A topic's event: theirs when they wrote it or did it, or when it was
    /// done to a post of theirs, but not others' flags, concerns and support
    /// (those are the others' acts, with their words).
    fn forum_topic(
        &mut self,
        event: &EventRef<'_>,
        f: &Map<String, Value>,
        by_actor: bool,
    ) -> Choice {
        let authored = matches!(event.event_type, "TopicOpened" | "ReplyPosted");
        if authored {
            if self.is(f, "author") {
                if let Some(post) = uuid_at(f, "post_id") {
                    self.posts.insert(post);
                }
                if event.event_type == "TopicOpened" {
                    self.topics.insert(event.aggregate_id.to_string());
                }
                return Choice::Take(Part::Forum);
            }
            return Choice::Skip;
        }
        if self.is(f, "by") || by_actor {
            return Choice::Take(Part::Forum);
        }
        // Their topic closed or reopened by a moderator.
        if matches!(event.event_type, "TopicClosed" | "TopicReopened")
            && self.topics.contains(event.aggregate_id)
        {
            return Choice::Take(Part::Forum);
        }
        let others_act = matches!(
            event.event_type,
            "SupportGiven" | "SupportTakenBack" | "PostFlagged" | "ConcernRaised"
        );
        let on_their_post = uuid_at(f, "post_id").is_some_and(|p| self.posts.contains(&p));
        if on_their_post && !others_act {
            Choice::Take(Part::Forum)
        } else {
            Choice::Skip
        }
    }
}

/// What of an event in a person's archive is not theirs to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    /// Fields of the event left out.
    pub fields: Vec<&'static str>,
    /// Whether who caused the event is left out.
    pub actor: bool,
}

/// What `person`'s archive leaves out of `event`, taken into `part`:
///
/// - of a read of their data by someone else, what their own access log
///   leaves out: the reader's address and request id, and an auditor's or
///   admin's search terms (an admin's stated reason for resolving their
///   forum name is theirs to read);
/// - of something done in the forum by someone else to their post, topic
///   or to them, who did it (the forum never names a moderator or a
///   flagger to a member);
/// - of a moderator's own silencing of a member, the member's person id
///   (only an admin resolves a forum name to a person, with a stated
///   reason).
pub fn redaction(person: Uuid, part: Part, event: &EventRef<'_>) -> Redaction {
    let me = person.to_string();
    let f = fields(event.payload, event.event_type);
    let named = |key: &str| {
        f.and_then(|f| f.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| v == me)
    };
    match part {
        Part::AccessLog if !named("reader_id") => {
            let identity = f
                .and_then(|f| text_at(f, "section"))
                .is_some_and(|s| s == crate::trail::FORUM_IDENTITY);
            let mut fields = vec!["client_address", "request_id"];
            if !identity {
                fields.push("detail");
            }
            Redaction {
                fields,
                actor: false,
            }
        }
        Part::Forum if event.actor != me => Redaction {
            fields: vec!["by"],
            actor: true,
        },
        Part::Forum if event.event_type == "MemberSilenced" && !named("person") => Redaction {
            fields: vec!["person"],
            actor: false,
        },
        _ => Redaction::default(),
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
