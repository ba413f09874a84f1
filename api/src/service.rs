//! The service: the event store (cqrs-es on either store), the projection
//! engine, and command execution with metadata, idempotency and
//! read-your-writes.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use domain::agreement::{Agreement, AgreementEvent, AGREEMENT_TYPE};
use domain::care::{self, CareEvent, CareRelationship, Provider, ProviderEvent};
use domain::catalogue::{self, Catalogue, CatalogueEvent};
use domain::messaging::{Conversation, ConversationEvent, CONVERSATION_TYPE};
use domain::portal::{Portal, PortalCommand, PortalEvent};
use domain::study::{Enrolment, Study, StudyEvent, STUDY_TYPE};
use postgres_es::PostgresEventRepository;
use projections::engine::EngineConfig;
use projections::stream::{self, EventMetadata};
use projections::vault::Vault;
use projections::{Backend, Checkpoint, Db, Engine};
use sqlite_es::SqliteEventRepository;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions;
use sqlx::Row;
use uuid::Uuid;

use crate::aggregate_cache::AppendPool;
use crate::auth::{Caller, TokenKeys};
use crate::error::{classify, ApiError, StoreFailure};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::trail::Trail;

type Framework<A, R> = CqrsFramework<A, crate::aggregate_cache::Cached<R, A>>;

/// cqrs-es in event-store mode for one aggregate type, on whichever store the URL names.
pub(crate) enum EventStore<A: Aggregate + Clone> {
    Postgres(Framework<A, PostgresEventRepository>),
    Sqlite(Framework<A, SqliteEventRepository>),
}

impl<A: Aggregate + Clone> EventStore<A> {
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<(), AggregateError<A::Error>> {
        match self {
            EventStore::Postgres(cqrs) => {
                cqrs.execute_with_metadata(aggregate_id, command, metadata)
                    .await
            }
            EventStore::Sqlite(cqrs) => {
                cqrs.execute_with_metadata(aggregate_id, command, metadata)
                    .await
            }
        }
    }
}

/// The event stores of every aggregate type, sharing one pool.
pub(crate) struct Stores {
    portals: EventStore<Portal>,
    catalogues: EventStore<Catalogue>,
    providers: EventStore<Provider>,
    relationships: EventStore<CareRelationship>,
    agreements: EventStore<Agreement>,
    conversations: EventStore<Conversation>,
    forums: EventStore<domain::forum::Forum>,
    topics: EventStore<domain::forum::Topic>,
    readers: EventStore<domain::forum::Reader>,
    erasures: EventStore<domain::erasure::Erasure>,
    studies: EventStore<Study>,
    enrolments: EventStore<Enrolment>,
}

/// An aggregate type the service stores commands for, and its store.
pub(crate) trait Stored:
    Aggregate<Error: domain::refusal::Refusal, Command: Clone> + Clone
{
    /// How many times a command that lost the race to append is decided
    /// again on the new state before the client gets `CONFLICT`.
    const RETRIES: u32;
    fn store(stores: &Stores) -> &EventStore<Self>;
}

macro_rules! stored {
    ($($aggregate:ty => $field:ident, $retries:expr);* $(;)?) => {
        $(impl Stored for $aggregate {
            const RETRIES: u32 = $retries;
            fn store(stores: &Stores) -> &EventStore<Self> {
                &stores.$field
            }
        })*
    };
}

// A command of one side about what the other side did (accept a proposal
// or an invitation, decline it, end a relationship) names no version: decided
// again on a newer state it could accept what its sender never saw. Those
// aggregates answer CONFLICT at once; the others' commands are about the
// sender's own items and are decided again.
stored!(
    Portal => portals, CONFLICT_RETRIES;
    Catalogue => catalogues, CONFLICT_RETRIES;
    Provider => providers, CONFLICT_RETRIES;
    CareRelationship => relationships, 0;
    Agreement => agreements, 0;
    Conversation => conversations, CONFLICT_RETRIES;
    domain::forum::Forum => forums, CONFLICT_RETRIES;
    domain::forum::Topic => topics, CONFLICT_RETRIES;
    domain::forum::Reader => readers, CONFLICT_RETRIES;
    domain::erasure::Erasure => erasures, 0;
    Study => studies, CONFLICT_RETRIES;
    Enrolment => enrolments, CONFLICT_RETRIES;
);

/// What a command changed or created, as its payload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An object with a global id.
    Node(crate::ids::NodeId),
    /// An exercise of the organisation's catalogue, by key.
    Exercise(String),
}

