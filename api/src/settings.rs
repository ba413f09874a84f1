//! Typed settings: defaults, then an optional TOML file, then `PORTAL_*`
//! environment variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::auth::Secret;

/// Everything the service can be told, by concern. In the settings file
/// each group is a table (`[server]`, `[care]`, ...) and durations are
/// written as people write them (`"14d"`, `"1h"`, `"250ms"`); each setting
/// also has a `PORTAL_*` environment variable, named beside it, whose
/// number is in the unit the name says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub store: Store,
    pub tokens: Tokens,
    pub graphql: Graphql,
    pub projections: Projections,
    pub live: Live,
    pub websocket: Websocket,
    pub care: Care,
    pub trail: Trail,
    pub research: Research,
    pub forum: Forum,
    pub privacy: Privacy,
    pub log: Log,
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address to listen on (`PORTAL_BIND`).
    pub bind: String,
    /// Largest accepted request body (`PORTAL_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Web origins whose browser pages may call the API (CORS), exactly as
    /// the browser sends them (`https://app.example.org`); none by default
    /// (`PORTAL_CORS_ORIGINS`, comma-separated).
    pub cors_origins: Vec<String>,
    /// Whether `GET /metrics` answers (`PORTAL_METRICS`, default true):
    /// close it where the port is reachable by anyone but the scraper.
    pub metrics: bool,
    /// Writes (mutations that store something) one person may make per
    /// minute, sustained (`PORTAL_WRITES_PER_MINUTE`, default 1,200; 0 turns
    /// the limit off).
    pub writes_per_minute: u32,
    /// How many writes one person may make at once before the per-minute
    /// rate applies (`PORTAL_WRITE_BURST`, default 200).
    pub write_burst: u32,
    /// Refused reads one reader may have per minute (as many at once)
    /// before every further refused read answers RATE_LIMITED, still
    /// recorded (`PORTAL_REFUSALS_PER_MINUTE`, default 60; 0 turns it off).
    pub refusals_per_minute: u32,
    /// Requests of one person answered at once; one more is RATE_LIMITED
    /// (`PORTAL_REQUESTS_IN_FLIGHT_PER_PERSON`, default 16).
    pub requests_in_flight_per_person: usize,
    /// Open connections from one client address; one more is answered 429
    /// and closed (`PORTAL_CONNECTIONS_PER_ADDRESS`, default 64).
    pub connections_per_address: usize,
    /// How long a client may take to send a request's headers
    /// (`PORTAL_HEADER_TIMEOUT_MS`, default 10 s).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request still running after this long is cancelled, its database
    /// connections returned, and answered TIMEOUT
    /// (`PORTAL_REQUEST_TIMEOUT_MS`, default 30 s).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            cors_origins: Vec::new(),
            metrics: true,
            writes_per_minute: 1_200,
            write_burst: 200,
            refusals_per_minute: 60,
            requests_in_flight_per_person: 16,
            connections_per_address: 64,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Where events and read models live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// `sqlite://...` (default, embedded) or `postgres://...` (`PORTAL_DATABASE_URL`).
    pub database_url: String,
    /// Folder for the embedded store and the generated keys (`PORTAL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Database connections per pool (`PORTAL_DB_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// Serve even when the store does not flush commits to disk (PostgreSQL
    /// with `fsync`, `synchronous_commit` or `full_page_writes` off; SQLite
    /// without a journal or with `synchronous` below FULL): an acknowledged
    /// write or trail record could then be lost in a crash
    /// (`PORTAL_ALLOW_UNSAFE_COMMITS`, default false: the service refuses to
    /// start).
    pub allow_unsafe_commits: bool,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            database_url: "sqlite://data/portal.db".into(),
            data_dir: PathBuf::from("data"),
            max_connections: 16,
            allow_unsafe_commits: false,
        }
    }
}

/// Bearer tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tokens {
    /// HS256 key for bearer tokens (`PORTAL_TOKEN_KEY`). When unset, a random key is
    /// created once in `<data_dir>/token.key` and reused.
    pub key: Option<Secret>,
    /// Lifetime of tokens minted by `portal token` (`PORTAL_TOKEN_TTL_SECONDS`, default 8 h).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How far apart clocks may be for a token's `nbf` and `iat`
    /// (`PORTAL_TOKEN_LEEWAY_SECONDS`, default 30 s; `exp` is always strict).
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Whether tokens signed with the local key (`portal token`) are taken
    /// (`PORTAL_LOCAL_TOKENS`, default true): for the embedded default and
    /// development; switch it off where organisations log in through their
    /// own identity providers.
    pub local: bool,
    /// Each organisation's OpenID provider (`[[tokens.issuers]]`, in the
    /// settings file): their access tokens are taken for that organisation.
    pub issuers: Vec<IssuerSettings>,
    /// Identity providers' keys are read again once this old
    /// (`PORTAL_OIDC_KEYS_MAX_AGE_SECONDS`, default 5 minutes).
    #[serde(with = "humantime_serde")]
    pub keys_max_age: Duration,
    /// A token naming a key id not yet read makes the keys be read again,
    /// at most this often per provider (`PORTAL_OIDC_KEYS_REFRESH_SECONDS`,
    /// default 10 s).
    #[serde(with = "humantime_serde")]
    pub keys_refresh_min: Duration,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            key: None,
            ttl: Duration::from_secs(8 * 3600),
            leeway: Duration::from_secs(30),
            local: true,
            issuers: Vec::new(),
            keys_max_age: Duration::from_secs(300),
            keys_refresh_min: Duration::from_secs(10),
        }
    }
}

