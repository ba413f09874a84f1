//! GraphQL subscriptions: new messages, read receipts, agreement changes and
//! break-glass openings, delivered live to the participants they concern.
//!
//! Served over WebSocket at `/graphql/ws` with the `graphql-transport-ws`
//! protocol (and the older `graphql-ws`), authenticated by the same bearer
//! token, sent as `{"token": "..."}` in `connection_init`. Only
//! subscriptions run over the socket: portal reads must go over HTTP, where
//! their access-trail records are awaited before the answer leaves.

use std::collections::HashMap;

use async_graphql::{Context, Enum, SimpleObject, Subscription, ID};

use crate::ids::{person_id, BigInt, NodeId};
use chrono::{DateTime, Utc};
use domain::agreement::AgreementEvent;
use domain::care::{self, Side};
use domain::messaging::ConversationEvent;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::auth::Caller;
use crate::context::{caller, now, service};
use crate::error::ApiError;
use crate::live::Members;
use crate::service::Service;

/// What changed.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// The first update of every subscription: it is live, and every change
    /// from now on reaches it (nothing else is set; `position` is 0).
    Subscribed,
    /// A new message.
    Message,
    /// Someone read messages.
    ReadReceipt,
    /// An agreement was proposed, accepted, declined or withdrawn.
    Agreement,
    /// A provider opened the service user's crisis plan with break-glass
    /// (delivered to the service user only).
    BreakGlass,
    /// A new post in a forum topic the caller follows (not their own).
    ForumPost,
    /// A concern for someone's safety raised in the forum, or raised again
    /// because no moderator has opened it (delivered to moderators only).
    Concern,
}

/// What happened to an agreement.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AgreementChange {
    /// A side proposed a version (or a counter-proposal).
    Proposed,
    /// The other side accepted it: it is in force.
    Accepted,
    /// The other side declined it.
    Declined,
    /// Its proposer withdrew it.
    Withdrawn,
}

/// One live update.
#[derive(SimpleObject, Clone)]
pub struct LiveUpdate {
    /// What changed.
    pub kind: UpdateKind,
    /// The thread's global id, for messages and read receipts.
    pub conversation_id: Option<ID>,
    /// The relationship's global id, for agreement changes and break-glass.
    pub relationship_id: Option<ID>,
    /// The message's global id: for a new message, that message; for a receipt, the last message read.
    pub message_id: Option<ID>,
    /// Who wrote, read, changed or opened it: their person id.
    pub by_id: Option<ID>,
    /// The message text, for a new message; the provider's words, for break-glass.
    pub body: Option<String>,
    /// Why, as a code, for break-glass.
    pub reason: Option<crate::care::BreakGlassReason>,
    /// When a break-glass opening runs out.
    pub until: Option<DateTime<Utc>>,
    /// How many messages the reader has now read, for a receipt.
    pub read: Option<i32>,
    /// What happened to the agreement, for an agreement change.
    pub change: Option<AgreementChange>,
    /// The version concerned, for an agreement change.
    pub version: Option<i32>,
    /// The forum topic's global id, for forum posts and concerns.
    pub topic_id: Option<ID>,
    /// The forum post's global id, for forum posts and concerns.
    pub post_id: Option<ID>,
    /// The concern's global id, for concerns.
    pub concern_id: Option<ID>,
    /// How the post's author appears (never who they are), for forum posts.
    pub author_name: Option<String>,
    /// The organisation's guidance for moderators, for concerns.
    pub guidance: Option<String>,
    /// How many times the concern was raised again unopened (0 when first raised).
    pub round: Option<i32>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Global position of the event.
    pub position: BigInt,
}

impl LiveUpdate {
    /// An update of `kind` at `at`, with nothing else set.
    fn bare(kind: UpdateKind, at: DateTime<Utc>, position: i64) -> LiveUpdate {
        LiveUpdate {
            kind,
            conversation_id: None,
            relationship_id: None,
            message_id: None,
            by_id: None,
            body: None,
            reason: None,
            until: None,
            read: None,
            change: None,
            version: None,
            topic_id: None,
            post_id: None,
            concern_id: None,
            author_name: None,
            guidance: None,
            round: None,
            at,
            position: BigInt(position),
        }
    }
}

/// Who is in a thread, from the instance's shared cache or, the first time,
/// from the thread's events.
async fn members(svc: &Service, id: Uuid) -> Result<std::sync::Arc<Members>, ApiError> {
    if let Some(known) = svc
        .live
        .members
        .lock()
        .ok()
        .and_then(|m| m.get(&id).cloned())
    {
        return Ok(known);
    }
    let (conversation, _) = svc.conversation(id).await?;
    let members = std::sync::Arc::new(Members {
        organisation: conversation.organisation.clone(),
        user: conversation.user_id.unwrap_or_default(),
        providers: conversation
            .participants
            .iter()
            .filter(|(_, side)| **side == Side::Provider)
            .map(|(id, _)| *id)
            .collect(),
    });
    if let Ok(mut cache) = svc.live.members.lock() {
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id, std::sync::Arc::clone(&members));
    }
    Ok(members)
}