/// What the first event of a command changed or created, whatever its
/// aggregate: from the aggregate's type and id and the event's payload.
fn target(
    aggregate_type: &str,
    aggregate_id: &str,
    payload: &str,
) -> Result<Option<Target>, ApiError> {
    use crate::ids::NodeId;
    let id = Uuid::parse_str(aggregate_id).ok();
    fn decode<E: serde::de::DeserializeOwned>(payload: &str) -> Result<E, ApiError> {
        serde_json::from_str(payload).map_err(|e| ApiError::internal(format!("event payload: {e}")))
    }
    let node = |node: NodeId| Some(Target::Node(node));
    Ok(match aggregate_type {
        catalogue::AGGREGATE_TYPE => match decode::<CatalogueEvent>(payload)? {
            CatalogueEvent::ExerciseAdded { key, .. } => Some(Target::Exercise(key)),
        },
        care::RELATIONSHIP_TYPE => {
            id.and_then(|relationship| node(NodeId::Relationship { relationship }))
        }
        care::PROVIDER_TYPE => id.and_then(|provider| node(NodeId::ProviderProfile { provider })),
        AGREEMENT_TYPE => id.and_then(|relationship| node(NodeId::Agreement { relationship })),
        CONVERSATION_TYPE => match (id, decode::<ConversationEvent>(payload)?) {
            (Some(conversation), ConversationEvent::MessagePosted { message_id, .. }) => {
                node(NodeId::Message {
                    conversation,
                    message: message_id,
                })
            }
            (Some(conversation), _) => node(NodeId::Conversation { conversation }),
            (None, _) => None,
        },
        STUDY_TYPE => id.and_then(|study| node(NodeId::Study { study })),
        domain::forum::TOPIC_TYPE => {
            use domain::forum::TopicEvent as E;
            let Some(topic) = id else { return Ok(None) };
            match decode::<E>(payload)? {
                E::TopicOpened { post_id: post, .. }
                | E::ReplyPosted { post_id: post, .. }
                | E::PostEdited { post_id: post, .. }
                | E::PostWithdrawn { post_id: post, .. }
                | E::SupportGiven { post_id: post, .. }
                | E::SupportTakenBack { post_id: post, .. }
                | E::PostFlagged { post_id: post, .. }
                | E::PostHidden { post_id: post, .. }
                | E::PostRestored { post_id: post, .. }
                | E::ConcernRaised { post_id: post, .. } => node(NodeId::ForumPost { topic, post }),
                E::ConcernOpened { concern_id, .. }
                | E::ConcernResolved { concern_id, .. }
                | E::ConcernRaisedAgain { concern_id, .. } => node(NodeId::ForumConcern {
                    topic,
                    concern: concern_id,
                }),
                E::TopicClosed { .. } | E::TopicReopened { .. } => {
                    node(NodeId::ForumTopic { topic })
                }
            }
        }
        domain::forum::READER_TYPE => match decode::<domain::forum::ReaderEvent>(payload)? {
            domain::forum::ReaderEvent::TopicFollowed { topic_id, .. }
            | domain::forum::ReaderEvent::TopicUnfollowed { topic_id, .. }
            | domain::forum::ReaderEvent::TopicRead { topic_id, .. } => {
                node(NodeId::ForumTopic { topic: topic_id })
            }
        },
        domain::forum::FORUM_TYPE | domain::erasure::ERASURE_TYPE => None,
        domain::study::ENROLMENT_TYPE => match decode::<domain::study::EnrolmentEvent>(payload)? {
            domain::study::EnrolmentEvent::Enrolled { study_id, .. }
            | domain::study::EnrolmentEvent::Withdrew { study_id, .. } => {
                node(NodeId::Study { study: study_id })
            }
        },
        _ => {
            let Some(portal) = id else { return Ok(None) };
            match decode::<PortalEvent>(payload)? {
                PortalEvent::PortalOpened { .. }
                | PortalEvent::LifeDomainAdded { .. }
                | PortalEvent::StatusRated { .. } => node(NodeId::ControlPanel { portal }),
                PortalEvent::GoalSet { goal_id, .. }
                | PortalEvent::GoalRevised { goal_id, .. }
                | PortalEvent::GoalAchieved { goal_id, .. }
                | PortalEvent::GoalAbandoned { goal_id, .. } => node(NodeId::Goal {
                    portal,
                    goal: goal_id,
                }),
                PortalEvent::ActivityPlanned {
                    goal_id,
                    activity_id,
                    ..
                }
                | PortalEvent::ActivityCompleted {
                    goal_id,
                    activity_id,
                    ..
                }
                | PortalEvent::ActivityDropped {
                    goal_id,
                    activity_id,
                    ..
                } => node(NodeId::Activity {
                    portal,
                    goal: goal_id,
                    activity: activity_id,
                }),
                PortalEvent::MedicationAdded { medication_id, .. }
                | PortalEvent::MedicationChanged { medication_id, .. }
                | PortalEvent::MedicationPaused { medication_id, .. }
                | PortalEvent::MedicationResumed { medication_id, .. }
                | PortalEvent::MedicationStopped { medication_id, .. } => {
                    node(NodeId::Medication {
                        portal,
                        medication: medication_id,
                    })
                }
                PortalEvent::PersonAdded { person_id, .. }
                | PortalEvent::PersonUpdated { person_id, .. }
                | PortalEvent::PersonRemoved { person_id, .. } => node(NodeId::NetworkPerson {
                    portal,
                    person: person_id,
                }),
                PortalEvent::CrisisPlanRevised { revision, .. } => node(NodeId::CrisisPlan {
                    portal,
                    revision: revision as i32,
                }),
                PortalEvent::ExerciseStarted { entry_id, .. }
                | PortalEvent::ExerciseCompleted { entry_id, .. } => node(NodeId::ExerciseEntry {
                    portal,
                    entry: entry_id,
                }),
            }
        }
    })
}

