//! `node(id:)` and `nodes(ids:)`: an object fetched again by its global id
//! (`ids::NodeId`) through the same resolver, the same refusal rules and
//! the same access trail as the typed field that lists it. It sits above
//! every resolver module, beside the schema's root.

use async_graphql::{Context, Interface, Object, PathSegment, ID};

use crate::agreements::{self, AgreementView};
use crate::care::{self, ProviderProfile, Relationship};
use crate::core::{self, Activity, ControlPanel, Goal};
use crate::error::ApiError;
use crate::forum::{self, ForumConcern, ForumPost, ForumTopicView};
use crate::ids::{clip, NodeId};
use crate::messaging::{self, ConversationView, Message};
use crate::research::{self, StudyView};
use crate::toolbox::{self, CrisisPlan, ExerciseEntry, Medication, NetworkPerson};

/// Most ids one `nodes` call takes (GitHub's limit too).
pub const NODES_MAX: usize = 100;

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "&ID",
    desc = "The object's global id: opaque, unique across types, for `node` and `nodes`."
))]
pub enum Node {
    ControlPanel(ControlPanel),
    Goal(Goal),
    Activity(Activity),
    Medication(Medication),
    NetworkPerson(NetworkPerson),
    CrisisPlan(CrisisPlan),
    ExerciseEntry(ExerciseEntry),
    ProviderProfile(ProviderProfile),
    Relationship(Relationship),
    Agreement(AgreementView),
    Conversation(ConversationView),
    Message(Message),
    Study(StudyView),
    ForumTopic(ForumTopicView),
    ForumPost(ForumPost),
    ForumConcern(ForumConcern),
}

/// `node` and `nodes`.
#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global id, through the same refusal rules and the
    /// same access trail as the field that lists it: NOT_FOUND when it does
    /// not exist or is not the caller's to know of, FORBIDDEN where that
    /// field would refuse.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's global id (its `id` field; a bare uuid is not one).")]
        id: ID,
    ) -> async_graphql::Result<Node> {
        let node = NodeId::decode(&id)
            .ok_or_else(|| ApiError::BadInput(format!("`{}` is not a global id", clip(&id))))?;
        resolve(ctx, node).await
    }

    /// The objects with these global ids (1-100), in the order asked; one the
    /// caller may not see, or that does not exist, is null, with its error at
    /// its place in the list (path `nodes`, index).
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The objects' global ids, 1-100 of them.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.is_empty() || ids.len() > NODES_MAX {
            return Err(ApiError::BadInput(format!("`ids` takes 1-{NODES_MAX} ids")).into());
        }
        let here: Vec<PathSegment> = ctx
            .path_node
            .map(|p| p.to_string_vec())
            .unwrap_or_default()
            .into_iter()
            .map(PathSegment::Field)
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for (index, id) in ids.iter().enumerate() {
            let node = match NodeId::decode(id) {
                Some(node) => resolve(ctx, node).await,
                None => {
                    Err(ApiError::BadInput(format!("`{}` is not a global id", clip(id))).into())
                }
            };
            match node {
                Ok(node) => out.push(Some(node)),
                Err(error) => {
                    let mut path = here.clone();
                    path.push(PathSegment::Index(index));
                    ctx.add_error(error.into_server_error(ctx.item.pos).with_path(path));
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

/// Fetches a node through the typed field that serves its type (each
/// module's `…_node` function).
pub(crate) async fn resolve(ctx: &Context<'_>, node: NodeId) -> async_graphql::Result<Node> {
    let absent = || {
        async_graphql::Error::from(ApiError::NotFound(format!(
            "no {} with this id",
            node.type_name()
        )))
    };
    Ok(match node {
        NodeId::ControlPanel { .. } => {
            Node::ControlPanel(core::panel_node(ctx, node).await?.ok_or_else(absent)?)
        }
        NodeId::Goal { .. } => Node::Goal(core::goal_node(ctx, node).await?.ok_or_else(absent)?),
        NodeId::Activity { .. } => {
            Node::Activity(core::activity_node(ctx, node).await?.ok_or_else(absent)?)
        }
        NodeId::Medication { .. } => Node::Medication(
            toolbox::medication_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::NetworkPerson { .. } => Node::NetworkPerson(
            toolbox::network_person_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::CrisisPlan { .. } => Node::CrisisPlan(
            toolbox::crisis_plan_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::ExerciseEntry { .. } => Node::ExerciseEntry(
            toolbox::exercise_entry_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::ProviderProfile { .. } => Node::ProviderProfile(
            care::provider_profile_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::Relationship { .. } => Node::Relationship(
            care::relationship_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::Agreement { .. } => Node::Agreement(
            agreements::agreement_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::Conversation { .. } => Node::Conversation(
            messaging::conversation_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::Message { .. } => Node::Message(
            messaging::message_node(ctx, node)
                .await?
                .ok_or_else(absent)?,
        ),
        NodeId::Study { .. } => {
            Node::Study(research::study_node(ctx, node).await?.ok_or_else(absent)?)
        }
        NodeId::ForumTopic { .. } => {
            Node::ForumTopic(forum::topic_node(ctx, node).await?.ok_or_else(absent)?)
        }
        NodeId::ForumPost { .. } => {
            Node::ForumPost(forum::post_node(ctx, node).await?.ok_or_else(absent)?)
        }
        NodeId::ForumConcern { .. } => {
            Node::ForumConcern(forum::concern_node(ctx, node).await?.ok_or_else(absent)?)
        }
    })
}
