//! Makes each request that reads wait, before it runs, until the read
//! models show the writes it must see (see [`crate::consistency`]): the
//! caller's own, the organisation's shared ones, and the one its
//! `Portal-Consistency` header names. Mutations do not wait; what they
//! return waits only when selected.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{ServerResult, Variables};

use crate::request::RequestContext;
use crate::service::Service;

/// See the module documentation.
pub struct SettleExtension;

impl ExtensionFactory for SettleExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SettleExtension)
    }
}

/// Whether any operation of the document is a query.
fn reads(document: &ExecutableDocument) -> bool {
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
        DocumentOperations::Multiple(ops) => {
            ops.values().any(|op| op.node.ty == OperationType::Query)
        }
    }
}

#[async_trait::async_trait]
impl Extension for SettleExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let (Some(request), Some(service)) = (
            ctx.data_opt::<RequestContext>(),
            ctx.data_opt::<Arc<Service>>(),
        ) {
            if let Ok(caller) = &request.caller {
                let target = service.marks.for_request(
                    &caller.organisation,
                    caller.subject,
                    request.read_after,
                );
                if !service.marks.shown(target) && reads(&document) {
                    service.marks.settle(target).await;
                }
            }
        }
        Ok(document)
    }
}