/// The portal an aggregate id names, if it is a portal.
fn portal_of(aggregate_type: &str, aggregate_id: &str) -> Option<Uuid> {
    (aggregate_type == "Portal")
        .then(|| Uuid::parse_str(aggregate_id).ok())
        .flatten()
}

/// Longest accepted idempotency key.
pub const IDEMPOTENCY_KEY_MAX: usize = 128;

/// A client's idempotency key and the fingerprint of the request it came
/// with (the mutation and its arguments): a key reused for a different
/// request is refused rather than answered with the first one's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// What a command did, for its mutation's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The portal the command changed; None outside portals.
    pub portal_id: Option<Uuid>,
    /// The aggregate's version (its event sequence number) after the command.
    pub version: i64,
    /// Global position of the command's last event in the event stream.
    pub position: i64,
    /// What the command changed or created.
    pub target: Option<Target>,
    /// True when this is the stored result of an earlier request with the same idempotency key.
    pub replayed: bool,
    /// Where the command's last event stands in the global order: reads that
    /// must show it wait for it (see [`crate::consistency`]).
    pub checkpoint: Checkpoint,
}

/// Everything a request handler needs.
pub struct Service {
    pub settings: Settings,
    pub db: Db,
    pub engine: Arc<Engine>,
    pub keys: TokenKeys,
    /// Verifies bearer tokens: local ones, and each organisation's identity
    /// provider's (`crate::oidc`).
    pub auth: crate::oidc::Authenticator,
    /// Appends to the access trail.
    pub trail: Trail,
    /// Signs checkpoints of the trail's chain heads (`App::serve` runs it).
    pub witness: Arc<crate::witness::Witness>,
    /// New conversation and agreement events, for live subscribers.
    pub live: crate::live::Live,
    /// The acknowledged writes reads wait for (read-your-writes).
    pub marks: crate::consistency::Marks,
    /// Usage records of enrolled participants, for research.
    pub usage: crate::usage::UsageRecorder,
    /// Research measures, followed from the stream once asked for.
    pub measures: crate::measures::Measures,
    pub metrics: Metrics,
    /// Writes per person (`server.writes_per_minute`, `server.write_burst`).
    pub write_limit: crate::rate::PersonLimit,
    /// Refused reads per reader (`server.refusals_per_minute`).
    pub refusal_limit: crate::rate::PersonLimit,
    stores: Stores,
    /// Forums and topics folded so far, brought up to date from the store
    /// at each use (`Service::folded`).
    folds: crate::folds::Folds,
    /// People's data exports (`crate::privacy::export`).
    pub exports: crate::export_jobs::Exports,
    /// Organisation of each portal seen; it never changes after opening.
    organisations: std::sync::RwLock<std::collections::HashMap<Uuid, String>>,
}

/// Most portals whose organisation is remembered before the cache starts over.
const ORGANISATION_CACHE_MAX: usize = 100_000;