/// One organisation's OpenID provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The organisation its tokens are of.
    pub organisation: String,
    /// Its issuer identifier, as its discovery document states it
    /// (`https://id.example.org/realms/clinic`).
    pub issuer: String,
    /// The audience its access tokens for this service carry.
    pub audience: String,
    /// The claim holding the person's id, a UUID (default `sub`).
    #[serde(default = "sub")]
    pub subject_claim: String,
    /// The claim holding the roles, a dotted path (`realm_access.roles`
    /// for Keycloak realm roles, `groups`): a text or a list of texts.
    pub role_claim: String,
    /// Which value of the role claim means which role (`service_user`,
    /// `provider`, `moderator`, `researcher`, `auditor`, `admin`).
    pub roles: std::collections::BTreeMap<String, crate::auth::Role>,
}

fn sub() -> String {
    "sub".to_string()
}

/// What one GraphQL request may ask.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Graphql {
    /// Deepest accepted query (`PORTAL_MAX_QUERY_DEPTH`).
    pub max_depth: usize,
    /// Highest accepted query complexity (`PORTAL_MAX_QUERY_COMPLEXITY`):
    /// every field costs 1, and a connection costs its page size (`first` or
    /// `last`) times what it selects.
    pub max_complexity: usize,
    /// Most fields and fragment spreads a query may select once every fragment is spread out
    /// (`PORTAL_MAX_QUERY_FIELDS`); checked before validation, so a document
    /// whose fragments multiply each other is refused without being expanded.
    pub max_fields: usize,
    /// Most requests in one batch (a JSON array posted to `/graphql`;
    /// `PORTAL_MAX_BATCH`, default 10).
    pub max_batch: usize,
    /// Whether the schema can be introspected (`PORTAL_INTROSPECTION`, default
    /// true: GraphiQL and code generators need it).
    pub introspection: bool,
    /// Most persisted queries (Apollo's automatic persisted queries) kept in
    /// memory, least recently used first out (`PORTAL_PERSISTED_QUERIES`,
    /// default 1,000; 0 turns them off).
    pub persisted_queries: usize,
}

impl Default for Graphql {
    fn default() -> Self {
        Graphql {
            max_depth: 10,
            max_complexity: 10_000,
            max_fields: 2_000,
            max_batch: 10,
            introspection: true,
            persisted_queries: 1_000,
        }
    }
}

/// The projections that build the read models.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Projections {
    /// Events per projection transaction (`PORTAL_PROJECTION_BATCH_SIZE`).
    pub batch_size: i64,
    /// How often projections look for events from other processes (`PORTAL_PROJECTION_POLL_MS`).
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// How long a mutation waits for the projections to show its events
    /// (`PORTAL_READ_YOUR_WRITES_TIMEOUT_MS`, at most 20 s: well under the
    /// 30 s a request may take).
    #[serde(with = "humantime_serde")]
    pub read_your_writes_timeout: Duration,
}

impl Default for Projections {
    fn default() -> Self {
        Projections {
            batch_size: 2_000,
            poll: Duration::from_millis(100),
            read_your_writes_timeout: Duration::from_secs(5),
        }
    }
}

/// The live feed behind subscriptions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Live {
    /// How often it looks for new events when nothing woke it
    /// (`PORTAL_LIVE_POLL_MS`; on PostgreSQL, NOTIFY wakes it at once).
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            poll: Duration::from_millis(250),
        }
    }
}

/// Subscriptions over WebSocket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Websocket {
    /// How long a new socket may take to send `connection_init`
    /// (`PORTAL_WS_INIT_TIMEOUT_MS`, default 10 s; then it is closed 4408).
    #[serde(with = "humantime_serde")]
    pub init_timeout: Duration,
    /// Most subscriptions one socket holds at once
    /// (`PORTAL_WS_MAX_SUBSCRIPTIONS`, default 50; one more closes it 4429).
    pub max_subscriptions_per_socket: usize,
    /// Most sockets one person holds open at once
    /// (`PORTAL_WS_MAX_SOCKETS_PER_PERSON`, default 10; one more is closed 4429).
    pub max_sockets_per_person: usize,
    /// How often the server pings an acknowledged socket; one silent for a
    /// whole interval after a ping is closed (`PORTAL_WS_KEEPALIVE_MS`,
    /// default 15 s).
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
}

impl Default for Websocket {
    fn default() -> Self {
        Websocket {
            init_timeout: Duration::from_secs(10),
            max_subscriptions_per_socket: 50,
            max_sockets_per_person: 10,
            keepalive: Duration::from_secs(15),
        }
    }
}

/// Care relationships.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Care {
    /// How long an invitation waits for an answer
    /// (`PORTAL_INVITATION_TTL_SECONDS`, default 14 days).
    #[serde(with = "humantime_serde")]
    pub invitation_ttl: Duration,
    /// How long a break-glass opening of a crisis plan lasts
    /// (`PORTAL_BREAK_GLASS_SECONDS`, default one hour).
    #[serde(with = "humantime_serde")]
    pub break_glass: Duration,
    /// Most break-glass openings in one care relationship in any 24 hours
    /// (`PORTAL_BREAK_GLASS_PER_DAY`, default 3).
    pub break_glass_per_day: u32,
    /// Most break-glass openings by one provider, in all their
    /// relationships, in any 24 hours (`PORTAL_BREAK_GLASS_PER_PROVIDER_PER_DAY`,
    /// default 10).
    pub break_glass_per_provider_per_day: u32,
}

impl Default for Care {
    fn default() -> Self {
        Care {
            invitation_ttl: Duration::from_secs(14 * 24 * 3600),
            break_glass: Duration::from_secs(3600),
            break_glass_per_day: 3,
            break_glass_per_provider_per_day: 10,
        }
    }
}

impl Care {
    /// The invitation window as the domain's commands take it.
    pub fn invitation(&self) -> chrono::Duration {
        chrono_duration(self.invitation_ttl)
    }

    /// The break-glass window as the domain's commands take it.
    pub fn break_glass_window(&self) -> chrono::Duration {
        chrono_duration(self.break_glass)
    }
}

