//! GraphQL for secure messaging (first slice: threads, messages, read
//! receipts; lists with unread counts and live delivery are still to come).
//!
//! Who may write is decided from the care relationships' own events at
//! every request: a provider while their relationship with the user is
//! active; the user while at least one provider of the thread still is (else
//! the thread is read-only). A provider whose relationship ended reads only
//! what was written before it ended. Nothing is ever deleted.

use std::collections::HashSet;

use async_graphql::{ComplexObject, Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::access;
use domain::care::{self, RelationshipState, Side};
use domain::messaging::{Conversation, ConversationCommand, ConversationEvent};

use projections::read::Scope;
use uuid::Uuid;

use crate::auth::Caller;
use crate::care::CareSide;
use crate::context::{caller, now, run_on, service};
use crate::error::ApiError;
use crate::ids::{self, NodeId};
use crate::paging::{self, connection, Page, Window};
use crate::payload::payload;
use crate::service::Service;

/// One message.
#[derive(SimpleObject, Clone)]
pub struct Message {
    /// The message's global id.
    pub id: ID,
    /// The message's own uuid (as in exports and events; `upTo` of `markRead` takes it too).
    pub uuid: Uuid,
    /// Who wrote it: their person id.
    pub author_id: ID,
    /// On which side.
    pub side: CareSide,
    /// The text (1-4000 characters).
    pub body: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// True when it started an exchange (the first of the thread, or written
    /// after a quiet spell).
    pub starts_exchange: bool,
    /// True when its author was erased: their words are gone (`body` is
    /// empty); that they wrote, and when, remains.
    pub erased: bool,
}

/// A participant of a thread.
#[derive(SimpleObject, Clone)]
pub struct Participant {
    /// Their person id.
    pub person_id: ID,
    /// Their side.
    pub side: CareSide,
    /// Messages they have read.
    pub read: i32,
    /// True while they are in the thread (a provider leaves when their relationship ends).
    pub active: bool,
}

/// A thread, as the caller may see it.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Conversation", complex)]
pub struct ConversationView {
    /// The thread's global id.
    pub id: ID,
    /// The thread's own uuid (as in exports and events).
    pub uuid: Uuid,
    /// The service user the thread is with: their person id.
    pub user_id: ID,
    /// Subject (1-200 characters).
    pub subject: String,
    /// Who started it: their person id.
    pub started_by_id: ID,
    /// True when nobody can write any more (every provider's relationship ended).
    pub read_only: bool,
    /// Everyone who was ever in it, with read receipts.
    pub participants: Vec<Participant>,
    /// Messages the caller has not read (0 for a provider whose relationship ended).
    pub unread: i32,
    /// The messages the caller may read, oldest first.
    #[graphql(skip)]
    pub messages: Vec<Message>,
}

connection!(
    /// A page of a thread's messages, oldest first.
    MessageConnection,
    MessageEdge,
    Message
);

/// Messages on a page, at most and by default.
pub const MESSAGES_PAGE_MAX: usize = 100;
pub const MESSAGES_PAGE_DEFAULT: usize = 50;

#[ComplexObject]
impl ConversationView {
    /// The messages the caller may read, oldest first, a page at a time:
    /// `first` or `last` 1-100 (default: the first 50), after or before a
    /// cursor. A chat client asks for `last` and pages back with `before`.
    #[graphql(
        complexity = "crate::paging::cost(first, last, MESSAGES_PAGE_DEFAULT, child_complexity)"
    )]
    async fn messages(
        &self,
        #[graphql(desc = "How many messages, counted from the oldest (1-100, default 50).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(
            desc = "How many messages from the newest (1-100), to page back; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<MessageConnection> {
        let window = Window::new(
            "messages",
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            MESSAGES_PAGE_DEFAULT,
            MESSAGES_PAGE_MAX,
        )?;
        let keyed = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (paging::ordered(i as i64), m.clone()))
            .collect();
        Ok(MessageConnection(Page::slice(&window, keyed)))
    }
}

/// The spans during which the provider's relationship with the user was
/// active: a provider sees and hears of messages written within them only.
pub(crate) async fn spans(
    svc: &Service,
    user: Uuid,
    provider: Uuid,
) -> Result<Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>, ApiError> {
    let events = svc
        .relationship_events(care::relationship_id(user, provider))
        .await?;
    Ok(care::active_spans(&events))
}