/// Applies the store's migrations to the database `url` names.
pub async fn migrate(settings: &Settings) -> Result<(), ApiError> {
    open_store(settings).await.map(|_| ())
}

/// cqrs-es with events as the only source of truth: no snapshots (0.5.0's apply
/// events twice) and no inline queries (the projection engine feeds read models);
/// folded aggregates are kept between commands and appends say where their
/// events landed (`crate::aggregate_cache`).
fn event_store_mode<A, R>(repo: R, pool: AppendPool, vault: &Vault) -> Framework<A, R>
where
    A: Aggregate<Services = ()> + Clone,
    R: cqrs_es::persist::PersistedEventRepository,
{
    CqrsFramework::new(
        crate::aggregate_cache::Cached::new(repo, pool, vault.clone()),
        vec![],
        (),
    )
}

/// The event stores of every aggregate type on one store: `$variant` of
/// [`EventStore`], a repository made by `$repo`, appends through `$pool`,
/// personal data sealed by `$vault`.
macro_rules! stores {
    ($variant:ident, $repo:expr, $pool:expr, $vault:expr) => {
        Stores {
            portals: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            catalogues: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            providers: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            relationships: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            agreements: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            conversations: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            forums: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            topics: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            readers: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            erasures: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            studies: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
            enrolments: EventStore::$variant(event_store_mode($repo, $pool, $vault)),
        }
    };
}

/// The store's own pool, migrated and checked for durability.
enum StorePool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl StorePool {
    /// The event stores of every aggregate type over this pool.
    fn stores(&self, vault: &Vault) -> Stores {
        match self {
            StorePool::Postgres(pool) => stores!(
                Postgres,
                PostgresEventRepository::new(pool.clone()),
                AppendPool::Postgres(pool.clone()),
                vault
            ),
            StorePool::Sqlite(pool) => stores!(
                Sqlite,
                SqliteEventRepository::new(pool.clone()),
                AppendPool::Sqlite(pool.clone()),
                vault
            ),
        }
    }
}

async fn open_store(settings: &Settings) -> Result<StorePool, ApiError> {
    let url = &settings.store.database_url;
    match Backend::from_url(url)? {
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(settings.store.max_connections)
                // No ping per acquire (see `projections::Db::connect`).
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            let values = crate::durability::postgres(&pool).await?;
            crate::durability::enforce(
                &crate::durability::unsafe_settings(Backend::Postgres, &values),
                settings.store.allow_unsafe_commits,
            )?;
            Ok(StorePool::Postgres(pool))
        }
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .disable_statement_logging();
            if let Some(parent) = Path::new(options.get_filename()).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.store.max_connections)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
            let values = crate::durability::sqlite(&pool).await?;
            crate::durability::enforce(
                &crate::durability::unsafe_settings(Backend::Sqlite, &values),
                settings.store.allow_unsafe_commits,
            )?;
            Ok(StorePool::Sqlite(pool))
        }
    }
}

/// How many times a command that lost a race is decided again before the
/// client gets `CONFLICT`.
const CONFLICT_RETRIES: u32 = 5;

/// A short, growing pause with jitter before deciding a command again, so
/// that the writers that collided do not collide again in step.
fn retry_pause(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    let jitter = u64::from(Uuid::new_v4().as_bytes()[0]) % (base + 1);
    Duration::from_millis(base + jitter)
}