/// A checked duration for the domain (`Settings::check` bounds every one far
/// below where the conversion could fail).
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The peer-support forum (`docs/forum.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Forum {
    /// The score of flags at which a post is hidden pending review: a peer's
    /// flag weighs 1, staff's 2, a moderator's 3 (`PORTAL_FORUM_HIDE_SCORE`,
    /// default 3).
    pub hide_score: u32,
    /// What moderators are shown beside every concern for someone's safety:
    /// the organisation's own guidance (`PORTAL_FORUM_CONCERN_GUIDANCE`).
    pub concern_guidance: String,
    /// After how long a concern no moderator has opened is raised again,
    /// and again after as long each time (`PORTAL_FORUM_CONCERN_RERAISE_SECONDS`,
    /// default 15 minutes).
    #[serde(with = "humantime_serde")]
    pub concern_reraise_after: Duration,
    /// A program run each time a concern is raised again, with the
    /// concern's JSON (no text, no name) on its standard input: how an
    /// organisation wires unopened concerns to its on-call routine
    /// (`PORTAL_FORUM_CONCERN_COMMAND`; none by default). See `docs/forum.md`.
    pub concern_command: Option<PathBuf>,
}

impl Default for Forum {
    fn default() -> Self {
        Forum {
            hide_score: 3,
            concern_guidance: "If you think someone is in immediate danger, call the emergency \
                number. Otherwise reach out to the person by message today, tell their care \
                team if they have agreed to that, and share the crisis line. Record what you did."
                .to_string(),
            concern_reraise_after: Duration::from_secs(15 * 60),
            concern_command: None,
        }
    }
}

impl Forum {
    /// The re-raise interval as the domain takes it.
    pub fn reraise_after(&self) -> chrono::Duration {
        chrono_duration(self.concern_reraise_after)
    }
}

/// The access trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trail {
    /// HMAC key chaining the access trail (`PORTAL_TRAIL_KEY`). When unset, a
    /// random key is created once in `<data_dir>/trail.key` and reused. Keep it
    /// apart from the database: whoever holds both can forge the trail.
    pub key: Option<Secret>,
    /// Secret from which the witness's Ed25519 signing key is derived
    /// (`PORTAL_WITNESS_KEY`, at least 32 characters). When unset, one is
    /// created once in `<data_dir>/witness.key`. Auditors need only the
    /// public key, which the witness folder and `GET /trail/witness` give.
    pub witness_key: Option<Secret>,
    /// Folder the signed checkpoints of the trail's chain heads are written
    /// to (`PORTAL_WITNESS_DIR`, default `<data_dir>/witness`). Put it on
    /// storage the database's administrators cannot rewrite.
    pub witness_dir: Option<PathBuf>,
    /// How often a checkpoint is signed when the trail has grown
    /// (`PORTAL_WITNESS_INTERVAL_SECONDS`, default 60); one is also signed at
    /// shutdown.
    #[serde(with = "humantime_serde")]
    pub witness_interval: Duration,
    /// Serve even though records the witness signed are gone from the store
    /// (`PORTAL_ACCEPT_WITNESS_LOSS`, default false). The acceptance is
    /// itself signed into the next checkpoint, and `portal audit verify
    /// --witness` keeps reporting the loss.
    pub accept_witness_loss: bool,
}

impl Default for Trail {
    fn default() -> Self {
        Trail {
            key: None,
            witness_key: None,
            witness_dir: None,
            witness_interval: Duration::from_secs(60),
            accept_witness_loss: false,
        }
    }
}

impl Trail {
    /// The witness folder: the configured one, or `<data_dir>/witness`.
    pub fn witness_dir(&self, data_dir: &Path) -> PathBuf {
        self.witness_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("witness"))
    }
}

/// Research measures and exports.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Research {
    /// Key from which each study's pseudonym secret is derived
    /// (`PORTAL_RESEARCH_KEY`). When unset, a random key is created once in
    /// `<data_dir>/research.key` and reused. The same key gives the same
    /// pseudonyms; keep it apart from the exports.
    pub key: Option<Secret>,
    /// A visit ends after this long without a request
    /// (`PORTAL_VISIT_GAP_MINUTES`, default 30 minutes).
    #[serde(with = "humantime_serde")]
    pub visit_gap: Duration,
    /// A message written this long after the previous one in its thread starts
    /// a new exchange, for who-initiates measures (`PORTAL_EXCHANGE_GAP_MINUTES`,
    /// default one day).
    #[serde(with = "humantime_serde")]
    pub exchange_gap: Duration,
}

impl Default for Research {
    fn default() -> Self {
        Research {
            key: None,
            visit_gap: Duration::from_secs(30 * 60),
            exchange_gap: Duration::from_secs(24 * 3600),
        }
    }
}

impl Research {
    /// The visit gap as the research fold takes it.
    pub fn visit_gap_chrono(&self) -> chrono::Duration {
        chrono_duration(self.visit_gap)
    }

    /// The exchange gap as the research fold takes it.
    pub fn exchange_gap_chrono(&self) -> chrono::Duration {
        chrono_duration(self.exchange_gap)
    }
}

