//! Secure messaging (issue 5, domain only so far): one `Conversation`
//! aggregate per thread between a service user and one or more of their
//! providers (a team thread has several).
//!
//! The service checks what spans aggregates (that every provider is in an
//! active care relationship with the user) and removes a provider from the
//! thread when their relationship ends; the thread closes (read-only, nothing
//! deleted) when its last provider leaves. Who started the thread, and who
//! started each exchange, is in the events for research.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::care::Side;
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type of conversations in the event store.
pub const CONVERSATION_TYPE: &str = "Conversation";
/// Longest message, in characters.
pub const MESSAGE_MAX: usize = 4000;
/// Longest thread subject, in characters.
pub const SUBJECT_MAX: usize = 200;
/// Most providers in one thread.
pub const PROVIDERS_MAX: usize = 20;
/// Most messages in one thread (start another thread beyond it).
pub const MESSAGES_MAX: usize = 10_000;

/// A rule of a conversation refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConversationError {
    /// The subject or a message breaks a shared input check.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The caller may not do this in the thread ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    /// No such thread or message ([`ErrorKind::NotFound`]).
    #[error("{item} {id} does not exist")]
    Unknown { item: &'static str, id: Uuid },
    #[error("{item} {id} already exists")]
    DuplicateId { item: &'static str, id: Uuid },
    #[error("at most {max} {items} are allowed")]
    TooMany { items: &'static str, max: usize },
    #[error("{item} {id} is {state} and cannot be {action}")]
    WrongState {
        item: &'static str,
        id: Uuid,
        state: &'static str,
        action: &'static str,
    },
    #[error("nothing would change: the {0} already says this")]
    NothingChanged(&'static str),
}

impl Refusal for ConversationError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConversationError::Input(input) => input.kind(),
            ConversationError::NotAllowed(_) => ErrorKind::Forbidden,
            ConversationError::Unknown { .. } => ErrorKind::NotFound,
            ConversationError::DuplicateId { .. }
            | ConversationError::TooMany { .. }
            | ConversationError::WrongState { .. }
            | ConversationError::NothingChanged(_) => ErrorKind::FailedPrecondition,
        }
    }
}

/// A thread as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Option<Uuid>,
    pub organisation: String,
    pub user_id: Option<Uuid>,
    pub subject: String,
    /// Who may write and read now, and on which side.
    pub participants: BTreeMap<Uuid, Side>,
    /// Providers who left, and when: they read nothing written after.
    pub removed: BTreeMap<Uuid, DateTime<Utc>>,
    pub closed: bool,
    /// Every message: (id, author, time).
    pub messages: Vec<(Uuid, Uuid, DateTime<Utc>)>,
    /// How many of the messages each participant has read.
    pub read: BTreeMap<Uuid, usize>,
    pub last_at: Option<DateTime<Utc>>,
}

/// What participants (and the service, for removals) ask of a thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// Opens a thread with its first message.
    Start {
        conversation_id: Uuid,
        organisation: String,
        user_id: Uuid,
        providers: Vec<Uuid>,
        subject: String,
        by: Uuid,
        message_id: Uuid,
        body: String,
        at: DateTime<Utc>,
    },
    /// Writes a message. A message written `exchange_gap` or more after the
    /// previous one starts a new exchange.
    Post {
        by: Uuid,
        message_id: Uuid,
        body: String,
        exchange_gap: Duration,
        at: DateTime<Utc>,
    },
    /// Marks every message up to and including `up_to` as read by `by`.
    MarkRead {
        by: Uuid,
        up_to: Uuid,
        at: DateTime<Utc>,
    },
    /// Takes a provider out of the thread (their relationship ended).
    RemoveProvider { provider: Uuid, at: DateTime<Utc> },
}

/// What happened in a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    ConversationStarted {
        conversation_id: Uuid,
        organisation: String,
        user_id: Uuid,
        providers: Vec<Uuid>,
        subject: String,
        started_by: Uuid,
        at: DateTime<Utc>,
    },
    MessagePosted {
        message_id: Uuid,
        by: Uuid,
        side: Side,
        body: String,
        /// True for the first message of the thread, and for one written after
        /// a quiet spell: its author started the exchange.
        starts_exchange: bool,
        at: DateTime<Utc>,
    },
    MessagesRead {
        by: Uuid,
        up_to: Uuid,
        /// How many messages `by` has now read.
        count: usize,
        at: DateTime<Utc>,
    },
    ProviderRemoved {
        provider: Uuid,
        at: DateTime<Utc>,
    },
    ConversationClosed {
        at: DateTime<Utc>,
    },
}

