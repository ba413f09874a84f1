//! The GraphQL schema's root: the one place that knows every resolver
//! module. Each module holds its part of `Query` and `Mutation`; the
//! request's facts and helpers are in `context`.

use std::sync::Arc;

use std::num::NonZeroUsize;

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::{MergedObject, Schema};

use crate::agreements::{AgreementMutation, AgreementQuery};
use crate::audit::AuditQuery;
use crate::care::{CareMutation, CareQuery};
use crate::core::{CoreMutation, CoreQuery};
use crate::forum::{ForumMutation, ForumQuery, ModerationQuery};
use crate::messaging::{MessagingMutation, MessagingQuery};
use crate::node::NodeQuery;
use crate::privacy::erasure::{ErasureMutation, ErasureQuery};
use crate::privacy::export::{ExportMutation, ExportQuery};
use crate::research::{MeasuresQuery, ResearchMutation, ResearchQuery};
use crate::service::Service;
use crate::subscription::LiveSubscription;
use crate::toolbox::{ToolboxMutation, ToolboxQuery};

/// The schema type served at `/graphql`.
pub type PortalSchema = Schema<Query, Mutation, LiveSubscription>;

/// Builds the schema with the service and the input limits from settings.
pub fn build(service: Arc<Service>) -> PortalSchema {
    let settings = &service.settings;
    let builder = Schema::build(Query::default(), Mutation::default(), LiveSubscription)
        // Complexity counts a field's `limit` times what it selects. Depth and
        // size are checked before async-graphql sees the document, by
        // `limits::Limited` (see `limits`).
        .limit_complexity(settings.graphql.max_complexity)
        .limit_directives(crate::limits::DIRECTIVES_MAX)
        .extension(crate::usage_extension::UsageExtension)
        .extension(crate::settle_extension::SettleExtension);
    let builder = if settings.graphql.introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    // Apollo's automatic persisted queries: a document is kept (by its
    // SHA-256) only once it has passed the whole-document limits, so a hash
    // alone names nothing unmeasured; validation and cost run every time.
    let builder = match NonZeroUsize::new(settings.graphql.persisted_queries) {
        Some(cap) => {
            builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(cap.get())))
        }
        None => builder,
    };
    builder.data(service).finish()
}

/// The schema as served: every document measured against the limits
/// before async-graphql parses it further.
pub fn serving(service: Arc<Service>) -> crate::limits::Limited<PortalSchema> {
    let limits = crate::limits::Limits {
        max_fields: service.settings.graphql.max_fields as u64,
        max_depth: service.settings.graphql.max_depth,
    };
    crate::limits::Limited {
        inner: build(service),
        limits,
    }
}

/// The schema in SDL, as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), LiveSubscription)
        .finish()
        .sdl()
}

/// Every read: the portal core, the toolbox, working together, the trail.
#[derive(MergedObject, Default)]
pub struct Query(
    NodeQuery,
    CoreQuery,
    ToolboxQuery,
    CareQuery,
    AuditQuery,
    AgreementQuery,
    MessagingQuery,
    ForumQuery,
    ModerationQuery,
    ResearchQuery,
    MeasuresQuery,
    ErasureQuery,
    ExportQuery,
);

/// Every change: the portal core, the toolbox, working together.
#[derive(MergedObject, Default)]
pub struct Mutation(
    CoreMutation,
    ToolboxMutation,
    CareMutation,
    AgreementMutation,
    MessagingMutation,
    ForumMutation,
    ResearchMutation,
    ErasureMutation,
    ExportMutation,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field and enum value of our own types carries a description.
    #[tokio::test]
    async fn every_schema_field_is_described() {
        let schema =
            Schema::build(Query::default(), Mutation::default(), LiveSubscription).finish();
        let response = schema
            .execute("{ __schema { types { name description fields { name description args { name } } enumValues { name description } } } }")
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("json");
        let mut missing = Vec::new();
        for t in data["__schema"]["types"].as_array().expect("types") {
            let name = t["name"].as_str().unwrap_or_default();
            let builtin = name.starts_with("__")
                || [
                    "String", "Int", "Float", "Boolean", "ID", "UUID", "DateTime", "JSON", "BigInt",
                ]
                .contains(&name);
            if builtin {
                continue;
            }
            if t["description"].is_null() {
                missing.push(name.to_string());
            }
            for f in t["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(t["enumValues"].as_array().into_iter().flatten())
            {
                if f["description"].as_str().is_none_or(str::is_empty) {
                    missing.push(format!("{name}.{}", f["name"]));
                }
            }
        }
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }
}