/// Personal data at rest, erasure and a person's export (`docs/privacy.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Privacy {
    /// Secret the master key is derived from (`PORTAL_MASTER_KEY`, at least
    /// 32 characters). Every person's key is stored wrapped under it. When
    /// unset, a random one is created once in `<data_dir>/master.key`. Keep
    /// it apart from the database and its backups: with both, sealed data
    /// of people not yet erased can be read.
    pub master_key: Option<Secret>,
    /// How long a service user's request to be erased waits, during which
    /// they may cancel it (`PORTAL_ERASURE_WAIT_DAYS`, default 30 days).
    #[serde(with = "humantime_serde")]
    pub erasure_wait: Duration,
    /// The erasure ledger: one signed line per erasure, replayed at every
    /// start so that a restored backup cannot bring an erased person back
    /// (`PORTAL_ERASURE_LEDGER`, default `<data_dir>/erasures.ledger`). Keep
    /// it with the key files, not with the database's backups.
    pub erasure_ledger: Option<PathBuf>,
    /// How often due erasures are looked for and carried out
    /// (`PORTAL_ERASURE_CHECK_SECONDS`, default 60).
    #[serde(with = "humantime_serde")]
    pub erasure_check: Duration,
    /// How long a person's finished data export is kept for download
    /// (`PORTAL_EXPORT_TTL_MINUTES`, default 24 hours); then it is deleted.
    #[serde(with = "humantime_serde")]
    pub export_ttl: Duration,
    /// How long a download link to an export works once given
    /// (`PORTAL_EXPORT_LINK_MINUTES`, default 15 minutes); asking for the
    /// export again gives a fresh one, until `export_ttl`.
    #[serde(with = "humantime_serde")]
    pub export_link_ttl: Duration,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            master_key: None,
            erasure_wait: Duration::from_secs(30 * 24 * 3600),
            erasure_ledger: None,
            erasure_check: Duration::from_secs(60),
            export_ttl: Duration::from_secs(24 * 3600),
            export_link_ttl: Duration::from_secs(15 * 60),
        }
    }
}

impl Privacy {
    /// The waiting period as the domain takes it.
    pub fn erasure_wait_chrono(&self) -> chrono::Duration {
        chrono_duration(self.erasure_wait)
    }

    /// The erasure ledger's file: the configured one, or
    /// `<data_dir>/erasures.ledger`.
    pub fn ledger(&self, data_dir: &Path) -> PathBuf {
        self.erasure_ledger
            .clone()
            .unwrap_or_else(|| data_dir.join("erasures.ledger"))
    }
}

/// Logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `text` or `json` (`PORTAL_LOG_FORMAT`).
    pub format: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: "text".into(),
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {0}: {1}")]
    File(PathBuf, std::io::Error),
    #[error("settings file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("environment variable {0}={1:?} is not valid")]
    Env(&'static str, String),
    #[error("token key: {0}")]
    Key(String),
    #[error("setting {0}")]
    OutOfRange(String),
}

/// Whether two folders are the same, as far as the file system says (or,
/// for folders not made yet, by name).
fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.components().eq(b.components()),
    }
}

