//! GraphQL subscriptions: new messages, read receipts and agreement changes,
//! delivered live to the participants they concern.
//!
//! Served over WebSocket at `/graphql/ws` with the `graphql-transport-ws`
//! protocol (and the older `graphql-ws`), authenticated by the same bearer
//! token, sent as `{"token": "..."}` in `connection_init`. Only
//! subscriptions run over the socket: portal reads must go over HTTP, where
//! their access-trail records are awaited before the answer leaves.

use std::collections::HashMap;

use async_graphql::{Context, Enum, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::agreement::{AgreementEvent, AGREEMENT_TYPE};
use domain::care::{self, RelationshipState, Side};
use domain::messaging::{ConversationEvent, CONVERSATION_TYPE};
use futures::Stream;
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::schema::{caller, service};
use crate::service::Service;

/// What changed.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// A new message.
    Message,
    /// Someone read messages.
    ReadReceipt,
    /// An agreement was proposed, accepted, declined or withdrawn.
    Agreement,
}

/// One live update.
#[derive(SimpleObject, Clone)]
pub struct LiveUpdate {
    /// What changed.
    pub kind: UpdateKind,
    /// The thread, for messages and read receipts.
    pub conversation_id: Option<Uuid>,
    /// The relationship, for agreement changes.
    pub relationship_id: Option<Uuid>,
    /// The message, for a new message; the last message read, for a receipt.
    pub message_id: Option<Uuid>,
    /// Who wrote, read or changed it.
    pub by: Option<Uuid>,
    /// The message text, for a new message.
    pub body: Option<String>,
    /// How many messages the reader has now read, for a receipt.
    pub read: Option<i32>,
    /// The event type of an agreement change (`AgreementProposed`, ...).
    pub change: Option<String>,
    /// The version concerned, for an agreement change.
    pub version: Option<i32>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Global position of the event.
    pub position: i64,
}

/// Whether `caller` is in a thread: (member, the thread's user).
async fn member_of_thread(
    svc: &Service,
    caller: &Caller,
    id: Uuid,
) -> Result<(bool, Uuid), ApiError> {
    let (conversation, _) = svc.conversation(id).await?;
    let user = conversation.user_id.unwrap_or_default();
    if conversation.organisation != caller.organisation {
        return Ok((false, user));
    }
    Ok((
        match caller.role {
            Role::ServiceUser => user == caller.subject,
            Role::Provider => {
                conversation.participants.get(&caller.subject) == Some(&Side::Provider)
            }
            _ => false,
        },
        user,
    ))
}

/// Whether a provider's relationship with `user` is active now (checked
/// for every event: it may have ended since the last one).
async fn provider_active(svc: &Service, caller: &Caller, user: Uuid) -> bool {
    svc.relationship(care::relationship_id(user, caller.subject))
        .await
        .is_ok_and(|r| r.state == RelationshipState::Active)
}

/// Whether `caller` is a party of the relationship.
async fn follows_agreement(svc: &Service, caller: &Caller, id: Uuid) -> Result<bool, ApiError> {
    let relationship = svc.relationship(id).await?;
    Ok(relationship.organisation == caller.organisation
        && match caller.role {
            Role::ServiceUser => relationship.user_id == Some(caller.subject),
            Role::Provider => relationship.provider_id == Some(caller.subject),
            _ => false,
        })
}

/// One subscriber's view of the live stream.
struct Feed {
    events: tokio::sync::broadcast::Receiver<std::sync::Arc<projections::StoredEvent>>,
    svc: std::sync::Arc<Service>,
    caller: Caller,
    /// Threads seen: whether the caller is in them, and their user.
    threads: HashMap<String, (bool, Uuid)>,
    agreements: HashMap<String, bool>,
}

