//! What mutations return: a payload per kind of object changed, carrying
//! that object (fetched through the same field a query would use, so the
//! same rules and the same trail apply) and the outcome of the command, in
//! the manner of GitHub's and Shopify's `…Payload` types. No client has to
//! fetch again after a write.

use async_graphql::{Context, Object, ID};

use crate::core::{Activity, ControlPanel, Goal};
use crate::node::{self, BigInt, Node};
use crate::service::{CommandOutcome, Target};

/// The object a payload names, if it is a node of the variant asked for.
async fn fetch(ctx: &Context<'_>, outcome: &CommandOutcome) -> async_graphql::Result<Option<Node>> {
    match &outcome.target {
        Some(Target::Node(id)) => Ok(Some(node::resolve(ctx, *id).await?)),
        _ => Ok(None),
    }
}

/// The fields every payload has, and its object.
macro_rules! payload {
    (
        $(#[doc = $doc:literal])*
        $name:ident { $field:ident: $ty:ty = $variant:ident, $field_doc:literal }
    ) => {
        $(#[doc = $doc])*
        pub struct $name(pub CommandOutcome);

        impl From<CommandOutcome> for $name {
            fn from(outcome: CommandOutcome) -> Self {
                $name(outcome)
            }
        }

        $(#[doc = $doc])*
        #[Object]
        impl $name {
            #[doc = $field_doc]
            async fn $field(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<$ty>> {
                Ok(match fetch(ctx, &self.0).await? {
                    Some(Node::$variant(object)) => Some(object),
                    _ => None,
                })
            }

            /// The portal the command changed (its owner's person id); null outside portals.
            async fn portal_id(&self) -> Option<ID> {
                self.0.portal_id.map(node::person_id)
            }

            /// The changed aggregate's version (its event sequence number) after the command.
            async fn version(&self) -> BigInt {
                BigInt(self.0.version)
            }

            /// Global position of the command's event in the event stream.
            async fn position(&self) -> BigInt {
                BigInt(self.0.position)
            }

            /// True when this is the stored result of an earlier request with the same idempotency key.
            async fn replayed(&self) -> bool {
                self.0.replayed
            }

            /// True when the read models already show this change; false only if the bounded wait ran out.
            async fn caught_up(&self) -> bool {
                self.0.caught_up
            }
        }
    };
}

payload!(
    /// What a change to the portal as a whole (opening it, a life domain, a
    /// status rating) returns.
    PortalPayload { control_panel: ControlPanel = ControlPanel, "The portal's control panel after the change." }
);
payload!(
    /// What a change to a goal returns.
    GoalPayload { goal: Goal = Goal, "The goal after the change." }
);
payload!(
    /// What a change to an activity returns.
    ActivityPayload { activity: Activity = Activity, "The activity after the change." }
);
payload!(
    /// What a change to a medication returns.
    MedicationPayload { medication: crate::toolbox::Medication = Medication, "The medication after the change." }
);
payload!(
    /// What a change to a person on the network map returns.
    NetworkPersonPayload { person: crate::toolbox::NetworkPerson = NetworkPerson, "The person after the change (with `removedAt` once removed)." }
);
payload!(
    /// What a revision of the crisis plan returns.
    CrisisPlanPayload { crisis_plan: crate::toolbox::CrisisPlan = CrisisPlan, "The revision written." }
);
payload!(
    /// What saving a provider profile returns.
    ProviderProfilePayload { provider_profile: crate::care::ProviderProfile = ProviderProfile, "The profile after the change." }
);
payload!(
    /// What a change to a care relationship returns.
    RelationshipPayload { relationship: crate::care::Relationship = Relationship, "The relationship after the change." }
);
payload!(
    /// What a change to an expectation agreement returns.
    AgreementPayload { agreement: crate::agreements::AgreementView = Agreement, "The agreement after the change." }
);
payload!(
    /// What starting a conversation or marking it read returns.
    ConversationPayload { conversation: crate::messaging::ConversationView = Conversation, "The conversation after the change." }
);
payload!(
    /// What posting a message returns.
    MessagePayload { message: crate::messaging::Message = Message, "The message posted." }
);
payload!(
    /// What starting or completing an exercise returns.
    ExerciseEntryPayload { entry: crate::toolbox::ExerciseEntry = ExerciseEntry, "The log entry after the change." }
);
payload!(
    /// What registering a study, enrolling or withdrawing returns.
    StudyPayload { study: crate::research::StudyView = Study, "The study as the caller sees it after the change." }
);

/// What adding an exercise to the catalogue returns.
pub struct ExercisePayload(pub CommandOutcome);

impl From<CommandOutcome> for ExercisePayload {
    fn from(outcome: CommandOutcome) -> Self {
        ExercisePayload(outcome)
    }
}

/// What adding an exercise to the catalogue returns.
#[Object]
impl ExercisePayload {
    /// The exercise added.
    async fn exercise(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::toolbox::Exercise>> {
        let Some(Target::Exercise(key)) = &self.0.target else {
            return Ok(None);
        };
        crate::toolbox::catalogue_exercise(ctx, key).await
    }

    /// The catalogue's version (its event sequence number) after the command.
    async fn version(&self) -> BigInt {
        BigInt(self.0.version)
    }

    /// Global position of the command's event in the event stream.
    async fn position(&self) -> BigInt {
        BigInt(self.0.position)
    }

    /// True when this is the stored result of an earlier request with the same idempotency key.
    async fn replayed(&self) -> bool {
        self.0.replayed
    }

    /// True when the read models already show this change; false only if the bounded wait ran out.
    async fn caught_up(&self) -> bool {
        self.0.caught_up
    }
}