impl Settings {
    /// Loads defaults, then `file` (or `PORTAL_CONFIG`, or `./portal.toml` when it
    /// exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PORTAL_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("portal.toml")).filter(|p| p.exists()));
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| SettingsError::File(path.clone(), e))?;
                toml::from_str(&text).map_err(|e| SettingsError::Parse(path, e))?
            }
            None => Settings::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses values the service cannot work with.
    pub fn check(&self) -> Result<(), SettingsError> {
        const SECOND: Duration = Duration::from_secs(1);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let durations = [
            (
                "tokens.leeway (PORTAL_TOKEN_LEEWAY_SECONDS)",
                self.tokens.leeway,
                Duration::ZERO,
                Duration::from_secs(300),
            ),
            (
                "server.header_timeout (PORTAL_HEADER_TIMEOUT_MS)",
                self.server.header_timeout,
                Duration::from_millis(100),
                Duration::from_secs(300),
            ),
            (
                "server.request_timeout (PORTAL_REQUEST_TIMEOUT_MS)",
                self.server.request_timeout,
                Duration::from_millis(100),
                Duration::from_secs(600),
            ),
            (
                "trail.witness_interval (PORTAL_WITNESS_INTERVAL_SECONDS)",
                self.trail.witness_interval,
                SECOND,
                DAY,
            ),
            (
                "privacy.erasure_wait (PORTAL_ERASURE_WAIT_DAYS)",
                self.privacy.erasure_wait,
                Duration::ZERO,
                DAY * 365,
            ),
            (
                "privacy.erasure_check (PORTAL_ERASURE_CHECK_SECONDS)",
                self.privacy.erasure_check,
                SECOND,
                DAY,
            ),
            (
                "privacy.export_ttl (PORTAL_EXPORT_TTL_MINUTES)",
                self.privacy.export_ttl,
                SECOND * 60,
                DAY * 30,
            ),
            (
                "privacy.export_link_ttl (PORTAL_EXPORT_LINK_MINUTES)",
                self.privacy.export_link_ttl,
                SECOND * 60,
                DAY,
            ),
            (
                "tokens.ttl (PORTAL_TOKEN_TTL_SECONDS)",
                self.tokens.ttl,
                SECOND,
                DAY * 365,
            ),
            (
                "care.invitation_ttl (PORTAL_INVITATION_TTL_SECONDS)",
                self.care.invitation_ttl,
                SECOND,
                DAY * 365,
            ),
            (
                "care.break_glass (PORTAL_BREAK_GLASS_SECONDS)",
                self.care.break_glass,
                SECOND,
                DAY,
            ),
            (
                "research.exchange_gap (PORTAL_EXCHANGE_GAP_MINUTES)",
                self.research.exchange_gap,
                SECOND * 60,
                DAY * 30,
            ),
            (
                "research.visit_gap (PORTAL_VISIT_GAP_MINUTES)",
                self.research.visit_gap,
                SECOND * 60,
                DAY,
            ),
            (
                "projections.poll (PORTAL_PROJECTION_POLL_MS)",
                self.projections.poll,
                Duration::from_millis(1),
                SECOND * 3600,
            ),
            (
                "projections.read_your_writes_timeout (PORTAL_READ_YOUR_WRITES_TIMEOUT_MS)",
                self.projections.read_your_writes_timeout,
                Duration::ZERO,
                SECOND * 20,
            ),
            (
                "websocket.init_timeout (PORTAL_WS_INIT_TIMEOUT_MS)",
                self.websocket.init_timeout,
                Duration::from_millis(100),
                SECOND * 60,
            ),
            (
                "websocket.keepalive (PORTAL_WS_KEEPALIVE_MS)",
                self.websocket.keepalive,
                Duration::from_millis(100),
                SECOND * 600,
            ),
            (
                "forum.concern_reraise_after (PORTAL_FORUM_CONCERN_RERAISE_SECONDS)",
                self.forum.concern_reraise_after,
                SECOND,
                DAY,
            ),
            (
                "tokens.keys_max_age (PORTAL_OIDC_KEYS_MAX_AGE_SECONDS)",
                self.tokens.keys_max_age,
                SECOND,
                DAY,
            ),
            (
                "tokens.keys_refresh_min (PORTAL_OIDC_KEYS_REFRESH_SECONDS)",
                self.tokens.keys_refresh_min,
                SECOND,
                SECOND * 3600,
            ),
            (
                "live.poll (PORTAL_LIVE_POLL_MS)",
                self.live.poll,
                Duration::from_millis(1),
                SECOND * 3600,
            ),
        ];
        for (name, value, min, max) in durations {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::OutOfRange(format!(
                    "{name} must be between {} and {}, got {}",
                    humantime_serde::re::humantime::format_duration(min),
                    humantime_serde::re::humantime::format_duration(max),
                    humantime_serde::re::humantime::format_duration(value)
                )));
            }
        }
        let mut issuers = std::collections::BTreeSet::new();
        let mut organisations = std::collections::BTreeSet::new();
        if self.tokens.keys_refresh_min > self.tokens.keys_max_age {
            return Err(SettingsError::OutOfRange(
                "tokens.keys_refresh_min must not be longer than tokens.keys_max_age".into(),
            ));
        }
        for issuer in &self.tokens.issuers {
            let name = &issuer.issuer;
            let bad = |what: &str| {
                Err(SettingsError::OutOfRange(format!(
                    "tokens.issuers ({name}): {what}"
                )))
            };
            if !crate::auth::safe_url(name) {
                return bad("the issuer must be https (http only on loopback)");
            }
            if !crate::auth::valid_organisation(&issuer.organisation) {
                return bad("the organisation is not a valid name");
            }
            if issuer.audience.is_empty() || issuer.role_claim.is_empty() || issuer.roles.is_empty()
            {
                return bad("audience, role_claim and roles are needed");
            }
            if !issuers.insert(name.as_str()) {
                return bad("configured twice");
            }
            // Two providers for one organisation would share its person ids:
            // each could speak for the other's people.
            if !organisations.insert(issuer.organisation.as_str()) {
                return bad("its organisation has another issuer");
            }
        }
        let counts = [
            (
                "server.max_body_bytes (PORTAL_MAX_BODY_BYTES)",
                self.server.max_body_bytes as u64,
                1_024,
                64 * 1024 * 1024,
            ),
            (
                "graphql.max_depth (PORTAL_MAX_QUERY_DEPTH)",
                self.graphql.max_depth as u64,
                1,
                100,
            ),
            (
                "graphql.max_complexity (PORTAL_MAX_QUERY_COMPLEXITY)",
                self.graphql.max_complexity as u64,
                1,
                10_000_000,
            ),
            (
                "projections.batch_size (PORTAL_PROJECTION_BATCH_SIZE)",
                u64::try_from(self.projections.batch_size).unwrap_or(0),
                1,
                100_000,
            ),
            (
                "graphql.max_fields (PORTAL_MAX_QUERY_FIELDS)",
                self.graphql.max_fields as u64,
                10,
                100_000,
            ),
            (
                "websocket.max_subscriptions_per_socket (PORTAL_WS_MAX_SUBSCRIPTIONS)",
                self.websocket.max_subscriptions_per_socket as u64,
                1,
                1_000,
            ),
            (
                "websocket.max_sockets_per_person (PORTAL_WS_MAX_SOCKETS_PER_PERSON)",
                self.websocket.max_sockets_per_person as u64,
                1,
                1_000,
            ),
            (
                "server.writes_per_minute (PORTAL_WRITES_PER_MINUTE)",
                u64::from(self.server.writes_per_minute),
                0,
                1_000_000,
            ),
            (
                "server.write_burst (PORTAL_WRITE_BURST)",
                u64::from(self.server.write_burst),
                1,
                100_000,
            ),
            (
                "server.requests_in_flight_per_person (PORTAL_REQUESTS_IN_FLIGHT_PER_PERSON)",
                self.server.requests_in_flight_per_person as u64,
                1,
                10_000,
            ),
            (
                "server.connections_per_address (PORTAL_CONNECTIONS_PER_ADDRESS)",
                self.server.connections_per_address as u64,
                1,
                100_000,
            ),
            (
                "care.break_glass_per_day (PORTAL_BREAK_GLASS_PER_DAY)",
                u64::from(self.care.break_glass_per_day),
                1,
                100,
            ),
            (
                "care.break_glass_per_provider_per_day (PORTAL_BREAK_GLASS_PER_PROVIDER_PER_DAY)",
                u64::from(self.care.break_glass_per_provider_per_day),
                1,
                1_000,
            ),
            (
                "forum.hide_score (PORTAL_FORUM_HIDE_SCORE)",
                u64::from(self.forum.hide_score),
                1,
                100,
            ),
            (
                "graphql.max_batch (PORTAL_MAX_BATCH)",
                self.graphql.max_batch as u64,
                1,
                100,
            ),
            (
                "graphql.persisted_queries (PORTAL_PERSISTED_QUERIES)",
                self.graphql.persisted_queries as u64,
                0,
                100_000,
            ),
            (
                "store.max_connections (PORTAL_DB_MAX_CONNECTIONS)",
                u64::from(self.store.max_connections),
                1,
                1_000,
            ),
        ];
        for origin in &self.server.cors_origins {
            // An origin is a scheme and a host (and port): what a browser
            // sends, without a path or a trailing slash.
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if origin.parse::<axum::http::HeaderValue>().is_err()
                || host.is_none_or(|h| h.is_empty() || h.contains('/'))
            {
                return Err(SettingsError::OutOfRange(format!(
                    "server.cors_origins (PORTAL_CORS_ORIGINS): `{origin}` is not an origin like https://app.example.org"
                )));
            }
        }
        for (name, value, min, max) in counts {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::OutOfRange(format!(
                    "{name} must be between {min} and {max}, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// Overrides fields from `PORTAL_*` variables, read through `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
        macro_rules! set {
            ($($field:ident).+, $name:literal) => {
                if let Some(value) = env($name) {
                    self.$($field).+ = value
                        .parse()
                        .map_err(|_| SettingsError::Env($name, value))?;
                }
            };
        }
        // A whole number of `unit`s.
        macro_rules! set_duration {
            ($($field:ident).+, $name:literal, $unit:expr) => {
                if let Some(value) = env($name) {
                    let n: u32 = value
                        .parse()
                        .map_err(|_| SettingsError::Env($name, value.clone()))?;
                    self.$($field).+ = $unit
                        .checked_mul(n)
                        .ok_or(SettingsError::Env($name, value))?;
                }
            };
        }
        const MS: Duration = Duration::from_millis(1);
        const S: Duration = Duration::from_secs(1);
        const MIN: Duration = Duration::from_secs(60);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        set!(server.bind, "PORTAL_BIND");
        set!(server.max_body_bytes, "PORTAL_MAX_BODY_BYTES");
        set!(server.metrics, "PORTAL_METRICS");
        set!(tokens.local, "PORTAL_LOCAL_TOKENS");
        set_duration!(tokens.keys_max_age, "PORTAL_OIDC_KEYS_MAX_AGE_SECONDS", S);
        set_duration!(
            tokens.keys_refresh_min,
            "PORTAL_OIDC_KEYS_REFRESH_SECONDS",
            S
        );
        set!(server.writes_per_minute, "PORTAL_WRITES_PER_MINUTE");
        set!(server.write_burst, "PORTAL_WRITE_BURST");
        set!(server.refusals_per_minute, "PORTAL_REFUSALS_PER_MINUTE");
        set!(
            server.requests_in_flight_per_person,
            "PORTAL_REQUESTS_IN_FLIGHT_PER_PERSON"
        );
        set!(
            server.connections_per_address,
            "PORTAL_CONNECTIONS_PER_ADDRESS"
        );
        set_duration!(server.header_timeout, "PORTAL_HEADER_TIMEOUT_MS", MS);
        set_duration!(server.request_timeout, "PORTAL_REQUEST_TIMEOUT_MS", MS);
        set!(store.allow_unsafe_commits, "PORTAL_ALLOW_UNSAFE_COMMITS");
        set!(store.database_url, "PORTAL_DATABASE_URL");
        set!(store.data_dir, "PORTAL_DATA_DIR");
        set!(store.max_connections, "PORTAL_DB_MAX_CONNECTIONS");
        set_duration!(tokens.ttl, "PORTAL_TOKEN_TTL_SECONDS", S);
        set_duration!(tokens.leeway, "PORTAL_TOKEN_LEEWAY_SECONDS", S);
        set!(graphql.max_depth, "PORTAL_MAX_QUERY_DEPTH");
        set!(graphql.max_complexity, "PORTAL_MAX_QUERY_COMPLEXITY");
        set!(graphql.max_fields, "PORTAL_MAX_QUERY_FIELDS");
        set!(graphql.introspection, "PORTAL_INTROSPECTION");
        set!(graphql.max_batch, "PORTAL_MAX_BATCH");
        set!(graphql.persisted_queries, "PORTAL_PERSISTED_QUERIES");
        if let Some(origins) = env("PORTAL_CORS_ORIGINS") {
            self.server.cors_origins = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect();
        }
        set_duration!(
            projections.read_your_writes_timeout,
            "PORTAL_READ_YOUR_WRITES_TIMEOUT_MS",
            MS
        );
        set!(projections.batch_size, "PORTAL_PROJECTION_BATCH_SIZE");
        set_duration!(projections.poll, "PORTAL_PROJECTION_POLL_MS", MS);
        set!(log.format, "PORTAL_LOG_FORMAT");
        set_duration!(care.invitation_ttl, "PORTAL_INVITATION_TTL_SECONDS", S);
        set_duration!(care.break_glass, "PORTAL_BREAK_GLASS_SECONDS", S);
        set!(care.break_glass_per_day, "PORTAL_BREAK_GLASS_PER_DAY");
        set!(
            care.break_glass_per_provider_per_day,
            "PORTAL_BREAK_GLASS_PER_PROVIDER_PER_DAY"
        );
        set_duration!(trail.witness_interval, "PORTAL_WITNESS_INTERVAL_SECONDS", S);
        set!(trail.accept_witness_loss, "PORTAL_ACCEPT_WITNESS_LOSS");
        if let Some(dir) = env("PORTAL_WITNESS_DIR") {
            self.trail.witness_dir = Some(PathBuf::from(dir));
        }
        if let Some(key) = env("PORTAL_WITNESS_KEY") {
            self.trail.witness_key = Some(Secret::new(key));
        }
        set_duration!(research.exchange_gap, "PORTAL_EXCHANGE_GAP_MINUTES", MIN);
        set_duration!(live.poll, "PORTAL_LIVE_POLL_MS", MS);
        set!(forum.hide_score, "PORTAL_FORUM_HIDE_SCORE");
        set_duration!(
            forum.concern_reraise_after,
            "PORTAL_FORUM_CONCERN_RERAISE_SECONDS",
            S
        );
        if let Some(text) = env("PORTAL_FORUM_CONCERN_GUIDANCE") {
            self.forum.concern_guidance = text;
        }
        if let Some(path) = env("PORTAL_FORUM_CONCERN_COMMAND") {
            self.forum.concern_command = Some(PathBuf::from(path));
        }
        set_duration!(websocket.init_timeout, "PORTAL_WS_INIT_TIMEOUT_MS", MS);
        set_duration!(websocket.keepalive, "PORTAL_WS_KEEPALIVE_MS", MS);
        set!(
            websocket.max_subscriptions_per_socket,
            "PORTAL_WS_MAX_SUBSCRIPTIONS"
        );
        set!(
            websocket.max_sockets_per_person,
            "PORTAL_WS_MAX_SOCKETS_PER_PERSON"
        );
        set_duration!(research.visit_gap, "PORTAL_VISIT_GAP_MINUTES", MIN);
        if let Some(key) = env("PORTAL_TOKEN_KEY") {
            self.tokens.key = Some(Secret::new(key));
        }
        if let Some(key) = env("PORTAL_TRAIL_KEY") {
            self.trail.key = Some(Secret::new(key));
        }
        if let Some(key) = env("PORTAL_RESEARCH_KEY") {
            self.research.key = Some(Secret::new(key));
        }
        if let Some(key) = env("PORTAL_MASTER_KEY") {
            self.privacy.master_key = Some(Secret::new(key));
        }
        set_duration!(privacy.erasure_wait, "PORTAL_ERASURE_WAIT_DAYS", DAY);
        set_duration!(privacy.erasure_check, "PORTAL_ERASURE_CHECK_SECONDS", S);
        set_duration!(privacy.export_ttl, "PORTAL_EXPORT_TTL_MINUTES", MIN);
        set_duration!(privacy.export_link_ttl, "PORTAL_EXPORT_LINK_MINUTES", MIN);
        if let Some(path) = env("PORTAL_ERASURE_LEDGER") {
            self.privacy.erasure_ledger = Some(PathBuf::from(path));
        }
        Ok(())
    }

    /// The token key: the configured one, or the one kept in the data folder
    /// (created with owner-only permissions on first use).
    pub fn resolve_token_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.tokens.key.as_ref(), "token.key")
    }

    /// The access-trail key, found the same way as the token key.
    pub fn resolve_trail_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.trail.key.as_ref(), "trail.key")
    }

    /// The master key's secret, found the same way as the token key.
    pub fn resolve_master_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.privacy.master_key.as_ref(), "master.key")
    }

    /// True when a master key is configured or kept in the data folder.
    pub fn has_master_key(&self) -> bool {
        self.privacy.master_key.is_some() || self.store.data_dir.join("master.key").exists()
    }

    /// A warning for the operator when the master key is the file in the
    /// data folder: a copy of that folder with the database reads every
    /// sealed text of people not yet erased.
    pub fn master_key_warning(&self) -> Option<String> {
        if self.privacy.master_key.is_some() {
            return None;
        }
        Some(format!(
            "the master key is {}: whoever copies that folder together with the database or a \
             backup of it can read personal data; in production set PORTAL_MASTER_KEY from a \
             secret store (docs/privacy.md)",
            self.store.data_dir.join("master.key").display()
        ))
    }

    /// The witness's secret, found the same way as the token key.
    pub fn resolve_witness_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.trail.witness_key.as_ref(), "witness.key")
    }

    /// The research key, found the same way as the token key; true in the
    /// second place when it was just made.
    pub fn resolve_research_key(&self) -> Result<(Secret, bool), SettingsError> {
        let made =
            self.research.key.is_none() && !self.store.data_dir.join("research.key").exists();
        Ok((
            self.resolve_key(self.research.key.as_ref(), "research.key")?,
            made,
        ))
    }

    /// True when a research key is configured or kept in the data folder.
    pub fn has_research_key(&self) -> bool {
        self.research.key.is_some() || self.store.data_dir.join("research.key").exists()
    }

    /// A warning for the operator when the access trail's key is the file
    /// in the data folder rather than a configured secret: whoever can write
    /// the database and read that folder can forge trail records, above all
    /// when the database file sits in the same folder (the embedded default).
    pub fn trail_key_warning(&self) -> Option<String> {
        if self.trail.key.is_some() {
            return None;
        }
        let key = self.store.data_dir.join("trail.key");
        let beside = self
            .store
            .database_url
            .strip_prefix("sqlite://")
            .map(|file| std::path::Path::new(file.split('?').next().unwrap_or(file)))
            .and_then(|file| file.parent())
            .is_some_and(|folder| {
                let folder = if folder.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    folder
                };
                same_folder(folder, &self.store.data_dir)
            });
        Some(format!(
            "the access trail's key is {}{}: anyone who can write the database and read it can \
             forge trail records; in production set PORTAL_TRAIL_KEY from a secret store \
             (docs/access-trail.md)",
            key.display(),
            if beside {
                ", beside the database file"
            } else {
                ""
            }
        ))
    }

    /// True when a trail key is configured or kept in the data folder; a new
    /// one would be made otherwise.
    pub fn has_trail_key(&self) -> bool {
        self.trail.key.is_some() || self.store.data_dir.join("trail.key").exists()
    }

    fn resolve_key(
        &self,
        configured: Option<&Secret>,
        file: &str,
    ) -> Result<Secret, SettingsError> {
        if let Some(key) = configured {
            if key.expose().len() < 32 {
                return Err(SettingsError::Key("must be at least 32 characters".into()));
            }
            return Ok(key.clone());
        }
        let path = self.store.data_dir.join(file);
        if let Ok(key) = std::fs::read_to_string(&path) {
            if key.trim().len() < 32 {
                return Err(SettingsError::Key(format!(
                    "{} must hold at least 32 characters",
                    path.display()
                )));
            }
            return Ok(Secret::new(key.trim()));
        }
        std::fs::create_dir_all(&self.store.data_dir)
            .map_err(|e| SettingsError::Key(e.to_string()))?;
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        write_private(&path, key.as_bytes())
            .map_err(|e| SettingsError::Key(format!("{}: {e}", path.display())))?;
        Ok(Secret::new(key))
    }
}