/// When the provider's relationship with the user ended, if it did (and is
/// not active again); None while active.
async fn ended_at(
    svc: &Service,
    user: Uuid,
    provider: Uuid,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    Ok(match spans(svc, user, provider).await?.last() {
        Some((_, None)) => None,
        Some((_, Some(ended))) => Some(*ended),
        None => Some(DateTime::<Utc>::MIN_UTC),
    })
}

/// The caller's side in the thread (`domain::access::conversation_side`);
/// NOT_FOUND for anyone never in it, of another organisation above all.
fn participant(caller: &Caller, conversation: &Conversation) -> Result<Side, ApiError> {
    access::conversation_side(&caller.actor(), conversation)
        .ok_or_else(|| ApiError::NotFound("no such conversation".into()))
}

/// The providers of the thread (and the caller, if a provider who left it)
/// whose care relationship with its user is active now: what the domain's
/// messaging rules take as `active`.
async fn active_providers(
    svc: &Service,
    conversation: &Conversation,
    caller: &Caller,
) -> Result<HashSet<Uuid>, ApiError> {
    let user = conversation.user_id.unwrap_or_default();
    let also = (caller.care_side() == Some(Side::Provider)).then_some(caller.subject);
    let mut active = HashSet::new();
    let providers = conversation
        .participants
        .iter()
        .filter(|(_, side)| **side == Side::Provider)
        .map(|(id, _)| *id)
        .chain(also);
    for id in providers {
        if !active.contains(&id) && ended_at(svc, user, id).await?.is_none() {
            active.insert(id);
        }
    }
    Ok(active)
}

/// The refusal of a write in a thread that is read-only for the caller.
fn read_only() -> ApiError {
    ApiError::Forbidden("this conversation is read-only: the care relationship ended".into())
}

fn messaging_role(caller: &Caller) -> Result<(), ApiError> {
    if caller.care_side().is_none() {
        return Err(ApiError::Forbidden(
            "only service users and providers write messages".into(),
        ));
    }
    Ok(())
}

/// One thread in the caller's list.
#[derive(SimpleObject, Clone)]
pub struct ConversationSummary {
    /// The thread's global id (a `Conversation`).
    pub id: ID,
    /// The thread's own uuid.
    pub uuid: Uuid,
    /// The service user the thread is with: their person id.
    pub user_id: ID,
    /// Subject.
    pub subject: String,
    /// Who started it: their person id.
    pub started_by_id: ID,
    /// When the latest message was written.
    pub last_message_at: DateTime<Utc>,
    /// Messages in the thread.
    pub messages: i32,
    /// Messages the caller has not read (0 for a provider whose relationship ended).
    pub unread: i32,
}

/// The caller's threads, newest activity first, and their unread total.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ConversationList {
    /// Unread messages over all the caller's threads.
    pub unread_total: i32,
    /// The threads, newest activity first.
    #[graphql(skip)]
    pub conversations: Vec<ConversationSummary>,
}

connection!(
    /// A page of the caller's threads, newest activity first.
    ConversationSummaryConnection,
    ConversationSummaryEdge,
    ConversationSummary
);

/// Threads on a page, at most and by default.
pub const THREADS_PAGE_MAX: usize = 100;
pub const THREADS_PAGE_DEFAULT: usize = 50;

#[ComplexObject]
impl ConversationList {
    /// The threads, newest activity first, a page at a time: `first` or
    /// `last` 1-100 (default: the first 50), after or before a cursor.
    #[graphql(
        complexity = "crate::paging::cost(first, last, THREADS_PAGE_DEFAULT, child_complexity)"
    )]
    async fn conversations(
        &self,
        #[graphql(desc = "How many threads from the newest activity (1-100, default 50).")]
        first: Option<i32>,
        #[graphql(desc = "The cursor after which the page starts (an `endCursor` of this list).")]
        after: Option<String>,
        #[graphql(
            desc = "How many threads from the oldest activity (1-100), to page back; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "The cursor before which the page ends (a `startCursor` of this list).")]
        before: Option<String>,
    ) -> async_graphql::Result<ConversationSummaryConnection> {
        let window = Window::new(
            "threads",
            first,
            after.as_deref(),
            last,
            before.as_deref(),
            THREADS_PAGE_DEFAULT,
            THREADS_PAGE_MAX,
        )?;
        // Newest activity first; a thread that gets a message moves up.
        let keyed = self
            .conversations
            .iter()
            .map(|c| {
                let at = c.last_message_at.timestamp_micros();
                (format!("{}:{}", paging::reversed(at), c.uuid), c.clone())
            })
            .collect();
        Ok(ConversationSummaryConnection(Page::slice(&window, keyed)))
    }
}