/// Whether `caller` is in the thread.
fn member(caller: &Caller, members: &Members) -> bool {
    members.organisation == caller.organisation
        && match caller.care_side() {
            Some(Side::ServiceUser) => members.user == caller.subject,
            Some(Side::Provider) => members.providers.contains(&caller.subject),
            None => false,
        }
}

/// Whether a provider may hear of something written at `at`: their
/// relationship with `user` is active now and was when it was written
/// (checked for every event: it may have ended since the last one).
async fn provider_active(svc: &Service, caller: &Caller, user: Uuid, at: DateTime<Utc>) -> bool {
    crate::messaging::spans(svc, user, caller.subject)
        .await
        .is_ok_and(|spans| {
            spans.last().is_some_and(|(_, to)| to.is_none()) && care::within(&spans, at)
        })
}

/// Whether `caller` is a party of the relationship.
async fn follows_agreement(svc: &Service, caller: &Caller, id: Uuid) -> Result<bool, ApiError> {
    let relationship = svc.relationship(id).await?;
    Ok(domain::access::relationship_side(&caller.actor(), &relationship).is_some())
}

/// The update a forum event makes for `caller`, if any: a new post for
/// members who follow its topic (not its author), a concern for moderators.
async fn forum_update(
    svc: &Service,
    caller: &Caller,
    topic: Uuid,
    event: domain::forum::TopicEvent,
    position: i64,
) -> Option<LiveUpdate> {
    use domain::forum::TopicEvent as E;
    let at = event.at();
    let topic_id = Some(NodeId::ForumTopic { topic }.id());
    match event {
        E::TopicOpened {
            post_id,
            author,
            kind,
            body,
            ..
        }
        | E::ReplyPosted {
            post_id,
            author,
            kind,
            body,
            ..
        } => {
            if author == caller.subject || !crate::forum::follows(svc, caller, topic).await {
                return None;
            }
            Some(LiveUpdate {
                topic_id,
                post_id: Some(
                    NodeId::ForumPost {
                        topic,
                        post: post_id,
                    }
                    .id(),
                ),
                author_name: Some(crate::forum::shown_author(svc, caller, author, kind).await),
                body: Some(body),
                ..LiveUpdate::bare(UpdateKind::ForumPost, at, position)
            })
        }
        E::ConcernRaised {
            concern_id,
            post_id,
            note,
            ..
        } => moderators_only(
            svc,
            caller,
            LiveUpdate {
                topic_id,
                post_id: Some(
                    NodeId::ForumPost {
                        topic,
                        post: post_id,
                    }
                    .id(),
                ),
                concern_id: Some(
                    NodeId::ForumConcern {
                        topic,
                        concern: concern_id,
                    }
                    .id(),
                ),
                body: Some(note),
                round: Some(0),
                ..LiveUpdate::bare(UpdateKind::Concern, at, position)
            },
        ),
        E::ConcernRaisedAgain {
            concern_id, round, ..
        } => moderators_only(
            svc,
            caller,
            LiveUpdate {
                topic_id,
                concern_id: Some(
                    NodeId::ForumConcern {
                        topic,
                        concern: concern_id,
                    }
                    .id(),
                ),
                round: Some(round as i32),
                ..LiveUpdate::bare(UpdateKind::Concern, at, position)
            },
        ),
        _ => None,
    }
}

/// `update`, with the organisation's guidance, if `caller` moderates.
fn moderators_only(svc: &Service, caller: &Caller, update: LiveUpdate) -> Option<LiveUpdate> {
    domain::access::may_moderate(&caller.actor(), &caller.organisation).then(|| LiveUpdate {
        guidance: Some(svc.settings.forum.concern_guidance.clone()),
        ..update
    })
}

/// One subscriber's view of the live stream.
struct Feed {
    events: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::live::LiveEvent>>,
    svc: std::sync::Arc<Service>,
    caller: Caller,
    agreements: HashMap<String, bool>,
}

