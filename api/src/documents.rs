//! Parsed GraphQL documents kept by their text (issue 16). Clients send the
//! same few queries again and again, and parsing each one anew (`pest`) was a
//! visible part of a cheap read's profile. Only a document that parsed is
//! kept; the schema still checks every request's depth, directives,
//! validity and cost on it, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Documents kept before the store starts over.
const KEPT_MAX: usize = 512;
/// Longer texts are parsed every time rather than kept.
const TEXT_MAX: usize = 16 * 1024;

/// The documents of this process, by query text.
#[derive(Default)]
pub(crate) struct Documents {
    kept: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// `request` with its document parsed, from the store when its text was
    /// seen before. A text that does not parse is left for the schema, which
    /// answers with the parse error as it always did.
    pub(crate) fn prepare(&self, mut request: async_graphql::Request) -> async_graphql::Request {
        if request.query.is_empty() || request.query.len() > TEXT_MAX {
            return request;
        }
        let kept = self
            .kept
            .lock()
            .ok()
            .and_then(|kept| kept.get(&request.query).cloned());
        // Copied outside the lock: every request's copy is its own.
        if let Some(document) = kept {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return request;
        }
        if let Ok(document) = async_graphql::parser::parse_query(&request.query) {
            if let Ok(mut kept) = self.kept.lock() {
                if kept.len() >= KEPT_MAX {
                    kept.clear();
                }
                kept.insert(request.query.clone(), Arc::new(document.clone()));
            }
            request.set_parsed_query(document);
        }
        request
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_document_is_the_parse_of_its_own_text() {
        let documents = Documents::default();
        let first = documents.prepare(async_graphql::Request::new("{ me { personId } }"));
        let again = documents.prepare(async_graphql::Request::new("{ me { personId } }"));
        let other = documents.prepare(async_graphql::Request::new("{ controlPanel { version } }"));
        let parsed = |mut r: async_graphql::Request| format!("{:?}", r.parsed_query().unwrap());
        assert_eq!(parsed(first), parsed(again));
        let other = parsed(other);
        assert!(other.contains("controlPanel") && !other.contains("personId"));
        // Text that does not parse is not kept, and is left to the schema.
        let mut broken = documents.prepare(async_graphql::Request::new("{ me "));
        assert!(broken.parsed_query().is_err());
        assert_eq!(documents.kept.lock().unwrap().len(), 2);
    }
}