impl Service {
    /// Opens the store (creating and migrating it if needed) and prepares the
    /// projections. Runners are started by [`crate::app::App::serve`] (or by a
    /// tool that needs the read models).
    pub async fn open(settings: Settings) -> Result<Self, ApiError> {
        let store_pool = open_store(&settings).await?;
        let db = Db::connect(&settings.store.database_url, settings.store.max_connections).await?;
        if let Some(warning) = settings.master_key_warning() {
            tracing::warn!("{warning}");
        }
        db.vault.unlock(projections::vault::MasterKey::derive(
            settings.resolve_master_key()?.expose(),
        ));
        // Events written before personal data was sealed are sealed once.
        crate::encryption_migration::seal_existing(
            &settings.store.database_url,
            db.backend,
            &db.vault,
        )
        .await?;
        let stores = store_pool.stores(&db.vault);
        let config = EngineConfig {
            batch_size: settings.projections.batch_size,
            poll_interval: settings.projections.poll,
        };
        let engine = Arc::new(Engine::prepare(db.clone(), projections::all(), config).await?);
        let keys =
            TokenKeys::new(&settings.resolve_token_key()?).with_leeway(settings.tokens.leeway);
        if !settings.has_trail_key() {
            // A new key would make every existing record fail verification.
            let written: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM events WHERE aggregate_type = $1 LIMIT 1")
                    .bind(domain::trail::AGGREGATE_TYPE)
                    .fetch_optional(&db.pool)
                    .await?;
            if written.is_some() {
                return Err(ApiError::internal(format!(
                    "the access trail was written with a key this service does not have: set \
                     PORTAL_TRAIL_KEY or restore {}",
                    settings.store.data_dir.join("trail.key").display()
                )));
            }
        }
        if let Some(warning) = settings.trail_key_warning() {
            tracing::warn!("{warning}");
        }
        let trail_key = settings.resolve_trail_key()?;
        if !Trail::new(&trail_key).check_key(&db).await? {
            return Err(ApiError::internal(
                "none of the access trail's newest records was made with this trail key: \
                 set the PORTAL_TRAIL_KEY (or trail.key) the trail was written with",
            ));
        }
        let witness = Arc::new(crate::witness::Witness::open(&settings, &db).await?);
        let trail = Trail::start(&trail_key, &settings.store.database_url, db.vault.clone())?;
        // Made now if missing, so exports from this data folder find it.
        settings.resolve_research_key()?;
        let live =
            crate::live::Live::start(db.clone(), &settings.store.database_url, settings.live.poll)
                .await?;
        let usage = crate::usage::UsageRecorder::start(db.clone()).await?;
        let refusal_limit = crate::rate::PersonLimit::new(
            "refused reads",
            settings.server.refusals_per_minute,
            settings.server.refusals_per_minute,
        );
        let write_limit = crate::rate::PersonLimit::new(
            "writes",
            settings.server.writes_per_minute,
            settings.server.write_burst,
        );
        let marks = crate::consistency::Marks::new(
            Arc::clone(&engine),
            settings.projections.read_your_writes_timeout,
        );
        let auth = crate::oidc::Authenticator::new(&settings, keys.clone())
            .map_err(|e| ApiError::internal(format!("the identity providers' client: {e}")))?;
        let exports = crate::export_jobs::Exports::new(
            settings.store.data_dir.join("exports"),
            settings.privacy.export_ttl,
            settings.privacy.export_link_ttl,
        );
        Ok(Service {
            auth,
            exports,
            settings,
            db,
            engine,
            marks,
            keys,
            trail,
            witness,
            live,
            usage,
            measures: Default::default(),
            metrics: Metrics::default(),
            write_limit,
            refusal_limit,
            stores,
            organisations: Default::default(),
            folds: Default::default(),
        })
    }

    /// The organisation a portal was opened in, or `None` if it is not open.
    /// The read model answers first; while it has not caught up with a portal
    /// just opened, the portal's first event does (so a portal is never taken
    /// for unopened, and open to another organisation, in that window).
    pub async fn portal_organisation(&self, portal_id: Uuid) -> Result<Option<String>, ApiError> {
        if let Some(org) = self
            .organisations
            .read()
            .ok()
            .and_then(|m| m.get(&portal_id).cloned())
        {
            return Ok(Some(org));
        }
        let org =
            projections::read::portal::organisation_of(&self.engine, &self.db, portal_id).await?;
        let org = match org {
            Some(org) => Some(org),
            None => stream::read_at_sequence(&self.db, "Portal", &portal_id.to_string(), 1)
                .await?
                .map(|opened| opened.metadata.organisation),
        };
        if let (Some(org), Ok(mut cache)) = (&org, self.organisations.write()) {
            if cache.len() >= ORGANISATION_CACHE_MAX {
                cache.clear();
            }
            cache.insert(portal_id, org.clone());
        }
        Ok(org)
    }

    /// Runs a command on the caller's own portal; reads that must show it
    /// wait for it ([`crate::consistency`]).
    pub async fn execute(
        &self,
        caller: &Caller,
        request_id: &str,
        idempotency_key: Option<IdempotencyKey>,
        command: PortalCommand,
    ) -> Result<CommandOutcome, ApiError> {
        let id = caller.subject.to_string();
        self.run_command::<Portal>(caller, request_id, idempotency_key, &id, command)
            .await
    }