/// Reads of messages.
#[derive(Default)]
pub struct MessagingQuery;

#[Object]
impl MessagingQuery {
    /// The caller's threads (at most 500), with unread counts per thread and
    /// in total.
    async fn conversations(&self, ctx: &Context<'_>) -> async_graphql::Result<ConversationList> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        messaging_role(&caller)?;
        let scope = Scope {
            organisation: &caller.organisation,
        };
        let rows =
            projections::read::messaging::threads(&svc.engine, &svc.db, scope, caller.subject)
                .await?;
        let mut conversations = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, user_id, read) = (row.conversation_id, row.user_id, row.read_count);
            let mut messages = row.messages;
            let mut last_message_at = row.last_at;
            let mut ended = false;
            if caller.care_side() == Some(Side::Provider) {
                let spans = spans(svc, user_id, caller.subject).await?;
                ended = spans.last().is_none_or(|span| span.1.is_some());
                // Unless the relationship has been active throughout, count
                // only what the provider may see, from the thread's events.
                if !(spans.len() == 1 && spans[0].1.is_none()) {
                    let (_, events) = svc.conversation(id).await?;
                    let visible: Vec<DateTime<Utc>> = events
                        .iter()
                        .filter_map(|e| match e {
                            ConversationEvent::MessagePosted { at, .. }
                                if care::within(&spans, *at) =>
                            {
                                Some(*at)
                            }
                            _ => None,
                        })
                        .collect();
                    if visible.is_empty() {
                        continue;
                    }
                    messages = visible.len() as i64;
                    last_message_at = visible.last().copied().unwrap_or(last_message_at);
                }
            }
            conversations.push(ConversationSummary {
                id: NodeId::Conversation { conversation: id }.id(),
                uuid: id,
                user_id: ids::person_id(user_id),
                subject: row.subject,
                started_by_id: ids::person_id(row.started_by),
                last_message_at,
                messages: messages as i32,
                // Nothing is unread for a provider whose relationship ended.
                unread: if ended {
                    0
                } else {
                    (messages - read.min(messages)).max(0) as i32
                },
            });
        }
        Ok(ConversationList {
            unread_total: conversations.iter().map(|c| c.unread).sum(),
            conversations,
        })
    }

    /// One thread the caller is (or was) in, with its messages: a provider
    /// whose relationship ended sees only what was written before it ended.
    pub(crate) async fn conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread: its global id, or its uuid.")] conversation_id: ID,
    ) -> async_graphql::Result<ConversationView> {
        let conversation_id = ids::conversation(&conversation_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        messaging_role(&caller)?;
        let (conversation, events) = svc.conversation(conversation_id).await?;
        let side = participant(&caller, &conversation)?;
        let user = conversation.user_id.unwrap_or_default();
        // A provider sees what was written while their relationship was active.
        let seen_spans = match side {
            Side::Provider => Some(spans(svc, user, caller.subject).await?),
            Side::ServiceUser => None,
        };
        let mut messages = Vec::new();
        let mut started_by = user;
        for event in events {
            match event {
                ConversationEvent::ConversationStarted { started_by: by, .. } => started_by = by,
                ConversationEvent::MessagePosted {
                    message_id,
                    by,
                    side,
                    body,
                    starts_exchange,
                    at,
                } if seen_spans
                    .as_ref()
                    .is_none_or(|spans| care::within(spans, at)) =>
                {
                    messages.push(Message {
                        id: NodeId::Message {
                            conversation: conversation_id,
                            message: message_id,
                        }
                        .id(),
                        uuid: message_id,
                        author_id: ids::person_id(by),
                        side: side.into(),
                        body,
                        at,
                        starts_exchange,
                        erased: false,
                    })
                }
                _ => {}
            }
        }
        let authors: Vec<Uuid> = conversation
            .participants
            .keys()
            .copied()
            .chain(conversation.removed.keys().copied())
            .collect();
        let erased = projections::read::erasure::erased_among(
            &svc.engine,
            &svc.db,
            &caller.organisation,
            &authors,
        )
        .await?;
        if !erased.is_empty() {
            for message in &mut messages {
                let author = Uuid::parse_str(message.author_id.as_str()).unwrap_or_default();
                message.erased = erased.contains(&author);
            }
        }
        let active = active_providers(svc, &conversation, &caller).await?;
        let mut participants = Vec::new();
        let everyone = conversation
            .participants
            .iter()
            .map(|(id, side)| (*id, *side, true))
            .chain(
                conversation
                    .removed
                    .keys()
                    .map(|id| (*id, Side::Provider, false)),
            );
        for (id, side, in_thread) in everyone {
            let now_active = in_thread && (side == Side::ServiceUser || active.contains(&id));
            let read = conversation.read.get(&id).copied().unwrap_or(0);
            participants.push(Participant {
                person_id: ids::person_id(id),
                side: side.into(),
                // A provider learns nothing of messages they may not see.
                read: if seen_spans.is_some() {
                    read.min(messages.len())
                } else {
                    read
                } as i32,
                active: now_active,
            });
        }
        let read = conversation.read.get(&caller.subject).copied().unwrap_or(0);
        let actor = caller.actor();
        // Nothing is unread for a provider whose relationship ended.
        let ended = !access::may_mark_read(&actor, side, |id| active.contains(&id));
        Ok(ConversationView {
            id: NodeId::Conversation {
                conversation: conversation_id,
            }
            .id(),
            uuid: conversation_id,
            user_id: ids::person_id(user),
            subject: conversation.subject.clone(),
            started_by_id: ids::person_id(started_by),
            read_only: !access::conversation_open(&conversation, |id| active.contains(&id)),
            participants,
            unread: if ended {
                0
            } else {
                messages.len().saturating_sub(read) as i32
            },
            messages,
        })
    }
}

