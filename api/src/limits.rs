//! Bounds on a GraphQL document, checked right after parsing and before
//! async-graphql looks at it.
//!
//! async-graphql's validation (its depth and complexity visitors among it)
//! walks every fragment spread inline, so a 1 KB document whose fragments each
//! spread the previous one twice makes it walk 2^N copies, on a worker thread
//! that no timeout can interrupt. Here every fragment is measured once
//! (memoised), so the cost of the check is linear in the document, and a
//! document that would expand past the limits never reaches validation.
//!
//! Depth is measured the same way. Introspection (`__schema`, `__type`) has a
//! depth of its own, [`INTROSPECTION_MAX_DEPTH`]: the standard introspection
//! query nests its type references about a dozen levels deep, deeper than
//! any ordinary query needs to.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Data, Executor, Name, Positioned, Request, Response, ServerError};
use futures::stream::{BoxStream, StreamExt};

use crate::error::codes;

/// How deep an introspection query may nest.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// Most directives on one field or fragment.
pub const DIRECTIVES_MAX: usize = 10;

/// Most fragment definitions one document may hold.
pub const FRAGMENTS_MAX: usize = 100;

/// What a selection set expands to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    /// Fields selected, with every fragment spread out (saturating).
    pub fields: u64,
    /// Deepest nesting under fields other than introspection.
    pub depth: usize,
    /// Deepest nesting under `__schema` and `__type`.
    pub introspection_depth: usize,
}

impl Measure {
    fn merge(&mut self, other: Measure) {
        self.fields = self.fields.saturating_add(other.fields);
        self.depth = self.depth.max(other.depth);
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
    }

    fn deepest(&self) -> usize {
        self.depth.max(self.introspection_depth)
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    TooManyFragments(usize),
    /// A spread of a fragment the document does not define: async-graphql's
    /// own checks walk past it, so a bomb could hide behind one.
    UnknownFragment(String),
    /// A fragment that spreads itself, directly or not.
    FragmentCycle(String),
    TooManyFields(u64),
    TooDeep(usize),
    IntrospectionTooDeep(usize),
}

impl LimitError {
    fn message(&self, limits: &Limits) -> String {
        match self {
            LimitError::TooManyFragments(n) => format!(
                "the query defines {n} fragments; at most {FRAGMENTS_MAX} are accepted"
            ),
            LimitError::UnknownFragment(name) => {
                format!("the query spreads fragment `{name}`, which it does not define")
            }
            LimitError::FragmentCycle(name) => format!("fragment `{name}` spreads itself"),
            LimitError::TooManyFields(n) => format!(
                "the query selects {} fields and fragments once its fragments are spread out; at most {} are accepted",
                if *n == u64::MAX { "too many".to_string() } else { n.to_string() },
                limits.max_fields
            ),
            LimitError::TooDeep(d) => format!(
                "the query is nested {d} levels deep; at most {} are accepted",
                limits.max_depth
            ),
            LimitError::IntrospectionTooDeep(d) => format!(
                "the introspection query is nested {d} levels deep; at most {INTROSPECTION_MAX_DEPTH} are accepted"
            ),
        }
    }
}

/// The limits a document is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_fields: u64,
    pub max_depth: usize,
}

impl Limits {
    /// Measures every operation and fragment of `document` once and refuses
    /// it if any exceeds a limit.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), LimitError> {
        if document.fragments.len() > FRAGMENTS_MAX {
            return Err(LimitError::TooManyFragments(document.fragments.len()));
        }
        let mut measurer = Measurer {
            fragments: &document.fragments,
            memo: HashMap::new(),
            problem: None,
        };
        let mut total = Measure::default();
        let operations: Vec<&SelectionSet> = match &document.operations {
            DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
            DocumentOperations::Multiple(ops) => {
                ops.values().map(|op| &op.node.selection_set.node).collect()
            }
        };
        for selection_set in operations {
            total.merge(measurer.selection_set(selection_set));
        }
        // Validation also walks every fragment definition on its own (used
        // or not), spreads expanded: count those fields too. (Their depth
        // depends on where they are spread, which the operations measured.)
        for name in document.fragments.keys() {
            let fragment = measurer.fragment(name);
            total.fields = total.fields.saturating_add(fragment.fields);
        }
        if let Some(problem) = measurer.problem {
            return Err(problem);
        }
        if total.fields > self.max_fields {
            return Err(LimitError::TooManyFields(total.fields));
        }
        if total.depth > self.max_depth {
            return Err(LimitError::TooDeep(total.depth));
        }
        if total.introspection_depth > INTROSPECTION_MAX_DEPTH {
            return Err(LimitError::IntrospectionTooDeep(total.introspection_depth));
        }
        Ok(())
    }
}

struct Measurer<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// `None` while a fragment is being measured.
    memo: HashMap<&'a str, Option<Measure>>,
    /// The first unknown fragment or cycle met: the document is refused.
    problem: Option<LimitError>,
}

