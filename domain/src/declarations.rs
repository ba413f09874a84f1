//! Every event type's personal-data declarations, gathered (issue 18): the
//! declarations themselves live next to each event type
//! (`PERSONAL_DATA`), their types in [`crate::personal`].

use crate::personal::{Declarations, Declared};

/// Every aggregate type the service stores, with its declarations.
pub fn all() -> [&'static Declarations; 14] {
    [
        &crate::portal::PERSONAL_DATA,
        &crate::catalogue::PERSONAL_DATA,
        &crate::care::PROVIDER_PERSONAL_DATA,
        &crate::care::RELATIONSHIP_PERSONAL_DATA,
        &crate::agreement::PERSONAL_DATA,
        &crate::messaging::PERSONAL_DATA,
        &crate::forum::FORUM_PERSONAL_DATA,
        &crate::forum::TOPIC_PERSONAL_DATA,
        &crate::forum::READER_PERSONAL_DATA,
        &crate::study::STUDY_PERSONAL_DATA,
        &crate::study::ENROLMENT_PERSONAL_DATA,
        &crate::study::USAGE_PERSONAL_DATA,
        &crate::trail::PERSONAL_DATA,
        &crate::erasure::PERSONAL_DATA,
    ]
}

/// The declaration of one stored event type, if it is known.
pub fn declared(aggregate_type: &str, event_type: &str) -> Option<&'static Declared> {
    all()
        .into_iter()
        .find(|d| d.aggregate_type == aggregate_type)?
        .events
        .iter()
        .find(|e| e.event_type == event_type)
}

#[cfg(test)]
#[path = "personal_tests.rs"]
mod tests;