/// The thread a global id names, through `conversation`.
pub(crate) async fn conversation_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<ConversationView>> {
    let NodeId::Conversation { conversation } = id else {
        return Ok(None);
    };
    let conversation = ID(conversation.to_string());
    MessagingQuery
        .conversation(ctx, conversation)
        .await
        .map(Some)
}

/// The message a global id names, through its thread.
pub(crate) async fn message_node(
    ctx: &Context<'_>,
    id: NodeId,
) -> async_graphql::Result<Option<Message>> {
    let NodeId::Message {
        conversation,
        message,
    } = id
    else {
        return Ok(None);
    };
    let conversation = ID(conversation.to_string());
    let thread = MessagingQuery.conversation(ctx, conversation).await?;
    Ok(thread.messages.into_iter().find(|m| m.uuid == message))
}

payload!(
    /// What starting a conversation or marking it read returns.
    ConversationPayload { conversation: ConversationView = conversation_node, "The conversation after the change." }
);
payload!(
    /// What posting a message returns.
    MessagePayload { message: Message = message_node, "The message posted." }
);

/// Changes to threads.
#[derive(Default)]
pub struct MessagingMutation;

#[Object]
impl MessagingMutation {
    /// Starts a thread with its first message. A service user names one or
    /// more of their providers; a provider names the service user (`userId`)
    /// and may add colleagues. Every provider must be in an active care
    /// relationship with the user. `providerIds` and `userId` take person ids
    /// (or the global ids of provider profiles and control panels).
    async fn start_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread's subject (1-200 characters).")] subject: String,
        #[graphql(desc = "The first message (1-4000 characters).")] body: String,
        #[graphql(
            default,
            desc = "The providers in the thread, by person id or provider profile's global id: a service user's providers, or a provider's colleagues (at most 20 providers in the thread, a calling provider included)."
        )]
        provider_ids: Vec<ID>,
        #[graphql(
            desc = "The service user the thread is with: their person id or their control panel's global id; required for a provider, not used for a service user."
        )]
        user_id: Option<ID>,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ConversationPayload> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let provider_ids = provider_ids
            .iter()
            .take(domain::messaging::PROVIDERS_MAX + 1)
            .map(ids::person)
            .collect::<Result<Vec<Uuid>, ApiError>>()?;
        let user_id = user_id.as_ref().map(ids::person).transpose()?;
        messaging_role(&caller)?;
        let (user, mut providers) = match caller.care_side() {
            Some(Side::ServiceUser) => (caller.subject, provider_ids),
            _ => {
                let user = user_id.ok_or_else(|| {
                    ApiError::BadInput("field `userId` is required for a provider".into())
                })?;
                let mut providers = provider_ids;
                if !providers.contains(&caller.subject) {
                    providers.insert(0, caller.subject);
                }
                (user, providers)
            }
        };
        providers.truncate(domain::messaging::PROVIDERS_MAX + 1);
        for provider in &providers {
            let relationship = svc
                .relationship(care::relationship_id(user, *provider))
                .await?;
            if relationship.state != RelationshipState::Active
                || relationship.organisation != caller.organisation
            {
                return Err(ApiError::NotFound(format!(
                    "no active care relationship between {user} and {provider}"
                ))
                .into());
            }
        }
        let conversation_id = Uuid::new_v4();
        let command = ConversationCommand::Start {
            conversation_id,
            organisation: caller.organisation.clone(),
            user_id: user,
            providers,
            subject,
            by: caller.subject,
            message_id: Uuid::new_v4(),
            body,
            at: now(ctx),
        };
        Ok(run_on::<Conversation, _>(
            ctx,
            &caller,
            idempotency_key,
            &conversation_id.to_string(),
            command,
        )
        .await?)
    }

    /// Writes a message (1-4000 characters) in a thread the caller is in,
    /// while their care relationship allows it.
    async fn post_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread: its global id, or its uuid.")] conversation_id: ID,
        #[graphql(desc = "The message text (1-4000 characters).")] body: String,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<MessagePayload> {
        let conversation_id = ids::conversation(&conversation_id)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        messaging_role(&caller)?;
        let (conversation, _) = svc.conversation(conversation_id).await?;
        let side = participant(&caller, &conversation)?;
        let active = active_providers(svc, &conversation, &caller).await?;
        if !access::may_post(&caller.actor(), side, &conversation, |id| {
            active.contains(&id)
        }) {
            return Err(read_only().into());
        }
        let command = ConversationCommand::Post {
            by: caller.subject,
            message_id: Uuid::new_v4(),
            body,
            exchange_gap: svc.settings.research.exchange_gap_chrono(),
            at: now(ctx),
        };
        Ok(run_on::<Conversation, _>(
            ctx,
            &caller,
            idempotency_key,
            &conversation_id.to_string(),
            command,
        )
        .await?)
    }

    /// Marks every message up to and including `upTo` (a message's id or uuid)
    /// as read by the caller.
    async fn mark_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The thread: its global id, or its uuid.")] conversation_id: ID,
        #[graphql(desc = "The last message read: its global id, or its uuid.")] up_to: ID,
        #[graphql(
            desc = "A key of 1-128 characters; sending the same request with the same key again stores nothing and returns the first result."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ConversationPayload> {
        let conversation_id = ids::conversation(&conversation_id)?;
        let up_to = ids::message(&up_to)?;
        let (svc, caller) = (service(ctx), caller(ctx)?);
        messaging_role(&caller)?;
        let (conversation, _) = svc.conversation(conversation_id).await?;
        let side = participant(&caller, &conversation)?;
        // A provider whose relationship ended reads nothing new, so has
        // nothing to mark: the thread is read-only for them.
        let active = active_providers(svc, &conversation, &caller).await?;
        if !access::may_mark_read(&caller.actor(), side, |id| active.contains(&id)) {
            return Err(read_only().into());
        }
        let command = ConversationCommand::MarkRead {
            by: caller.subject,
            up_to,
            at: now(ctx),
        };
        Ok(run_on::<Conversation, _>(
            ctx,
            &caller,
            idempotency_key,
            &conversation_id.to_string(),
            command,
        )
        .await?)
    }
}
