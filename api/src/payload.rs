//! What mutations return: a payload per kind of object changed, carrying
//! that object (fetched through the same field a query would use, so the
//! same rules and the same trail apply) and the outcome of the command, in
//! the manner of GitHub's and Shopify's `…Payload` types. No client has to
//! fetch again after a write. Each resolver module declares the payloads of
//! its objects with [`payload!`], naming the function that fetches one by
//! its global id.

/// A payload type: the object a command changed, fetched by `$fetch` (an
/// `async fn(&Context, NodeId) -> Result<Option<$ty>>`) from the command's
/// target, and the fields every payload has.
macro_rules! payload {
    (
        $(#[doc = $doc:literal])*
        $name:ident { $field:ident: $ty:ty = $fetch:path, $field_doc:literal }
    ) => {
        $crate::payload::payload!(
            $(#[doc = $doc])*
            $name { $field: $ty = $fetch, $field_doc } settles $crate::consistency::READ_MODELS
        );
    };
    // `settles`: the read models the fetch reads, which it waits for (all
    // of them by default).
    (
        $(#[doc = $doc:literal])*
        $name:ident { $field:ident: $ty:ty = $fetch:path, $field_doc:literal } settles $models:expr
    ) => {
        $(#[doc = $doc])*
        pub struct $name(pub $crate::service::CommandOutcome);

        impl From<$crate::service::CommandOutcome> for $name {
            fn from(outcome: $crate::service::CommandOutcome) -> Self {
                $name(outcome)
            }
        }

        $(#[doc = $doc])*
        #[async_graphql::Object]
        impl $name {
            #[doc = $field_doc]
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<$ty>> {
                match &self.0.target {
                    Some($crate::service::Target::Node(id)) => {
                        // Read through the read models, once they show the command.
                        $crate::context::service(ctx)
                            .marks
                            .settle_for($models, self.0.checkpoint)
                            .await;
                        $fetch(ctx, *id).await
                    }
                    _ => Ok(None),
                }
            }

            /// The portal the command changed (its owner's person id); null outside portals.
            async fn portal_id(&self) -> Option<async_graphql::ID> {
                self.0.portal_id.map($crate::ids::person_id)
            }

            /// The changed aggregate's version (its event sequence number) after the command.
            async fn version(&self) -> $crate::ids::BigInt {
                $crate::ids::BigInt(self.0.version)
            }

            /// Global position of the command's event in the event stream.
            async fn position(&self) -> $crate::ids::BigInt {
                $crate::ids::BigInt(self.0.position)
            }

            /// True when this is the stored result of an earlier request with the same idempotency key.
            async fn replayed(&self) -> bool {
                self.0.replayed
            }

            /// True when the read models show this change; false only if the bounded wait for them ran out.
            /// Selecting it makes the mutation wait for them (`projections.read_your_writes_timeout`).
            async fn caught_up(&self, ctx: &async_graphql::Context<'_>) -> bool {
                $crate::context::service(ctx)
                    .marks
                    .settle(self.0.checkpoint)
                    .await
            }

            /// Names this write for later reads: sent back as the `Portal-Consistency` header,
            /// it makes a request's reads wait until they show this change, from any instance.
            /// (The writer's own reads, and reads of a portal written to, wait without it.)
            async fn consistency_token(&self) -> String {
                $crate::consistency::token(self.0.checkpoint)
            }
        }
    };
}
pub(crate) use payload;
