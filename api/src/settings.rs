//! Typed settings: defaults, then an optional TOML file, then `PORTAL_*`
//! environment variables.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret that never prints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the service can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`PORTAL_BIND`).
    pub bind: String,
    /// `sqlite://...` (default, embedded) or `postgres://...` (`PORTAL_DATABASE_URL`).
    pub database_url: String,
    /// Folder for the embedded store and the generated token key (`PORTAL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// HS256 key for bearer tokens (`PORTAL_TOKEN_KEY`). When unset, a random key is
    /// created once in `<data_dir>/token.key` and reused.
    pub token_key: Option<Secret>,
    /// Lifetime of tokens minted by `portal token` (`PORTAL_TOKEN_TTL_SECONDS`).
    pub token_ttl_seconds: u64,
    /// How far apart clocks may be for a token's `nbf` and `iat`
    /// (`PORTAL_TOKEN_LEEWAY_SECONDS`, default 30; `exp` is always strict).
    pub token_leeway_seconds: u64,
    /// Largest accepted request body (`PORTAL_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Deepest accepted GraphQL query (`PORTAL_MAX_QUERY_DEPTH`).
    pub max_query_depth: usize,
    /// Highest accepted GraphQL query complexity (`PORTAL_MAX_QUERY_COMPLEXITY`):
    /// every field costs 1, and a field that returns up to `limit` rows costs
    /// `limit` times what it selects.
    pub max_query_complexity: usize,
    /// Most fields and fragment spreads a query may select once every fragment is spread out
    /// (`PORTAL_MAX_QUERY_FIELDS`); checked before validation, so a document
    /// whose fragments multiply each other is refused without being expanded.
    pub max_query_fields: usize,
    /// Whether the schema can be introspected (`PORTAL_INTROSPECTION`, default
    /// true: GraphiQL and code generators need it).
    pub introspection: bool,
    /// How long a mutation waits for the projections to show its events
    /// (`PORTAL_READ_YOUR_WRITES_TIMEOUT_MS`).
    pub read_your_writes_timeout_ms: u64,
    /// Database connections per pool (`PORTAL_DB_MAX_CONNECTIONS`).
    pub db_max_connections: u32,
    /// Events per projection transaction (`PORTAL_PROJECTION_BATCH_SIZE`).
    pub projection_batch_size: i64,
    /// How often projections look for events from other processes (`PORTAL_PROJECTION_POLL_MS`).
    pub projection_poll_ms: u64,
    /// `text` or `json` logs (`PORTAL_LOG_FORMAT`).
    pub log_format: String,
    /// How long a care-relationship invitation waits for an answer
    /// (`PORTAL_INVITATION_TTL_SECONDS`, default 14 days).
    pub invitation_ttl_seconds: u64,
    /// How long a break-glass opening of a crisis plan lasts
    /// (`PORTAL_BREAK_GLASS_SECONDS`, default one hour).
    pub break_glass_seconds: u64,
    /// A message written this long after the previous one in its thread starts
    /// a new exchange, for who-initiates measures (`PORTAL_EXCHANGE_GAP_MINUTES`,
    /// default one day).
    pub exchange_gap_minutes: u64,
    /// How often the live feed looks for new events when nothing woke it
    /// (`PORTAL_LIVE_POLL_MS`; on PostgreSQL, NOTIFY wakes it at once).
    pub live_poll_ms: u64,
    /// HMAC key chaining the access trail (`PORTAL_TRAIL_KEY`). When unset, a
    /// random key is created once in `<data_dir>/trail.key` and reused. Keep it
    /// apart from the database: whoever holds both can forge the trail.
    pub trail_key: Option<Secret>,
    /// Key from which each study's pseudonym secret is derived
    /// (`PORTAL_RESEARCH_KEY`). When unset, a random key is created once in
    /// `<data_dir>/research.key` and reused. The same key gives the same
    /// pseudonyms; keep it apart from the exports.
    pub research_key: Option<Secret>,
    /// A visit ends after this long without a request, for research measures
    /// (`PORTAL_VISIT_GAP_MINUTES`, default 30).
    pub visit_gap_minutes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/portal.db".into(),
            data_dir: PathBuf::from("data"),
            token_key: None,
            token_ttl_seconds: 8 * 3600,
            token_leeway_seconds: 30,
            max_body_bytes: 64 * 1024,
            max_query_depth: 10,
            max_query_complexity: 10_000,
            max_query_fields: 2_000,
            introspection: true,
            read_your_writes_timeout_ms: 5_000,
            db_max_connections: 16,
            projection_batch_size: 2_000,
            projection_poll_ms: 100,
            log_format: "text".into(),
            invitation_ttl_seconds: 14 * 24 * 3600,
            break_glass_seconds: 3600,
            exchange_gap_minutes: 24 * 60,
            live_poll_ms: 250,
            trail_key: None,
            research_key: None,
            visit_gap_minutes: 30,
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
        const DAY: u64 = 24 * 3600;
        let ranges = [
            (
                "token_leeway_seconds (PORTAL_TOKEN_LEEWAY_SECONDS)",
                self.token_leeway_seconds,
                0,
                300,
            ),
            (
                "max_query_fields (PORTAL_MAX_QUERY_FIELDS)",
                self.max_query_fields as u64,
                10,
                100_000,
            ),
            (
                "invitation_ttl_seconds (PORTAL_INVITATION_TTL_SECONDS)",
                self.invitation_ttl_seconds,
                1,
                365 * DAY,
            ),
            (
                "break_glass_seconds (PORTAL_BREAK_GLASS_SECONDS)",
                self.break_glass_seconds,
                1,
                DAY,
            ),
            (
                "exchange_gap_minutes (PORTAL_EXCHANGE_GAP_MINUTES)",
                self.exchange_gap_minutes,
                1,
                30 * 24 * 60,
            ),
            (
                "visit_gap_minutes (PORTAL_VISIT_GAP_MINUTES)",
                self.visit_gap_minutes,
                1,
                24 * 60,
            ),
        ];
        for (name, value, min, max) in ranges {
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
            ($field:ident, $name:literal) => {
                if let Some(value) = env($name) {
                    self.$field = value
                        .parse()
                        .map_err(|_| SettingsError::Env($name, value))?;
                }
            };
        }
        set!(bind, "PORTAL_BIND");
        set!(database_url, "PORTAL_DATABASE_URL");
        set!(data_dir, "PORTAL_DATA_DIR");
        set!(token_ttl_seconds, "PORTAL_TOKEN_TTL_SECONDS");
        set!(token_leeway_seconds, "PORTAL_TOKEN_LEEWAY_SECONDS");
        set!(max_body_bytes, "PORTAL_MAX_BODY_BYTES");
        set!(max_query_depth, "PORTAL_MAX_QUERY_DEPTH");
        set!(max_query_complexity, "PORTAL_MAX_QUERY_COMPLEXITY");
        set!(max_query_fields, "PORTAL_MAX_QUERY_FIELDS");
        set!(introspection, "PORTAL_INTROSPECTION");
        set!(
            read_your_writes_timeout_ms,
            "PORTAL_READ_YOUR_WRITES_TIMEOUT_MS"
        );
        set!(db_max_connections, "PORTAL_DB_MAX_CONNECTIONS");
        set!(projection_batch_size, "PORTAL_PROJECTION_BATCH_SIZE");
        set!(projection_poll_ms, "PORTAL_PROJECTION_POLL_MS");
        set!(log_format, "PORTAL_LOG_FORMAT");
        set!(invitation_ttl_seconds, "PORTAL_INVITATION_TTL_SECONDS");
        set!(break_glass_seconds, "PORTAL_BREAK_GLASS_SECONDS");
        set!(exchange_gap_minutes, "PORTAL_EXCHANGE_GAP_MINUTES");
        set!(live_poll_ms, "PORTAL_LIVE_POLL_MS");
        set!(visit_gap_minutes, "PORTAL_VISIT_GAP_MINUTES");
        if let Some(key) = env("PORTAL_TOKEN_KEY") {
            self.token_key = Some(Secret::new(key));
        }
        if let Some(key) = env("PORTAL_TRAIL_KEY") {
            self.trail_key = Some(Secret::new(key));
        }
        if let Some(key) = env("PORTAL_RESEARCH_KEY") {
            self.research_key = Some(Secret::new(key));
        }
        Ok(())
    }

    /// How long a care-relationship invitation waits for an answer.
    pub fn invitation_ttl(&self) -> chrono::Duration {
        seconds(self.invitation_ttl_seconds)
    }

    /// How long a break-glass opening of a crisis plan lasts.
    pub fn break_glass(&self) -> chrono::Duration {
        seconds(self.break_glass_seconds)
    }

    /// The token key: the configured one, or the one kept in the data folder
    /// (created with owner-only permissions on first use).
    pub fn resolve_token_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.token_key.as_ref(), "token.key")
    }

    /// The access-trail key, found the same way as the token key.
    pub fn resolve_trail_key(&self) -> Result<Secret, SettingsError> {
        self.resolve_key(self.trail_key.as_ref(), "trail.key")
    }

    /// The research key, found the same way as the token key; true in the
    /// second place when it was just made.
    pub fn resolve_research_key(&self) -> Result<(Secret, bool), SettingsError> {
        let made = self.research_key.is_none() && !self.data_dir.join("research.key").exists();
        Ok((
            self.resolve_key(self.research_key.as_ref(), "research.key")?,
            made,
        ))
    }

    /// True when a research key is configured or kept in the data folder.
    pub fn has_research_key(&self) -> bool {
        self.research_key.is_some() || self.data_dir.join("research.key").exists()
    }

    /// True when a trail key is configured or kept in the data folder; a new
    /// one would be made otherwise.
    pub fn has_trail_key(&self) -> bool {
        self.trail_key.is_some() || self.data_dir.join("trail.key").exists()
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
        let path = self.data_dir.join(file);
        if let Ok(key) = std::fs::read_to_string(&path) {
            if key.trim().len() < 32 {
                return Err(SettingsError::Key(format!(
                    "{} must hold at least 32 characters",
                    path.display()
                )));
            }
            return Ok(Secret::new(key.trim()));
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|e| SettingsError::Key(e.to_string()))?;
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        write_private(&path, &key)
            .map_err(|e| SettingsError::Key(format!("{}: {e}", path.display())))?;
        Ok(Secret::new(key))
    }
}