impl Feed {
    /// The next update for this subscriber; None when the service stops.
    async fn next(&mut self) -> Option<LiveUpdate> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            // The token checked when the socket opened runs out: so does the stream.
            let left = self.caller.expires_at - Utc::now().timestamp();
            if left <= 0 {
                return None;
            }
            let wait = std::time::Duration::from_secs(left.unsigned_abs());
            let Ok(received) = tokio::time::timeout(wait, self.events.recv()).await else {
                return None;
            };
            let event = match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    // Ending the stream tells the client to re-read and resubscribe.
                    tracing::warn!(missed, "a live subscriber fell behind; ending its stream");
                    return None;
                }
                Err(RecvError::Closed) => return None,
            };
            let Ok(id) = Uuid::parse_str(&event.stored.aggregate_id) else {
                continue;
            };
            let position = event.stored.checkpoint.position;
            if let Some(decoded) = event.conversation.clone() {
                // Membership changes with removals: look again after one.
                if matches!(decoded, ConversationEvent::ProviderRemoved { .. }) {
                    if let Ok(mut cache) = self.svc.live.members.lock() {
                        cache.remove(&id);
                    }
                }
                let Ok(members) = members(&self.svc, id).await else {
                    continue;
                };
                if !member(&self.caller, &members)
                    || (self.caller.care_side() == Some(Side::Provider)
                        && !provider_active(&self.svc, &self.caller, members.user, decoded.at())
                            .await)
                {
                    continue;
                }
                let base = LiveUpdate {
                    conversation_id: Some(NodeId::Conversation { conversation: id }.id()),
                    ..LiveUpdate::bare(UpdateKind::Message, decoded.at(), position)
                };
                match decoded {
                    ConversationEvent::MessagePosted {
                        message_id,
                        by,
                        body,
                        ..
                    } => {
                        return Some(LiveUpdate {
                            message_id: Some(
                                NodeId::Message {
                                    conversation: id,
                                    message: message_id,
                                }
                                .id(),
                            ),
                            by_id: Some(person_id(by)),
                            body: Some(body),
                            ..base
                        })
                    }
                    ConversationEvent::MessagesRead {
                        by, up_to, count, ..
                    } => {
                        return Some(LiveUpdate {
                            kind: UpdateKind::ReadReceipt,
                            message_id: Some(
                                NodeId::Message {
                                    conversation: id,
                                    message: up_to,
                                }
                                .id(),
                            ),
                            by_id: Some(person_id(by)),
                            read: Some(count as i32),
                            ..base
                        })
                    }
                    _ => continue,
                }
            }
            if let Some(decoded) = event.agreement.clone() {
                let follows = match self.agreements.get(&event.stored.aggregate_id) {
                    Some(follows) => *follows,
                    None => match follows_agreement(&self.svc, &self.caller, id).await {
                        Ok(follows) => {
                            self.agreements
                                .insert(event.stored.aggregate_id.clone(), follows);
                            follows
                        }
                        // Not remembered: the next event asks again.
                        Err(_) => false,
                    },
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
                    relationship_id: Some(NodeId::Relationship { relationship: id }.id()),
                    by_id: by.map(person_id),
                    change: Some(match decoded {
                        AgreementEvent::AgreementProposed { .. } => AgreementChange::Proposed,
                        AgreementEvent::AgreementAccepted { .. } => AgreementChange::Accepted,
                        AgreementEvent::AgreementDeclined { .. } => AgreementChange::Declined,
                        AgreementEvent::ProposalWithdrawn { .. } => AgreementChange::Withdrawn,
                    }),
                    version: Some(version),
                    ..LiveUpdate::bare(UpdateKind::Agreement, decoded.at(), position)
                });
            }
            if let Some(care::CareEvent::BreakGlassOpened {
                code,
                reason,
                until,
                at,
            }) = event.break_glass.clone()
            {
                // Only the service user whose plan it is hears of it.
                let Ok(relationship) = self.svc.relationship(id).await else {
                    continue;
                };
                if domain::access::relationship_side(&self.caller.actor(), &relationship)
                    != Some(Side::ServiceUser)
                {
                    continue;
                }
                return Some(LiveUpdate {
                    relationship_id: Some(NodeId::Relationship { relationship: id }.id()),
                    by_id: relationship.provider_id.map(person_id),
                    body: Some(reason),
                    reason: Some(code.into()),
                    until: Some(until),
                    ..LiveUpdate::bare(UpdateKind::BreakGlass, at, position)
                });
            }
            if let Some(decoded) = event.forum.clone() {
                if event.stored.metadata.organisation != self.caller.organisation {
                    continue;
                }
                if let Some(update) =
                    forum_update(&self.svc, &self.caller, id, decoded, position).await
                {
                    return Some(update);
                }
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
    /// New messages and read receipts in the caller's threads, changes to
    /// the agreements of their relationships, and (for a service user)
    /// every break-glass opening of their crisis plan, as they happen (from
    /// the moment of subscribing). A provider whose relationship ended receives
    /// nothing more from its threads. The stream ends when the token expires.
    async fn live_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = LiveUpdate>> {
        let caller = caller(ctx)?;
        if caller.care_side().is_none()
            && !domain::access::may_moderate(&caller.actor(), &caller.organisation)
        {
            return Err(ApiError::Forbidden(
                "only service users, providers and moderators receive live updates".into(),
            )
            .into());
        }
        if caller.expires_at <= Utc::now().timestamp() {
            return Err(ApiError::Unauthenticated(crate::auth::AuthError::Expired).into());
        }
        let svc = std::sync::Arc::clone(service(ctx));
        let feed = Feed {
            events: svc.live.subscribe(),
            svc,
            caller,
            agreements: HashMap::new(),
        };
        // The feed is listening from here on: say so first.
        let live = LiveUpdate::bare(UpdateKind::Subscribed, now(ctx), 0);
        let updates = futures::stream::unfold(feed, |mut feed| async move {
            let update = feed.next().await?;
            Some((update, feed))
        });
        Ok(futures::stream::once(async move { live }).chain(updates))
    }
}