/// A conversation's subject is its starter's words, a message its author's
/// (`crate::personal`); who, when and how many stay clear.
pub const PERSONAL_DATA: crate::personal::Declarations = crate::personal::Declarations {
    aggregate_type: CONVERSATION_TYPE,
    events: &[
        crate::personal::Declared {
            event_type: "ConversationStarted",
            owner: crate::personal::Owner::Field("started_by"),
            personal: &[crate::personal::text("subject")],
            clear: &[
                "conversation_id",
                "organisation",
                "user_id",
                "providers",
                "started_by",
                "at",
            ],
        },
        crate::personal::Declared {
            event_type: "MessagePosted",
            owner: crate::personal::Owner::Field("by"),
            personal: &[crate::personal::text("body")],
            clear: &["message_id", "by", "side", "starts_exchange", "at"],
        },
        crate::personal::Declared::clear("MessagesRead", &["by", "up_to", "count", "at"]),
        crate::personal::Declared::clear("ProviderRemoved", &["provider", "at"]),
        crate::personal::Declared::clear("ConversationClosed", &["at"]),
    ],
};

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            ConversationEvent::ConversationStarted { .. } => "ConversationStarted",
            ConversationEvent::MessagePosted { .. } => "MessagePosted",
            ConversationEvent::MessagesRead { .. } => "MessagesRead",
            ConversationEvent::ProviderRemoved { .. } => "ProviderRemoved",
            ConversationEvent::ConversationClosed { .. } => "ConversationClosed",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl ConversationEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ConversationEvent::ConversationStarted { at, .. }
            | ConversationEvent::MessagePosted { at, .. }
            | ConversationEvent::MessagesRead { at, .. }
            | ConversationEvent::ProviderRemoved { at, .. }
            | ConversationEvent::ConversationClosed { at } => *at,
        }
    }
}

fn body(value: &str) -> Result<String, InputError> {
    text::required(value, MESSAGE_MAX).map_err(InputError::text("body"))
}

impl Conversation {
    /// Messages `participant` has not read.
    pub fn unread(&self, participant: Uuid) -> usize {
        self.messages.len() - self.read.get(&participant).copied().unwrap_or(0)
    }

    fn id(&self) -> Uuid {
        self.id.unwrap_or_default()
    }

    fn side_of(&self, who: Uuid) -> Result<Side, ConversationError> {
        self.participants
            .get(&who)
            .copied()
            .ok_or(ConversationError::NotAllowed(
                "you are not in this conversation",
            ))
    }