/// A checked number of seconds as a duration (`check` bounds them far
/// below where the conversion could overflow).
fn seconds(n: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1_000))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_and_defaults() {
        let mut settings: Settings =
            toml::from_str("bind = \"0.0.0.0:9000\"\nmax_body_bytes = 10").expect("valid toml");
        assert_eq!(
            settings.max_query_depth,
            Settings::default().max_query_depth
        );
        settings
            .apply_env(|name| (name == "PORTAL_MAX_BODY_BYTES").then(|| "2048".to_string()))
            .expect("valid env");
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.max_body_bytes, 2048);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        let mut settings = Settings::default();
        let err = settings
            .apply_env(|name| (name == "PORTAL_MAX_BODY_BYTES").then(|| "lots".to_string()))
            .expect_err("not a number");
        assert!(err.to_string().contains("PORTAL_MAX_BODY_BYTES"));
        assert!(toml::from_str::<Settings>("bnid = \"x\"").is_err());
    }

    #[test]
    fn durations_out_of_range_are_refused() {
        let mut settings = Settings::default();
        assert!(settings.check().is_ok());
        settings.break_glass_seconds = 0;
        let error = settings.check().expect_err("zero seconds");
        assert!(error.to_string().contains("break_glass_seconds"));
        settings.break_glass_seconds = 3600;
        settings.invitation_ttl_seconds = u64::MAX;
        assert!(settings.check().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings {
            token_key: Some(Secret::new("very-secret-value-that-is-long-enough")),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("very-secret"));
    }
}
