//! The GraphQL side of usage recording: an async-graphql extension that
//! reads each request's top-level fields once and hands a record per
//! module to the service's `UsageRecorder` (see `usage`).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection,
};
use async_graphql::{Response, ServerResult, Variables};
use domain::study::Module;

use crate::request::RequestContext;

/// The module a top-level field belongs to; `None` for introspection and
/// anything not about a participant's use.
pub fn module_of(field: &str) -> Option<Module> {
    Some(match field {
        "openPortal" | "addLifeDomain" | "rateStatus" | "setGoal" | "reviseGoal"
        | "achieveGoal" | "abandonGoal" | "planActivity" | "completeActivity" | "dropActivity"
        | "me" | "controlPanel" | "goal" | "goalHistory" | "statusHistory" => Module::ControlPanel,
        "addMedication" | "changeMedication" | "pauseMedication" | "resumeMedication"
        | "stopMedication" | "medications" | "medicationHistory" => Module::Medications,
        "addPerson" | "updatePerson" | "removePerson" | "network" | "personHistory" => {
            Module::Network
        }
        "reviseCrisisPlan" | "crisisPlan" | "crisisPlanHistory" | "breakGlass" => {
            Module::CrisisPlan
        }
        "startExercise" | "completeExercise" | "addExercise" | "exerciseCatalogue"
        | "exerciseLog" => Module::Exercises,
        "saveProviderProfile"
        | "inviteToCare"
        | "acceptCareInvitation"
        | "declineCareInvitation"
        | "withdrawCareInvitation"
        | "endCareRelationship"
        | "grantAccess"
        | "revokeAccess"
        | "providers"
        | "careRelationships"
        | "caseload" => Module::Care,
        "startConversation" | "postMessage" | "markRead" | "conversations" | "conversation" => {
            Module::Messages
        }
        "proposeAgreement"
        | "acceptAgreement"
        | "declineAgreement"
        | "withdrawAgreementProposal"
        | "agreement"
        | "alignment" => Module::Agreements,
        "myAccessLog" | "disclosuresCsv" => Module::AccessLog,
        "studies" | "enrolInStudy" | "withdrawFromStudy" => Module::Studies,
        "forum" | "chooseForumName" | "openTopic" | "replyToTopic" | "editPost"
        | "withdrawPost" | "supportPost" | "flagPost" | "raiseConcern" | "followTopic"
        | "markTopicRead" => Module::Forum,
        _ => return None,
    })
}

/// Whether a mutation's field counts as a write. In the forum only
/// postings do (opening a topic, replying), as ReConnect counted them;
/// choosing a name, editing, withdrawing, supporting, flagging, raising
/// concern, following and marking read are part of a visit.
pub fn writes(field: &str) -> bool {
    module_of(field) != Some(Module::Forum) || matches!(field, "openTopic" | "replyToTopic")
}

/// Records the top-level fields of every successful query and mutation as
/// usage (subscriptions are not requests of their own).
pub struct UsageExtension;

impl ExtensionFactory for UsageExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest::default())
    }
}

/// One operation of a document: its name and its modules, each with
/// whether it writes.
type Operation = (Option<String>, Vec<(Module, bool)>);

#[derive(Default)]
struct PerRequest {
    operations: std::sync::Mutex<Vec<Operation>>,
    /// Whether the caller was enrolled when the request began: a request
    /// counts only if they were enrolled before and after it (so neither
    /// the enrolment nor the withdrawal itself is recorded).
    enrolled_before: std::sync::atomic::AtomicBool,
}

fn top_level(document: &ExecutableDocument) -> Vec<Operation> {
    let summarise = |name: Option<String>,
                     op: &async_graphql::parser::types::OperationDefinition| {
        let write = match op.ty {
            OperationType::Query => false,
            OperationType::Mutation => true,
            OperationType::Subscription => return None,
        };
        let modules = op
            .selection_set
            .node
            .items
            .iter()
            .flat_map(|item| match &item.node {
                Selection::Field(_) => vec![&item.node],
                // Fields inside a top-level fragment are top-level fields too.
                Selection::InlineFragment(fragment) => fragment
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .map(|i| &i.node)
                    .collect(),
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map(|f| {
                        f.node
                            .selection_set
                            .node
                            .items
                            .iter()
                            .map(|i| &i.node)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .filter_map(|selection| match selection {
                Selection::Field(field) => {
                    let field = field.node.name.node.as_str();
                    module_of(field).map(|module| (module, write && writes(field)))
                }
                _ => None,
            })
            .collect();
        Some((name, modules))
    };
    match &document.operations {
        DocumentOperations::Single(op) => summarise(None, &op.node).into_iter().collect(),
        DocumentOperations::Multiple(ops) => ops
            .iter()
            .filter_map(|(name, op)| summarise(Some(name.to_string()), &op.node))
            .collect(),
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
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
            ctx.data_opt::<Arc<crate::service::Service>>(),
        ) {
            if let Ok(caller) = &request.caller {
                self.enrolled_before.store(
                    service
                        .usage
                        .is_enrolled(&caller.organisation, caller.subject),
                    std::sync::atomic::Ordering::SeqCst,
                );
            }
        }
        if let Ok(mut operations) = self.operations.lock() {
            *operations = top_level(&document);
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        if !response.errors.is_empty()
            || !self
                .enrolled_before
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return response;
        }
        let (Some(request), Some(service)) = (
            ctx.data_opt::<RequestContext>(),
            ctx.data_opt::<Arc<crate::service::Service>>(),
        ) else {
            return response;
        };
        let Ok(caller) = &request.caller else {
            return response;
        };
        let chosen = self.operations.lock().ok().and_then(|ops| {
            let single = ops.len() == 1;
            ops.iter()
                .find(|(name, _)| single || name.as_deref() == operation_name)
                .map(|(_, modules)| modules.clone())
        });
        if let Some(modules) = chosen {
            for (module, write) in modules {
                service.usage.record(
                    caller,
                    &request.request_id,
                    module,
                    write,
                    request.clock.now(),
                );
            }
        }
        response
    }
}