impl<'a> Measurer<'a> {
    fn fragment(&mut self, name: &'a str) -> Measure {
        match self.memo.get(name) {
            Some(Some(measure)) => return *measure,
            Some(None) => {
                self.problem
                    .get_or_insert(LimitError::FragmentCycle(name.to_string()));
                return Measure::default();
            }
            None => {}
        }
        let Some(definition) = self.fragments.get(name) else {
            self.problem
                .get_or_insert(LimitError::UnknownFragment(name.to_string()));
            return Measure::default();
        };
        self.memo.insert(name, None);
        let measure = self.selection_set(&definition.node.selection_set.node);
        self.memo.insert(name, Some(measure));
        measure
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> Measure {
        let mut measure = Measure::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let below = self.selection_set(&field.selection_set.node);
                    let depth = below.deepest() + 1;
                    let one = if matches!(field.name.node.as_str(), "__schema" | "__type") {
                        Measure {
                            fields: below.fields.saturating_add(1),
                            depth: 0,
                            introspection_depth: depth,
                        }
                    } else {
                        Measure {
                            fields: below.fields.saturating_add(1),
                            depth,
                            introspection_depth: 0,
                        }
                    };
                    measure.merge(one);
                }
                // Spreads and inline fragments are walked too: they count.
                Selection::InlineFragment(inline) => {
                    let mut inner = self.selection_set(&inline.node.selection_set.node);
                    inner.fields = inner.fields.saturating_add(1);
                    measure.merge(inner);
                }
                Selection::FragmentSpread(spread) => {
                    let mut inner = self.fragment(spread.node.fragment_name.node.as_str());
                    inner.fields = inner.fields.saturating_add(1);
                    measure.merge(inner);
                }
            }
        }
        measure
    }
}

impl Limits {
    /// Parses the request's document (async-graphql keeps it and does not
    /// parse again) and, if it exceeds a limit, the response refusing it. A
    /// document that does not parse is left for async-graphql to report.
    pub fn refusal(&self, request: &mut Request) -> Option<Response> {
        let document = request.parsed_query().ok()?;
        let error = self.check(document).err()?;
        let mut error = ServerError::new(error.message(self), None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", codes::BAD_USER_INPUT);
        error.extensions = Some(extensions);
        Some(Response::from_errors(vec![error]))
    }
}

/// A schema (any executor) that admits only documents within [`Limits`].
///
/// It has to sit outside async-graphql: `Schema::execute` checks the
/// recursion depth and the directives of a document by walking it with
/// every fragment expanded, before any extension sees it.
#[derive(Clone)]
pub struct Limited<E> {
    pub inner: E,
    pub limits: Limits,
}

impl<E: Executor> Executor for Limited<E> {
    async fn execute(&self, mut request: Request) -> Response {
        if let Some(refused) = self.limits.refusal(&mut request) {
            return refused;
        }
        self.inner.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if let Some(refused) = self.limits.refusal(&mut request) {
            return futures::stream::once(async move { refused }).boxed();
        }
        self.inner.execute_stream(request, session_data)
    }
}

/// Documents the limits are held against, for the tests: the attack and
/// the standard client query.
pub mod samples {
    /// `query { ...F<n> }` where each fragment spreads the previous one twice.
    pub fn fragment_bomb(levels: usize) -> String {
        let mut q = format!("query {{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
        for i in 1..=levels {
            q.push_str(&format!(
                " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
                p = i - 1
            ));
        }
        q
    }

    /// The introspection query graphql-js 16 (`getIntrospectionQuery`) sends,
    /// as GraphiQL and graphql-core do.
    pub const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
    }"#;
}

#[cfg(test)]
mod tests {
    use super::samples::{fragment_bomb, INTROSPECTION_QUERY};
    use super::*;
    use async_graphql::parser::parse_query;

    const LIMITS: Limits = Limits {
        max_fields: 2_000,
        max_depth: 10,
    };

    fn measure(query: &str) -> Result<(), LimitError> {
        LIMITS.check(&parse_query(query).expect("parses"))
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_being_expanded() {
        let started = std::time::Instant::now();
        assert!(matches!(
            measure(&fragment_bomb(30)),
            Err(LimitError::TooManyFields(n)) if n >= 1 << 30
        ));
        assert_eq!(
            measure(&fragment_bomb(70)),
            Err(LimitError::TooManyFields(u64::MAX))
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(measure(&fragment_bomb(7)), Ok(()));
    }

    #[test]
    fn unused_fragments_count_too() {
        let bomb = fragment_bomb(24).replace("query { ...F24 }", "query { __typename }");
        assert!(matches!(measure(&bomb), Err(LimitError::TooManyFields(_))));
    }

    #[test]
    fn depth_is_counted_through_fragments_and_introspection_has_its_own() {
        let deep = "{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }";
        assert_eq!(measure(deep), Err(LimitError::TooDeep(11)));
        let through_fragment =
            "{ a { ...X } } fragment X on T { b { c { d { e { f { g { h { i { j { k } } } } } } } } } }";
        assert_eq!(measure(through_fragment), Err(LimitError::TooDeep(11)));
        let shallow = "{ a { b { c { d { e { f { g { h { i { j } } } } } } } } } }";
        assert_eq!(measure(shallow), Ok(()));
        assert_eq!(measure(INTROSPECTION_QUERY), Ok(()));
        let too_deep_introspection = format!(
            "{{ __schema {{ types {{ {}name{} }} }} }}",
            "ofType { ".repeat(18),
            " }".repeat(18)
        );
        assert_eq!(
            measure(&too_deep_introspection),
            Err(LimitError::IntrospectionTooDeep(21))
        );
    }

    #[test]
    fn cycles_and_unknown_fragments_are_refused_before_async_graphql_walks_them() {
        assert_eq!(
            measure("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A x }"),
            Err(LimitError::FragmentCycle("A".into()))
        );
        assert_eq!(
            measure("{ ...Missing }"),
            Err(LimitError::UnknownFragment("Missing".into()))
        );
        // The bomb whose last fragment spreads one that does not exist would
        // measure nothing if unknown fragments counted as empty.
        let hidden = fragment_bomb(31).replace(
            "fragment F0 on Query { __typename }",
            "fragment F0 on Query { ...Missing }",
        );
        assert_eq!(
            measure(&hidden),
            Err(LimitError::UnknownFragment("Missing".into()))
        );
    }
}