    /// Runs a command on aggregate `aggregate_id` of type `A` and waits until
    /// the read models show it. The caller's right to run it is checked by
    /// whoever calls.
    pub(crate) async fn run_command<A: Stored>(
        &self,
        caller: &Caller,
        request_id: &str,
        idempotency_key: Option<IdempotencyKey>,
        aggregate_id: &str,
        command: A::Command,
    ) -> Result<CommandOutcome, ApiError> {
        self.measured(self.execute_on(
            A::store(&self.stores),
            A::RETRIES,
            aggregate_id,
            caller,
            request_id,
            idempotency_key,
            command,
        ))
        .await
    }

    /// One aggregate's events, oldest first, decoded straight from the event
    /// store (decisions never wait for a projection).
    async fn events_of<E: serde::de::DeserializeOwned>(
        &self,
        aggregate_type: &str,
        id: Uuid,
    ) -> Result<Vec<E>, ApiError> {
        let payloads = stream::read_payloads(&self.db, aggregate_type, &id.to_string()).await?;
        payloads
            .iter()
            .map(|payload| {
                serde_json::from_str::<E>(payload)
                    .map_err(|e| ApiError::internal(format!("{aggregate_type} {id}: {e}")))
            })
            .collect()
    }

    /// An aggregate as its events leave it now: kept folded between uses
    /// and brought up to date with the events appended since (from the
    /// store itself, so a decision never rests on a lagging read model).
    pub async fn folded<A>(&self, aggregate_id: &str) -> Result<A, ApiError>
    where
        A: Aggregate + Clone + Default + Send + Sync + 'static,
    {
        self.folds.after_erasures(self.db.vault.erasures_seen());
        let (after, mut folded) = self.folds.get::<A>(aggregate_id);
        let newer = stream::read_payloads_after(&self.db, A::TYPE, aggregate_id, after).await?;
        let Some((last, _)) = newer.last() else {
            return Ok(folded);
        };
        let last = *last;
        for (_, payload) in &newer {
            let event: A::Event = serde_json::from_str(payload)
                .map_err(|e| ApiError::internal(format!("{} {aggregate_id}: {e}", A::TYPE)))?;
            folded.apply(event);
        }
        self.folds.keep(aggregate_id, last, folded.clone());
        Ok(folded)
    }

    /// A conversation as its events leave it, and the events.
    pub async fn conversation(
        &self,
        conversation_id: Uuid,
    ) -> Result<(Conversation, Vec<ConversationEvent>), ApiError> {
        let events: Vec<ConversationEvent> =
            self.events_of(CONVERSATION_TYPE, conversation_id).await?;
        let mut conversation = Conversation::default();
        for event in &events {
            conversation.apply(event.clone());
        }
        Ok((conversation, events))
    }

    /// The events of a relationship's expectation agreement, oldest first.
    pub async fn agreement_events(
        &self,
        relationship_id: Uuid,
    ) -> Result<Vec<AgreementEvent>, ApiError> {
        self.events_of(AGREEMENT_TYPE, relationship_id).await
    }

    /// A care relationship's events, oldest first: access decisions fold them.
    pub async fn relationship_events(
        &self,
        relationship_id: Uuid,
    ) -> Result<Vec<CareEvent>, ApiError> {
        self.events_of(care::RELATIONSHIP_TYPE, relationship_id)
            .await
    }

    /// A care relationship as its events leave it.
    pub async fn relationship(&self, relationship_id: Uuid) -> Result<CareRelationship, ApiError> {
        let mut relationship = CareRelationship::default();
        for event in self.relationship_events(relationship_id).await? {
            relationship.apply(event);
        }
        Ok(relationship)
    }

    /// Every registered study, oldest first.
    pub async fn studies(&self) -> Result<Vec<domain::study::StudyInfo>, ApiError> {
        let mut studies = Vec::new();
        for (id, payload) in stream::read_type_payloads(&self.db, STUDY_TYPE).await? {
            match serde_json::from_str::<StudyEvent>(&payload)
                .map_err(|e| ApiError::internal(format!("study {id}: {e}")))?
            {
                StudyEvent::StudyRegistered { info, .. } => studies.push(info),
            }
        }
        Ok(studies)
    }

    /// Every enrolment event of every study, in the order they happened.
    pub async fn enrolment_events(&self) -> Result<Vec<domain::study::EnrolmentEvent>, ApiError> {
        stream::read_type_payloads(&self.db, domain::study::ENROLMENT_TYPE)
            .await?
            .iter()
            .map(|(id, payload)| {
                serde_json::from_str(payload)
                    .map_err(|e| ApiError::internal(format!("enrolment {id}: {e}")))
            })
            .collect()
    }

