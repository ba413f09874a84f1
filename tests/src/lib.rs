//! Harness for the integration tests: fresh databases on both stores, the real
//! `portal` binary started as a process on a free port, and a GraphQL client.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use api::auth::{Role, TokenKeys};
use api::settings::Secret;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;
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

/// The `portal` command under test: the same `portal::main` as the real
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
    let (ok, out, err) = portal_cli_status(db, args).await;
    assert!(ok, "portal {args:?} failed: {err}");
    out
}

/// Runs a `portal` subcommand against `db`: (succeeded, stdout, stderr).
pub async fn portal_cli_status(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    portal_cli_env(db, args, &[]).await
}

/// Like [`portal_cli_status`], with extra environment variables.
pub async fn portal_cli_env(
    db: &TestDb,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (bool, String, String) {
    let out = Command::new(portal_bin())
        .args(args)
        .envs(server_env(db))
        .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
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

    /// Like [`Client::gql`], but `None` when the server cannot be reached or
    /// answers with something that is not JSON (as during a crash).
    pub async fn try_gql(&self, query: &str, variables: Value) -> Option<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.ok()?.json().await.ok()
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

/// A provider with a token and a registered profile.
pub struct Provider {
    pub id: Uuid,
    pub client: Client,
}

/// Creates a provider in `org` and registers their profile.
pub async fn register_provider(server: &Server, org: &str, name: &str) -> Provider {
    let id = Uuid::new_v4();
    let client = server.client(Some(token(id, Role::Provider, org)));
    client
        .data(
            "mutation($n: String!) { saveProviderProfile(displayName: $n, profession: NURSE) { version } }",
            json!({ "n": name }),
        )
        .await;
    Provider { id, client }
}

/// The user invites the provider, who accepts; returns the relationship id.
pub async fn relate(user: &User, provider: &Provider) -> String {
    let invited = user
        .client
        .data(
            "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
            json!({ "p": provider.id }),
        )
        .await;
    let id = invited["inviteToCare"]["relationship"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    provider
        .client
        .data(
            "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }",
            json!({ "r": id }),
        )
        .await;
    id
}

/// The user grants `sections` (GraphQL enum names) in a relationship, with an optional end.
pub async fn grant(user: &User, relationship: &str, sections: &[&str], until: Option<&str>) {
    for section in sections {
        user.client
            .data(
                &format!(
                    "mutation($r: ID!, $u: DateTime) {{ grantAccess(relationshipId: $r, section: {section}, until: $u) {{ version }} }}"
                ),
                json!({ "r": relationship, "u": until }),
            )
            .await;
    }
}

/// The whole control panel query, for comparing states.
pub const CONTROL_PANEL: &str = "{ controlPanel { portalId organisation version openedAt updatedAt domains { key name custom ratings \
    latestStatus { score note ratedAt } activeGoals { id domain title description state setAt updatedAt closedAt \
    progress { planned done dropped percentDone } activities { id title state plannedAt updatedAt } } } } }";

/// Connects the read side of `db` for direct inspection.
pub async fn read_db(db: &TestDb) -> projections::Db {
    let read = projections::Db::connect(&db.url, 2).await.unwrap();
    read.vault.unlock(master_key(db));
    read
}

/// Waits until `/readyz` reports every projection with no lag.
pub async fn wait_caught_up(server: &Server) {
    let http = reqwest::Client::new();
    for _ in 0..600 {
        let ready: Value = http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let lagging = ready["projections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["lag_events"].as_i64() != Some(0));
        if !lagging {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("projections did not catch up within 30 s");
}

/// The master key of the service on `db`: its key file in the data folder,
/// made now (as the service would) if the service has not started yet.
pub fn master_key(db: &TestDb) -> projections::vault::MasterKey {
    let mut settings = api::settings::Settings::default();
    settings.store.data_dir = db.dir.clone();
    projections::vault::MasterKey::derive(settings.resolve_master_key().unwrap().expose())
}

/// The payloads of every event of one aggregate type, in position order,
/// read plainly: the global-order reader holds back events while any
/// transaction older than them runs anywhere on the cluster (other tests'
/// databases included), which a count must not depend on.
pub async fn payloads_of(db: &projections::Db, aggregate_type: &str) -> Vec<String> {
    let sql = match db.backend {
        projections::Backend::Postgres => {
            "SELECT payload::text FROM events WHERE aggregate_type = $1 ORDER BY position"
        }
        projections::Backend::Sqlite => {
            "SELECT payload FROM events WHERE aggregate_type = $1 ORDER BY position"
        }
    };
    sqlx::query_scalar(sql)
        .bind(aggregate_type)
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// Every event in the store, in global order.
pub async fn all_events(db: &projections::Db) -> Vec<projections::StoredEvent> {
    let mut out = Vec::new();
    let mut after = projections::Checkpoint::default();
    loop {
        let batch = projections::stream::read_batch(db, after, 5_000)
            .await
            .unwrap();
        let Some(last) = batch.last() else { return out };
        after = last.checkpoint;
        out.extend(batch);
    }
}

/// What the read models must contain, computed here independently of the
/// projection code: the domain aggregate folds each portal, and the counters
/// are counted from the events.
pub async fn expected_state(db: &projections::Db) -> Vec<String> {
    use cqrs_es_fold::fold;
    fold(&all_events(db).await)
}

/// What the read models of the active slots do contain, in the same form.
pub async fn projected_state(db: &projections::Db) -> Vec<String> {
    let slot = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>("SELECT active_slot FROM projection_slots WHERE name = $1")
            .bind(name)
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let cp = slot("control_panel").await;
    let hs = slot("history").await;
    let mut lines = Vec::new();
    let rows = |sql: String| async move { sqlx::query(&sql).fetch_all(&db.pool).await.unwrap() };
    use sqlx::Row;
    for r in rows(format!(
        "SELECT portal_id, organisation, version FROM cp_portals_{cp}"
    ))
    .await
    {
        lines.push(format!(
            "portal {} org={} version={}",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<i64, _>(2)
        ));
    }
    for r in rows(format!(
        "SELECT portal_id, domain_key, name, custom, ratings, latest_score FROM cp_domains_{cp}"
    ))
    .await
    {
        lines.push(format!(
            "domain {} {} name={} custom={} ratings={} latest={:?}",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<i64, _>(3) != 0,
            r.get::<i64, _>(4),
            r.get::<Option<i64>, _>(5)
        ));
    }
    for r in rows(format!(
        "SELECT portal_id, goal_id, domain_key, title, state, planned, done, dropped FROM cp_goals_{cp}"
    ))
    .await
    {
        lines.push(format!(
            "goal {} {} domain={} title={} state={} planned={} done={} dropped={}",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
            r.get::<i64, _>(5),
            r.get::<i64, _>(6),
            r.get::<i64, _>(7)
        ));
    }
    for r in rows(format!(
        "SELECT portal_id, activity_id, goal_id, title, state FROM cp_activities_{cp}"
    ))
    .await
    {
        lines.push(format!(
            "activity {} {} goal={} title={} state={}",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4)
        ));
    }
    for r in rows(format!(
        "SELECT portal_id, section, items, current, changes FROM cp_sections_{cp}"
    ))
    .await
    {
        lines.push(format!(
            "section {} {} items={} current={} changes={}",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<i64, _>(2),
            r.get::<i64, _>(3),
            r.get::<i64, _>(4)
        ));
    }
    for r in rows(format!(
        "SELECT portal_id, sequence, position FROM history_{hs}"
    ))
    .await
    {
        lines.push(format!(
            "history {} {} {}",
            r.get::<String, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2)
        ));
    }
    lines.sort();
    lines
}

mod cqrs_es_fold {
    use std::collections::BTreeMap;

    use cqrs_es::Aggregate;
    use domain::portal::{ActivityState, GoalState, MedicationState, Portal, PortalEvent, Section};

    /// Folds every portal with the domain aggregate and counts what it does not keep.
    pub fn fold(events: &[projections::StoredEvent]) -> Vec<String> {
        let mut portals: BTreeMap<String, (Portal, i64)> = BTreeMap::new();
        let mut ratings: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        let mut changes: BTreeMap<(String, Section), i64> = BTreeMap::new();
        let mut lines = Vec::new();
        for e in events.iter().filter(|e| e.aggregate_type == "Portal") {
            let event: PortalEvent = e.decode().unwrap();
            if let PortalEvent::StatusRated { domain, score, .. } = &event {
                let r = ratings
                    .entry((e.aggregate_id.clone(), domain.clone()))
                    .or_default();
                r.0 += 1;
                r.1 = i64::from(*score);
            }
            *changes
                .entry((e.aggregate_id.clone(), event.section()))
                .or_default() += 1;
            let (portal, version) = portals.entry(e.aggregate_id.clone()).or_default();
            assert_eq!(
                *version + 1,
                e.sequence,
                "sequence gap in {}",
                e.aggregate_id
            );
            portal.apply(event);
            *version = e.sequence;
            lines.push(format!(
                "history {} {} {}",
                e.aggregate_id, e.sequence, e.checkpoint.position
            ));
        }
        for (id, (p, version)) in &portals {
            lines.push(format!(
                "portal {id} org={} version={version}",
                p.organisation
            ));
            // Section counts from the aggregate's own state.
            let count = |n: usize| n as i64;
            for section in Section::ALL {
                let Some(n) = changes.get(&(id.clone(), section)) else {
                    continue;
                };
                let (items, current) = match section {
                    Section::Core => (
                        count(p.goals.len()),
                        count(
                            p.goals
                                .values()
                                .filter(|g| g.state == GoalState::Active)
                                .count(),
                        ),
                    ),
                    Section::Medications => (
                        count(p.medications.len()),
                        count(
                            p.medications
                                .values()
                                .filter(|m| m.state != MedicationState::Stopped)
                                .count(),
                        ),
                    ),
                    Section::Network => (
                        count(p.people.len()),
                        count(p.people.values().filter(|x| !x.removed).count()),
                    ),
                    Section::CrisisPlan => {
                        let revision = p.crisis_plan.as_ref().map_or(0, |(r, _)| i64::from(*r));
                        (revision, revision.min(1))
                    }
                    Section::Exercises => (
                        count(p.exercise_log.len()),
                        count(p.exercise_log.values().filter(|done| **done).count()),
                    ),
                };
                lines.push(format!(
                    "section {id} {} items={items} current={current} changes={n}",
                    section.as_str()
                ));
            }
            for (key, d) in &p.domains {
                let (n, latest) = ratings
                    .get(&(id.clone(), key.clone()))
                    .copied()
                    .map_or((0, None), |(n, s)| (n, Some(s)));
                lines.push(format!(
                    "domain {id} {key} name={} custom={} ratings={n} latest={latest:?}",
                    d.name, d.custom
                ));
            }
            for (gid, g) in &p.goals {
                let count =
                    |s: ActivityState| g.activities.values().filter(|a| a.state == s).count();
                let state = match g.state {
                    GoalState::Active => "active",
                    GoalState::Achieved => "achieved",
                    GoalState::Abandoned => "abandoned",
                };
                lines.push(format!(
                    "goal {id} {gid} domain={} title={} state={state} planned={} done={} dropped={}",
                    g.domain,
                    g.title,
                    count(ActivityState::Planned),
                    count(ActivityState::Done),
                    count(ActivityState::Dropped)
                ));
                for (aid, a) in &g.activities {
                    lines.push(format!(
                        "activity {id} {aid} goal={gid} title={} state={}",
                        a.title,
                        a.state.as_str()
                    ));
                }
            }
        }
        lines.sort();
        lines
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a `graphql-transport-ws` socket at `/graphql/ws`, authenticates
/// with `token`, and returns it acknowledged (or what came instead).
pub async fn connect(server: &Server, token: &str) -> Result<Socket, String> {
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "token": token } });
    socket
        .send(Frame::Text(init.to_string().into()))
        .await
        .unwrap();
    match next_frame(&mut socket, Duration::from_secs(5)).await {
        Some(v) if v["type"] == "connection_ack" => Ok(socket),
        other => Err(format!("{other:?}")),
    }
}

/// The next JSON frame, if one comes in time.
pub async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next()).await.ok()??;
        match frame.ok()? {
            Frame::Text(text) => return serde_json::from_str(&text).ok(),
            Frame::Close(_) => return None,
            _ => continue,
        }
    }
}
