//! Operations: the committed schema, health, readiness, metrics, GraphiQL.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::{json, Value};

#[test]
fn the_committed_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == api::schema::sdl(),
        "api/schema.graphql is stale: run `cargo run --bin portal -- schema > api/schema.graphql`"
    );
}

async fn health_readiness_and_metrics_answer(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    user.client
        .data(
            r#"mutation { rateStatus(domain: "housing", score: 5) { version } }"#,
            json!({}),
        )
        .await;
    // Writes do not wait for the projections; the metrics read below do.
    wait_caught_up(&server).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.base)).send();
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok");
    let ready: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true);
    let names: Vec<&str> = ready["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "control_panel",
            "history",
            "care",
            "access",
            "messaging",
            "forum"
        ]
    );
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("portal_commands_total{outcome=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portal_projection_position{projection=\"control_panel\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portal_command_seconds_count 2"),
        "{metrics}"
    );
    let graphiql = get("/").await.unwrap().text().await.unwrap();
    assert!(graphiql.contains("graphiql"), "GraphiQL is served at /");
    server.stop().await;
}
both_stores!(operations, health_readiness_and_metrics_answer);

/// A store whose read models were built by an older version of the service
/// (here: the history table of version 2, without the `section` column the
/// current indexes need) starts, rebuilds them, and answers from the events.
async fn an_older_read_model_is_rebuilt_at_start(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    user.client
        .data(
            r#"mutation { addMedication(name: "Sertraline", dose: "50 mg", schedule: "morning") { version } }"#,
            json!({}),
        )
        .await;
    server.stop().await;

    let read = read_db(&db).await;
    let slot: String =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = 'history'")
            .fetch_one(&read.pool)
            .await
            .unwrap();
    for sql in [
        format!("DROP TABLE history_{slot}"),
        format!(
            "CREATE TABLE history_{slot} (portal_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
             position BIGINT NOT NULL, subject_kind TEXT NOT NULL, subject_id TEXT NOT NULL, \
             event_type TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (portal_id, sequence))"
        ),
        "UPDATE projection_slots SET version = 2 WHERE name = 'history'".to_string(),
    ] {
        sqlx::query(&sql).execute(&read.pool).await.unwrap();
    }

    let server = Server::start(&db).await;
    let c = server.client(user.client.token.clone());
    let meds = c.data("{ medications { name dose } }", json!({})).await;
    assert_eq!(
        meds,
        json!({"medications": [{"name": "Sertraline", "dose": "50 mg"}]})
    );
    let version: i64 = sqlx::query_scalar(
        "SELECT CAST(version AS BIGINT) FROM projection_slots WHERE name = 'history'",
    )
    .fetch_one(&read.pool)
    .await
    .unwrap();
    assert!(version > 2, "history was not rebuilt: version {version}");
    server.stop().await;
}
both_stores!(upgrade, an_older_read_model_is_rebuilt_at_start);

/// A SIGTERM sent the moment the service says it listens stops it cleanly
/// (exit 0, requests drained): the handler is in place before the line is
/// printed. Before, it was registered when the server first polled its
/// shutdown future, and a signal in between killed the process outright.
async fn stops_cleanly_on_a_sigterm_as_soon_as_it_listens(store: Store) {
    let db = fresh_db(store).await;
    for _ in 0..5 {
        Server::start(&db).await.stop().await;
    }
}

both_stores!(
    sigterm_right_after_listening,
    stops_cleanly_on_a_sigterm_as_soon_as_it_listens
);

/// `/metrics` answers by default and is an unknown path once closed
/// (`PORTAL_METRICS=false`), as a production deployment reachable from
/// outside should have it.
async fn metrics_can_be_closed(store: Store) {
    let db = fresh_db(store).await;
    let http = reqwest::Client::new();
    let open = Server::start(&db).await;
    let answer = http
        .get(format!("{}/metrics", open.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    open.stop().await;
    let closed = Server::start_with(&db, &[("PORTAL_METRICS", "false")]).await;
    let answer = http
        .get(format!("{}/metrics", closed.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    closed.stop().await;
}

both_stores!(closable_metrics, metrics_can_be_closed);

/// A PostgreSQL database that does not wait for commits to reach the disk
/// (`synchronous_commit = off`, set for this database only) is refused at
/// start with the setting named, and served only when allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_flush_commits_is_refused() {
    use sqlx::Connection;
    let db = fresh_db(Store::Postgres).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let (ok, _, err) = portal_cli_status(&db, &["serve"]).await;
    assert!(!ok, "served a store that does not flush commits");
    assert!(err.contains("synchronous_commit = off"), "{err}");
    assert!(err.contains("PORTAL_ALLOW_UNSAFE_COMMITS"), "{err}");
    let allowed = Server::start_with(&db, &[("PORTAL_ALLOW_UNSAFE_COMMITS", "true")]).await;
    allowed.stop().await;
}

/// Writes past a person's allowance are refused with RATE_LIMITED before
/// anything is stored; other people, reads and replays are not held back.
async fn writes_are_limited_per_person(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_WRITES_PER_MINUTE", "6"),
            ("PORTAL_WRITE_BURST", "3"),
        ],
    )
    .await;
    // Opening the portal is the first of three.
    let user = open_user(&server, "clinic-a").await;
    let rate = "mutation($k: String) { rateStatus(domain: \"housing\", score: 5, idempotencyKey: $k) { version replayed } }";
    user.client.data(rate, json!({ "k": "first" })).await;
    user.client.data(rate, json!({})).await;
    let version = |v: Value| v["controlPanel"]["version"].clone();
    let before = version(
        user.client
            .data("{ controlPanel { version } }", json!({}))
            .await,
    );
    let refused = user.client.gql(rate, json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("retry in"),
        "{refused}"
    );
    // Nothing stored; reads go on; a replay of an earlier write is answered.
    assert_eq!(
        version(
            user.client
                .data("{ controlPanel { version } }", json!({}))
                .await
        ),
        before
    );
    let replay = user.client.data(rate, json!({ "k": "first" })).await;
    assert_eq!(replay["rateStatus"]["replayed"], true);
    // Someone else is not held back.
    let other = open_user(&server, "clinic-a").await;
    other.client.data(rate, json!({})).await;
    server.stop().await;
}

both_stores!(write_limit, writes_are_limited_per_person);