    /// A provider's profile as its events leave it.
    pub async fn provider(&self, provider_id: Uuid) -> Result<Provider, ApiError> {
        let stored =
            stream::read_aggregate(&self.db, care::PROVIDER_TYPE, &provider_id.to_string()).await?;
        let mut provider = Provider::default();
        for e in &stored {
            provider.apply(e.decode::<ProviderEvent>()?);
        }
        Ok(provider)
    }

    /// The exercise catalogue of an organisation, folded from its events.
    pub async fn catalogue(&self, organisation: &str) -> Result<Catalogue, ApiError> {
        let limit = (domain::portal::limits::EXERCISES_MAX + 1) as i64;
        let events =
            stream::read_aggregate_tail(&self.db, catalogue::AGGREGATE_TYPE, organisation, limit)
                .await?;
        let mut catalogue = Catalogue::default();
        for stored in events.iter().rev() {
            catalogue.apply(stored.decode::<CatalogueEvent>()?);
        }
        Ok(catalogue)
    }

    async fn measured(
        &self,
        run: impl std::future::Future<Output = Result<CommandOutcome, ApiError>>,
    ) -> Result<CommandOutcome, ApiError> {
        let started = Instant::now();
        let result = run.await;
        self.metrics
            .command_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.command(match &result {
            Ok(o) if o.replayed => "replayed",
            Ok(_) => "ok",
            Err(e) => e.code(),
        });
        result
    }