impl Feed {
    /// The next update for this subscriber; None when the service stops.
    async fn next(&mut self) -> Option<LiveUpdate> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let event = match self.events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a live subscriber fell behind");
                    continue;
                }
                Err(RecvError::Closed) => return None,
            };
            let Ok(id) = Uuid::parse_str(&event.aggregate_id) else {
                continue;
            };
            let position = event.checkpoint.position;
            if event.aggregate_type == CONVERSATION_TYPE {
                let Ok(decoded) = event.decode::<ConversationEvent>() else {
                    continue;
                };
                // Membership changes with removals: look again after one.
                if matches!(decoded, ConversationEvent::ProviderRemoved { .. }) {
                    self.threads.remove(&event.aggregate_id);
                }
                let (member, user) = match self.threads.get(&event.aggregate_id) {
                    Some(known) => *known,
                    None => {
                        let known = member_of_thread(&self.svc, &self.caller, id)
                            .await
                            .unwrap_or((false, Uuid::nil()));
                        self.threads.insert(event.aggregate_id.clone(), known);
                        known
                    }
                };
                if !member
                    || (self.caller.role == Role::Provider
                        && !provider_active(&self.svc, &self.caller, user).await)
                {
                    continue;
                }
                let base = LiveUpdate {
                    kind: UpdateKind::Message,
                    conversation_id: Some(id),
                    relationship_id: None,
                    message_id: None,
                    by: None,
                    body: None,
                    read: None,
                    change: None,
                    version: None,
                    at: decoded.at(),
                    position,
                };
                match decoded {
                    ConversationEvent::MessagePosted {
                        message_id,
                        by,
                        body,
                        ..
                    } => {
                        return Some(LiveUpdate {
                            message_id: Some(message_id),
                            by: Some(by),
                            body: Some(body),
                            ..base
                        })
                    }
                    ConversationEvent::MessagesRead {
                        by, up_to, count, ..
                    } => {
                        return Some(LiveUpdate {
                            kind: UpdateKind::ReadReceipt,
                            message_id: Some(up_to),
                            by: Some(by),
                            read: Some(count as i32),
                            ..base
                        })
                    }
                    _ => continue,
                }
            }
            if event.aggregate_type == AGREEMENT_TYPE {
                let follows = match self.agreements.get(&event.aggregate_id) {
                    Some(follows) => *follows,
                    None => {
                        let follows = follows_agreement(&self.svc, &self.caller, id)
                            .await
                            .unwrap_or(false);
                        self.agreements.insert(event.aggregate_id.clone(), follows);
                        follows
                    }
                };
                let Ok(decoded) = event.decode::<AgreementEvent>() else {
                    continue;
                };
                if !follows {
                    continue;
                }
                let (version, side) = match &decoded {
                    AgreementEvent::AgreementProposed { version, by, .. }
                    | AgreementEvent::AgreementAccepted { version, by, .. }
                    | AgreementEvent::AgreementDeclined { version, by, .. }
                    | AgreementEvent::ProposalWithdrawn { version, by, .. } => (*version, *by),
                };
                let by = self
                    .svc
                    .relationship(id)
                    .await
                    .ok()
                    .and_then(|r| match side {
                        Side::ServiceUser => r.user_id,
                        Side::Provider => r.provider_id,
                    });
                return Some(LiveUpdate {
                    kind: UpdateKind::Agreement,
                    conversation_id: None,
                    relationship_id: Some(id),
                    message_id: None,
                    by,
                    body: None,
                    read: None,
                    change: Some(event.event_type.clone()),
                    version: Some(version),
                    at: decoded.at(),
                    position,
                });
            }
        }
    }
}

/// Live updates.
#[derive(Default)]
pub struct LiveSubscription;

/// Live updates over WebSocket (`/graphql/ws`, `graphql-transport-ws`).
#[Subscription]
impl LiveSubscription {
    /// New messages and read receipts in the caller's threads, and changes to
    /// the agreements of their relationships, as they happen (from the
    /// moment of subscribing). A provider whose relationship ended receives
    /// nothing more from its threads.
    async fn live_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = LiveUpdate>> {
        let caller = caller(ctx)?;
        if !matches!(caller.role, Role::ServiceUser | Role::Provider) {
            return Err(ApiError::Forbidden(
                "only service users and providers receive live updates".into(),
            )
            .into());
        }
        let svc = std::sync::Arc::clone(service(ctx));
        let feed = Feed {
            events: svc.live.subscribe(),
            svc,
            caller,
            threads: HashMap::new(),
            agreements: HashMap::new(),
        };
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            let update = feed.next().await?;
            Some((update, feed))
        }))
    }
}
