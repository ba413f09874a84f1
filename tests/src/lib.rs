//! Harness for the integration tests: fresh databases on both stores, the real
//! `portal` binary started as a process on a free port, and a GraphQL client.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use api::auth::{Role, TokenKeys};
use api::settings::Secret;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The token key every test server is started with.
pub const TEST_KEY: &str = "portal-test-key-0123456789abcdef0123456789abcdef";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per store, as two `#[tokio::test]`s.
#[macro_export]
macro_rules! both_stores {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body($crate::Store::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body($crate::Store::Postgres).await
            }
        }
    };
}

/// A fresh, empty database of one store, and a folder for the server's data.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub dir: PathBuf,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a new empty database: a SQLite file in a new folder, or a new
/// database on the PostgreSQL server named by `PORTAL_TEST_POSTGRES_URL`.
pub async fn fresh_db(store: Store) -> TestDb {
    let dir = std::env::temp_dir().join(format!("portal-test-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = match store {
        Store::Sqlite => format!("sqlite://{}", dir.join("portal.db").display()),
        Store::Postgres => {
            let admin = std::env::var("PORTAL_TEST_POSTGRES_URL").expect(
                "PORTAL_TEST_POSTGRES_URL is not set: run the tests with ops/test, which starts PostgreSQL",
            );
            let name = format!("t_{}", Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
            format!("{base}/{name}")
        }
    };
    TestDb { store, url, dir }
}

/// The `portal` command under test: the same `api::cli::main` as the real
/// binary, built by cargo together with the tests (so never stale).
/// Cargo builds it next to the test executables' `deps/` folder.
pub fn portal_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("portal-under-test");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through cargo",
        bin.display()
    );
    bin
}

/// Runs a `portal` subcommand against `db` and returns its stdout.
pub async fn portal_cli(db: &TestDb, args: &[&str]) -> String {
    let out = Command::new(portal_bin())
        .args(args)
        .envs(server_env(db))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "portal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn server_env(db: &TestDb) -> Vec<(String, String)> {
    vec![
        ("PORTAL_BIND".into(), "127.0.0.1:0".into()),
        ("PORTAL_DATABASE_URL".into(), db.url.clone()),
        ("PORTAL_DATA_DIR".into(), db.dir.display().to_string()),
        ("PORTAL_TOKEN_KEY".into(), TEST_KEY.into()),
        ("PORTAL_DB_MAX_CONNECTIONS".into(), "8".into()),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

/// A running `portal serve` process.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts the binary on a free port against `db` and waits until it listens.
    pub async fn start(db: &TestDb) -> Server {
        Self::start_with(db, &[]).await
    }

    /// Like [`Server::start`], with extra environment variables.
    pub async fn start_with(db: &TestDb, extra: &[(&str, &str)]) -> Server {
        let mut command = Command::new(portal_bin());
        command
            .arg("serve")
            .envs(server_env(db))
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("portal listening on ") {
                    return addr.trim().to_string();
                }
            }
            panic!("portal exited before listening");
        })
        .await
        .expect("portal did not start within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, base }
    }

    /// A client with the given bearer token (or none).
    pub fn client(&self, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: format!("{}/graphql", self.base),
            token,
        }
    }

    /// Stops the server with SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not stop within 30 s after SIGTERM")
            .unwrap();
        assert!(exit.success(), "server exited with {exit} after SIGTERM");
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Mints a token with the test key.
pub fn token(subject: Uuid, role: Role, org: &str) -> String {
    TokenKeys::new(&Secret::new(TEST_KEY))
        .mint(subject, role, org, 3600)
        .unwrap()
}

/// A GraphQL client over real HTTP.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

impl Client {
    /// Sends a query with variables; returns the whole JSON response.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Sends a query that must succeed; returns its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.gql(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// Sends a query that must fail; returns the first error's code.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let response = self.gql(query, variables).await;
        response["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {response}"))
            .to_string()
    }
}

/// A service user with a token and an opened portal.
pub struct User {
    pub id: Uuid,
    pub client: Client,
}

/// Creates a service user in `org` and opens their portal.
pub async fn open_user(server: &Server, org: &str) -> User {
    let id = Uuid::new_v4();
    let client = server.client(Some(token(id, Role::ServiceUser, org)));
    client
        .data("mutation { openPortal { version } }", json!({}))
        .await;
    User { id, client }
}

/// The whole control panel query, for comparing states.
pub const CONTROL_PANEL: &str = "{ controlPanel { portalId organisation version openedAt updatedAt domains { key name custom ratings \
    latestStatus { score note ratedAt } activeGoals { id domain title description state setAt updatedAt closedAt \
    progress { planned done dropped percentDone } activities { id title state plannedAt updatedAt } } } } }";

/// Connects the read side of `db` for direct inspection.
pub async fn read_db(db: &TestDb) -> projections::Db {
    projections::Db::connect(&db.url, 2).await.unwrap()
}