    #[allow(clippy::too_many_arguments)] // one command's whole context; a struct would only rename them
    async fn execute_on<A>(
        &self,
        store: &EventStore<A>,
        retries: u32,
        aggregate_id: &str,
        caller: &Caller,
        request_id: &str,
        idempotency_key: Option<IdempotencyKey>,
        command: A::Command,
    ) -> Result<CommandOutcome, ApiError>
    where
        A: Aggregate<Error: domain::refusal::Refusal, Command: Clone> + Clone,
    {
        // Nothing more is written by an erased person (their erasure's own
        // stream excepted: it records the erasure).
        if A::TYPE != domain::erasure::ERASURE_TYPE
            && self
                .db
                .vault
                .is_erased(&projections::vault::key_id(
                    &caller.organisation,
                    caller.subject,
                ))
                .await
                .map_err(ApiError::internal)?
        {
            return Err(ApiError::FailedPrecondition(
                "this person's personal data was erased: nothing more can be written for them"
                    .into(),
            ));
        }
        if let Some(IdempotencyKey { key, .. }) = &idempotency_key {
            if key.is_empty()
                || key.len() > IDEMPOTENCY_KEY_MAX
                || key.chars().any(char::is_control)
            {
                return Err(ApiError::BadInput(format!(
                    "field `idempotencyKey` must be 1-{IDEMPOTENCY_KEY_MAX} characters without control characters"
                )));
            }
        }
        if let Some(key) = &idempotency_key {
            if let Some(outcome) = self.replay(caller, key).await? {
                return Ok(outcome);
            }
        }
        // A replay above costs nothing; a new write takes from the allowance.
        // An erasure carried out (or replayed from the ledger) is the
        // service's own step, not a person's write.
        if A::TYPE != domain::erasure::ERASURE_TYPE {
            self.write_limit
                .take(&caller.organisation, caller.subject)?;
        }
        let command_id = Uuid::new_v4().to_string();
        let metadata = EventMetadata {
            idempotency_key: idempotency_key.as_ref().map(|k| k.key.clone()),
            idempotency_fingerprint: idempotency_key.as_ref().map(|k| k.fingerprint.clone()),
            ..caller.metadata(request_id, &command_id)
        }
        .to_map();
        // Another command on the same aggregate may commit between our load
        // and our append. Then the command is decided again on the new
        // state, a bounded number of times, so that two writes of one person
        // to different items both succeed; CONFLICT only if it keeps losing.
        let mut attempt = 0;
        let mut decided_on_stored = false;
        let appended = loop {
            let (result, appended) = crate::aggregate_cache::observe(store.execute(
                aggregate_id,
                command.clone(),
                metadata.clone(),
            ))
            .await;
            let Err(error) = result else { break appended };
            let failure = classify(error);
            // Decided on a kept aggregate: a conflict says another instance
            // appended since, and a refusal may rest on what it changed.
            // Decided again on the stored events (the entry is gone), once,
            // outside the budget of retries.
            if appended.from_cache
                && !decided_on_stored
                && matches!(failure, StoreFailure::Conflict | StoreFailure::Rule(_))
            {
                decided_on_stored = true;
                self.metrics.command("decided_again_on_stored_events");
                continue;
            }
            // A copy of this request with the same key may have won the race:
            // then its result is ours.
            if matches!(failure, StoreFailure::Conflict | StoreFailure::KeyReused) {
                if let Some(key) = &idempotency_key {
                    if let Some(outcome) = self.replay(caller, key).await? {
                        return Ok(outcome);
                    }
                }
            }
            // Decided again, the command may be refused because a copy of
            // this very request (same key) committed meanwhile: then its
            // result is ours, not the refusal.
            if (attempt > 0 || decided_on_stored) && matches!(failure, StoreFailure::Rule(_)) {
                if let Some(key) = &idempotency_key {
                    if let Some(outcome) = self.replay(caller, key).await? {
                        return Ok(outcome);
                    }
                }
            }
            match failure {
                StoreFailure::Conflict if attempt < retries => {
                    attempt += 1;
                    self.metrics.command("retried_after_conflict");
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                StoreFailure::Rule(rule) => return Err(ApiError::refused(&rule)),
                StoreFailure::Conflict | StoreFailure::KeyReused => {
                    return Err(ApiError::Conflict(
                        "this was changed by another request at the same time".into(),
                    ))
                }
                StoreFailure::Other(detail) => return Err(ApiError::internal(detail)),
            }
        };
        self.engine.wake();
        self.live.wake();
        // The append said where the command's events landed.
        let (Some((_, first_payload)), Some((last, version))) = (appended.first, appended.last)
        else {
            return Err(ApiError::internal("the command appended no event"));
        };
        let outcome = CommandOutcome {
            portal_id: portal_of(A::TYPE, aggregate_id),
            version,
            position: last.position,
            target: target(A::TYPE, aggregate_id, &first_payload)?,
            replayed: false,
            checkpoint: last,
        };
        self.acknowledge(caller, &outcome);
        Ok(outcome)
    }

    /// Notes an acknowledged command for the reads that must show it.
    fn acknowledge(&self, caller: &Caller, outcome: &CommandOutcome) {
        use crate::consistency::Reach;
        let reach = match outcome.portal_id {
            Some(portal) => Reach::Portal(portal),
            None => Reach::Organisation(&caller.organisation),
        };
        self.marks.acknowledged(
            &caller.organisation,
            caller.subject,
            reach,
            outcome.checkpoint,
        );
    }

    /// The stored result of the request that first used this key, if any;
    /// `IDEMPOTENCY_KEY_REUSED` if that request was a different one (another
    /// mutation, other arguments, or another organisation's identity).
    async fn replay(
        &self,
        caller: &Caller,
        key: &IdempotencyKey,
    ) -> Result<Option<CommandOutcome>, ApiError> {
        let row = sqlx::query(
            "SELECT aggregate_type, aggregate_id, first_sequence FROM idempotency_keys \
             WHERE actor_id = $1 AND key = $2",
        )
        .bind(caller.subject.to_string())
        .bind(&key.key)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let aggregate_type: String = row.try_get("aggregate_type")?;
        let aggregate_id: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("first_sequence")?;
        let stored = stream::read_at_sequence(&self.db, &aggregate_type, &aggregate_id, sequence)
            .await?
            .ok_or_else(|| ApiError::internal("idempotency key points at a missing event"))?;
        let first = &stored.metadata;
        // Keys stored before fingerprints were kept match any request.
        let same_request = first
            .idempotency_fingerprint
            .as_ref()
            .is_none_or(|f| *f == key.fingerprint);
        if first.organisation != caller.organisation || !same_request {
            return Err(ApiError::KeyReused(
                "this idempotency key was already used for a different request; use a new key"
                    .into(),
            ));
        }
        let outcome = CommandOutcome {
            portal_id: portal_of(&aggregate_type, &aggregate_id),
            version: stored.sequence,
            position: stored.checkpoint.position,
            target: target(
                &stored.aggregate_type,
                &stored.aggregate_id,
                &stored.payload,
            )?,
            replayed: true,
            checkpoint: stored.checkpoint,
        };
        self.acknowledge(caller, &outcome);
        Ok(Some(outcome))
    }
}
