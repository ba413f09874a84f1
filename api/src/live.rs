//! Live delivery: every service instance follows the global event stream
//! from the moment it starts and hands new conversation and agreement events
//! to its connected subscribers.
//!
//! It reads the stream in the same commit-safe order as the projections, so
//! an event is delivered once it is certain, on whichever instance wrote it.
//! It is woken at once by this instance's own commands and, on PostgreSQL,
//! by `NOTIFY portal_events` (a trigger on the events table) from any
//! instance; a short poll covers a lost notification.

use std::sync::Arc;
use std::time::Duration;

use domain::agreement::AGREEMENT_TYPE;
use domain::messaging::{ConversationEvent, CONVERSATION_TYPE};
use projections::{stream, Backend, Db, StoredEvent};
use tokio::sync::{broadcast, Notify};

/// After a wake-up finds nothing yet, the feed looks again after 50 ms, then
/// after twice as long each time, this many times (about 1.5 s in all),
/// before it waits for the next wake-up or poll. (A write here wakes the feed
/// twice, itself and through NOTIFY: the second finds nothing, so this is
/// kept short.)
const WAKE_RETRY_FIRST: Duration = Duration::from_millis(50);
const WAKE_RETRIES: u32 = 5;

/// Who is in a thread, shared by every subscriber of this instance so that a
/// thread is looked up once, not once per subscriber.
#[derive(Debug, Clone)]
pub struct Members {
    pub organisation: String,
    pub user: uuid::Uuid,
    pub providers: std::collections::BTreeSet<uuid::Uuid>,
}

/// A new event, decoded once for every subscriber.
#[derive(Debug)]
pub struct LiveEvent {
    pub stored: StoredEvent,
    pub conversation: Option<ConversationEvent>,
    pub agreement: Option<domain::agreement::AgreementEvent>,
    /// A break-glass opening (the only care event delivered live).
    pub break_glass: Option<domain::care::CareEvent>,
    /// A new forum post, or a concern raised (or raised again).
    pub forum: Option<domain::forum::TopicEvent>,
}

/// The stream of new events this instance delivers.
pub struct Live {
    events: broadcast::Sender<Arc<LiveEvent>>,
    wake: Arc<Notify>,
    /// Threads seen, by id.
    pub members: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Arc<Members>>>>,
}

impl Live {
    /// Starts following the stream of `db` (and, on PostgreSQL, listening
    /// for notifications on `url`).
    /// `poll`: how long the feed waits without a wake-up before it looks anyway.
    pub async fn start(db: Db, url: &str, poll: Duration) -> Result<Self, crate::error::ApiError> {
        let (events, _) = broadcast::channel(4096);
        let wake = Arc::new(Notify::new());
        let mut after = stream::live_start(&db).await?;
        let sender = events.clone();
        let woken = Arc::clone(&wake);
        let members: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Arc<Members>>>> =
            Default::default();
        let shared = Arc::clone(&members);
        tokio::spawn(async move {
            loop {
                let woken_up = tokio::time::timeout(poll, woken.notified()).await.is_ok();
                // A wake-up means an event was committed, but the commit-safe
                // order may hold it back a moment (while an older transaction
                // anywhere on the cluster runs): look again shortly, a few
                // times, rather than wait a whole poll for it.
                let mut retries = if woken_up { WAKE_RETRIES } else { 0 };
                let mut pause = WAKE_RETRY_FIRST;
                let mut delivered = false;
                loop {
                    let batch = match stream::read_batch(&db, after, 1000).await {
                        Ok(batch) => batch,
                        Err(error) => {
                            tracing::warn!(%error, "live feed cannot read the stream");
                            break;
                        }
                    };
                    let Some(last) = batch.last() else {
                        if delivered || retries == 0 {
                            break;
                        }
                        retries -= 1;
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                        continue;
                    };
                    delivered = true;
                    after = last.checkpoint;
                    for event in batch {
                        let conversation = (event.aggregate_type == CONVERSATION_TYPE)
                            .then(|| event.decode::<ConversationEvent>().ok())
                            .flatten();
                        let agreement = (event.aggregate_type == AGREEMENT_TYPE)
                            .then(|| event.decode().ok())
                            .flatten();
                        // A new thread's members are in its first event: keep
                        // them before any subscriber asks.
                        if let Some(ConversationEvent::ConversationStarted {
                            conversation_id,
                            organisation,
                            user_id,
                            providers,
                            ..
                        }) = &conversation
                        {
                            if let Ok(mut cache) = members.lock() {
                                if cache.len() > 100_000 {
                                    cache.clear();
                                }
                                cache.insert(
                                    *conversation_id,
                                    Arc::new(Members {
                                        organisation: organisation.clone(),
                                        user: *user_id,
                                        providers: providers.iter().copied().collect(),
                                    }),
                                );
                            }
                        }
                        let break_glass = (event.aggregate_type == domain::care::RELATIONSHIP_TYPE
                            && event.event_type == "BreakGlassOpened")
                            .then(|| event.decode().ok())
                            .flatten();
                        let forum = (event.aggregate_type == domain::forum::TOPIC_TYPE
                            && matches!(
                                event.event_type.as_str(),
                                "TopicOpened"
                                    | "ReplyPosted"
                                    | "ConcernRaised"
                                    | "ConcernRaisedAgain"
                            ))
                        .then(|| event.decode().ok())
                        .flatten();
                        if conversation.is_some()
                            || agreement.is_some()
                            || break_glass.is_some()
                            || forum.is_some()
                        {
                            // Nobody listening is fine.
                            let _ = sender.send(Arc::new(LiveEvent {
                                stored: event,
                                conversation,
                                agreement,
                                break_glass,
                                forum,
                            }));
                        }
                    }
                }
            }
        });
        if Backend::from_url(url)? == Backend::Postgres {
            // Listening before `start` returns: a notification sent once the
            // service is up is never missed for want of a listener.
            let mut listener = listen(url).await;
            // Whatever was committed between the feed's start and LISTEN.
            wake.notify_one();
            let (url, woken) = (url.to_string(), Arc::clone(&wake));
            tokio::spawn(async move {
                loop {
                    if let Some(mut current) = listener.take() {
                        // A notification, or `None` when sqlx lost the
                        // connection (it reconnects on the next call): either
                        // way, look at the stream.
                        while current.try_recv().await.is_ok() {
                            woken.notify_one();
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    listener = listen(&url).await;
                }
            });
        }
        Ok(Live {
            events,
            wake,
            members: shared,
        })
    }

    /// Looks for new events now (this instance just appended some).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// New conversation and agreement events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.events.subscribe()
    }
}

/// A connection listening for `portal_events`, or `None` (logged) if it
/// cannot be had now.
async fn listen(url: &str) -> Option<sqlx::postgres::PgListener> {
    match sqlx::postgres::PgListener::connect(url).await {
        Ok(mut listener) => match listener.listen("portal_events").await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for events");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "cannot listen for events");
            None
        }
    }
}