/// Writes a new file only its owner may read (a key, a data export), and
/// flushes it to disk; an existing file is never overwritten.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_trail_key_beside_the_database_is_warned_of() {
        let mut settings = Settings::default();
        // The embedded default: sqlite://data/portal.db and data/trail.key.
        let warning = settings.trail_key_warning().expect("a warning");
        assert!(warning.contains("beside the database file"), "{warning}");
        settings.store.database_url = "postgres://db.example/portal".into();
        let warning = settings.trail_key_warning().expect("a warning");
        assert!(!warning.contains("beside"), "{warning}");
        settings.store.database_url = "sqlite:///var/lib/portal/portal.db".into();
        assert!(!settings
            .trail_key_warning()
            .expect("a warning")
            .contains("beside"));
        settings.trail.key = Some(Secret::new("k".repeat(32)));
        assert_eq!(settings.trail_key_warning(), None);
    }
    use super::*;

    #[test]
    fn environment_overrides_file_and_defaults() {
        let mut settings: Settings = toml::from_str(
            "[server]\nbind = \"0.0.0.0:9000\"\nmax_body_bytes = 10\n\
             [care]\ninvitation_ttl = \"7days\"\nbreak_glass = \"30m\"\n",
        )
        .expect("valid toml");
        assert_eq!(settings.graphql.max_depth, Graphql::default().max_depth);
        assert_eq!(
            settings.care.invitation_ttl,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(settings.care.break_glass, Duration::from_secs(30 * 60));
        settings
            .apply_env(|name| match name {
                "PORTAL_MAX_BODY_BYTES" => Some("2048".into()),
                "PORTAL_BREAK_GLASS_SECONDS" => Some("90".into()),
                "PORTAL_LIVE_POLL_MS" => Some("20".into()),
                "PORTAL_VISIT_GAP_MINUTES" => Some("45".into()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(settings.server.bind, "0.0.0.0:9000");
        assert_eq!(settings.server.max_body_bytes, 2048);
        assert_eq!(settings.care.break_glass, Duration::from_secs(90));
        assert_eq!(settings.live.poll, Duration::from_millis(20));
        assert_eq!(settings.research.visit_gap, Duration::from_secs(45 * 60));
        assert!(settings.check().is_ok());
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        let mut settings = Settings::default();
        let err = settings
            .apply_env(|name| (name == "PORTAL_MAX_BODY_BYTES").then(|| "lots".to_string()))
            .expect_err("not a number");
        assert!(err.to_string().contains("PORTAL_MAX_BODY_BYTES"));
        let err = settings
            .apply_env(|name| (name == "PORTAL_BREAK_GLASS_SECONDS").then(|| "1h".to_string()))
            .expect_err("seconds are a number");
        assert!(err.to_string().contains("PORTAL_BREAK_GLASS_SECONDS"));
        assert!(toml::from_str::<Settings>("bnid = \"x\"").is_err());
        assert!(toml::from_str::<Settings>("[server]\nbnid = \"x\"").is_err());
        assert!(toml::from_str::<Settings>("[care]\nbreak_glass = \"soon\"").is_err());
        // The flat keys of earlier releases are refused, not ignored.
        assert!(toml::from_str::<Settings>("break_glass_seconds = 60").is_err());
    }

    #[test]
    fn limits_and_origins_out_of_range_are_refused() {
        for (name, value) in [
            ("PORTAL_MAX_QUERY_DEPTH", "0"),
            ("PORTAL_MAX_QUERY_COMPLEXITY", "0"),
            ("PORTAL_MAX_BODY_BYTES", "10"),
            ("PORTAL_PROJECTION_BATCH_SIZE", "-5"),
            ("PORTAL_CORS_ORIGINS", "https://app.example.org/"),
            ("PORTAL_CORS_ORIGINS", "app.example.org"),
            ("PORTAL_CORS_ORIGINS", "https://"),
        ] {
            let mut settings = Settings::default();
            settings
                .apply_env(|n| (n == name).then(|| value.to_string()))
                .expect("parses");
            let error = settings.check().expect_err(value);
            assert!(error.to_string().contains(name), "{error}");
        }
        let mut settings = Settings::default();
        settings
            .apply_env(|n| {
                (n == "PORTAL_CORS_ORIGINS")
                    .then(|| "https://app.example.org, http://localhost:5173".to_string())
            })
            .expect("parses");
        settings.check().expect("two good origins");
        assert_eq!(settings.server.cors_origins.len(), 2);
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        let mut settings = Settings::default();
        assert!(settings.check().is_ok());
        settings.care.break_glass = Duration::ZERO;
        let error = settings.check().expect_err("zero seconds");
        assert!(error.to_string().contains("care.break_glass"), "{error}");
        settings.care.break_glass = Duration::from_secs(3600);
        settings.care.invitation_ttl = Duration::MAX;
        assert!(settings.check().is_err());
        settings.care.invitation_ttl = Duration::from_secs(3600);
        settings
            .apply_env(|name| {
                (name == "PORTAL_INVITATION_TTL_SECONDS").then(|| u64::MAX.to_string())
            })
            .expect_err("too many seconds to hold");
    }

    #[test]
    fn the_readme_examples_are_valid_settings_files() {
        let readme = include_str!("../../README.md");
        let mut examples = 0;
        let mut rest = readme;
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + 8..];
            let end = body.find("```").expect("its end");
            let settings: Settings = toml::from_str(&body[..end]).expect("valid settings");
            settings.check().expect("in range");
            if body[..end].contains("break_glass") {
                assert_eq!(settings.care.break_glass, Duration::from_secs(30 * 60));
            }
            examples += 1;
            rest = &body[end..];
        }
        assert!(
            examples >= 2,
            "the settings example and the identity provider's"
        );
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings {
            tokens: Tokens {
                key: Some(Secret::new("very-secret-value-that-is-long-enough")),
                ..Tokens::default()
            },
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("very-secret"));
    }
}