    /// The events a command causes, or the rule it breaks.
    pub fn decide(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        let clamp = |at: DateTime<Utc>| self.last_at.map_or(at, |last| at.max(last));
        // The service answers NOT_FOUND with the id it was asked for; the
        // aggregate of a thread never started does not know one.
        if self.id.is_none() && !matches!(command, ConversationCommand::Start { .. }) {
            return Err(ConversationError::Unknown {
                item: "conversation",
                id: Uuid::nil(),
            });
        }
        match command {
            ConversationCommand::Start {
                conversation_id,
                organisation,
                user_id,
                providers,
                subject,
                by,
                message_id,
                body: text_body,
                at,
            } => {
                if self.id.is_some() {
                    return Err(ConversationError::DuplicateId {
                        item: "conversation",
                        id: conversation_id,
                    });
                }
                let subject =
                    text::required(&subject, SUBJECT_MAX).map_err(InputError::text("subject"))?;
                let mut unique = providers.clone();
                unique.sort_unstable();
                unique.dedup();
                if unique.is_empty() || unique.len() != providers.len() {
                    return Err(ConversationError::NotAllowed(
                        "a conversation needs one or more different providers",
                    ));
                }
                if providers.len() > PROVIDERS_MAX {
                    return Err(ConversationError::TooMany {
                        items: "providers in a conversation",
                        max: PROVIDERS_MAX,
                    });
                }
                if providers.contains(&user_id) {
                    return Err(ConversationError::NotAllowed(
                        "the service user cannot also be a provider of the conversation",
                    ));
                }
                let side = if by == user_id {
                    Side::ServiceUser
                } else if providers.contains(&by) {
                    Side::Provider
                } else {
                    return Err(ConversationError::NotAllowed(
                        "only a participant can start a conversation",
                    ));
                };
                let body = body(&text_body)?;
                Ok(vec![
                    ConversationEvent::ConversationStarted {
                        conversation_id,
                        organisation,
                        user_id,
                        providers,
                        subject,
                        started_by: by,
                        at,
                    },
                    ConversationEvent::MessagePosted {
                        message_id,
                        by,
                        side,
                        body,
                        starts_exchange: true,
                        at,
                    },
                ])
            }
            ConversationCommand::Post {
                by,
                message_id,
                body: text_body,
                exchange_gap,
                at,
            } => {
                let at = clamp(at);
                if self.closed {
                    return Err(ConversationError::WrongState {
                        item: "conversation",
                        id: self.id(),
                        state: "closed",
                        action: "written to",
                    });
                }
                let side = self.side_of(by)?;
                if self.messages.iter().any(|(id, _, _)| *id == message_id) {
                    return Err(ConversationError::DuplicateId {
                        item: "message",
                        id: message_id,
                    });
                }
                if self.messages.len() >= MESSAGES_MAX {
                    return Err(ConversationError::TooMany {
                        items: "messages in a conversation",
                        max: MESSAGES_MAX,
                    });
                }
                let body = body(&text_body)?;
                let starts_exchange = self
                    .messages
                    .last()
                    .is_none_or(|(_, _, last)| at - *last >= exchange_gap);
                Ok(vec![ConversationEvent::MessagePosted {
                    message_id,
                    by,
                    side,
                    body,
                    starts_exchange,
                    at,
                }])
            }
            ConversationCommand::MarkRead { by, up_to, at } => {
                self.side_of(by)?;
                let Some(index) = self.messages.iter().position(|(id, _, _)| *id == up_to) else {
                    return Err(ConversationError::Unknown {
                        item: "message",
                        id: up_to,
                    });
                };
                let count = index + 1;
                if self.read.get(&by).copied().unwrap_or(0) >= count {
                    return Err(ConversationError::NothingChanged("read receipt"));
                }
                Ok(vec![ConversationEvent::MessagesRead {
                    by,
                    up_to,
                    count,
                    at: clamp(at),
                }])
            }
            ConversationCommand::RemoveProvider { provider, at } => {
                let at = clamp(at);
                if self.participants.get(&provider) != Some(&Side::Provider) {
                    return Err(ConversationError::NothingChanged("conversation"));
                }
                let mut events = vec![ConversationEvent::ProviderRemoved { provider, at }];
                let providers_left = self
                    .participants
                    .iter()
                    .filter(|(id, side)| **side == Side::Provider && **id != provider)
                    .count();
                if providers_left == 0 && !self.closed {
                    events.push(ConversationEvent::ConversationClosed { at });
                }
                Ok(events)
            }
        }
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = CONVERSATION_TYPE;
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.last_at = Some(event.at());
        match event {
            ConversationEvent::ConversationStarted {
                conversation_id,
                organisation,
                user_id,
                providers,
                subject,
                ..
            } => {
                self.id = Some(conversation_id);
                self.organisation = organisation;
                self.user_id = Some(user_id);
                self.subject = subject;
                self.participants.insert(user_id, Side::ServiceUser);
                for provider in providers {
                    self.participants.insert(provider, Side::Provider);
                }
            }
            ConversationEvent::MessagePosted {
                message_id, by, at, ..
            } => {
                self.messages.push((message_id, by, at));
                // One has read what one wrote, and everything before it.
                self.read.insert(by, self.messages.len());
            }
            ConversationEvent::MessagesRead { by, count, .. } => {
                self.read.insert(by, count);
            }
            ConversationEvent::ProviderRemoved { provider, at } => {
                self.participants.remove(&provider);
                self.removed.insert(provider, at);
            }
            ConversationEvent::ConversationClosed { .. } => self.closed = true,
        }
    }
}

#[cfg(test)]
#[path = "messaging_tests.rs"]
mod tests;
