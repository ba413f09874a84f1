//! Read-your-writes without writes waiting for the read models (issue 16):
//! a mutation answers once its events are committed, and the reads that must
//! show it wait for it instead. The control panel's projection is held back
//! by a trigger that takes seconds per row it writes (PostgreSQL sleeps;
//! SQLite, which has no sleep, counts a cross join), so "the answer came
//! before the read model showed it" is a fact the test reads, not a timing.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::{json, Value};

const STATUS: &str =
    "query($p: ID) { controlPanel(portalId: $p) { domains { key latestStatus { score } } } }";

fn score(panel: &Value, domain: &str) -> Option<i64> {
    panel["controlPanel"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == domain)
        .and_then(|d| d["latestStatus"]["score"].as_i64())
}

/// Makes every row the control panel writes to its domains table slow.
async fn slow_down_panel(db: &TestDb) -> projections::Db {
    let read = read_db(db).await;
    let slot: String =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = 'control_panel'")
            .fetch_one(&read.pool)
            .await
            .unwrap();
    let statements = match db.store {
        Store::Postgres => vec![
            "CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$".to_string(),
            format!("CREATE TRIGGER slow_down AFTER INSERT OR UPDATE ON cp_domains_{slot} FOR EACH ROW EXECUTE FUNCTION slow_down()"),
        ],
        Store::Sqlite => {
            let burn = "SELECT count(*) FROM burn a, burn b, burn c WHERE a.x + b.x + c.x = -1";
            vec![
                "CREATE TABLE burn (x INTEGER)".to_string(),
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 250) INSERT INTO burn SELECT x FROM n".to_string(),
                format!("CREATE TRIGGER slow_insert AFTER INSERT ON cp_domains_{slot} BEGIN {burn}; END"),
                format!("CREATE TRIGGER slow_update AFTER UPDATE ON cp_domains_{slot} BEGIN {burn}; END"),
            ]
        }
    };
    for statement in statements {
        sqlx::query(&statement).execute(&read.pool).await.unwrap();
    }
    read
}

/// Where the control panel's projection stands, read from the store.
async fn panel_position(read: &projections::Db) -> i64 {
    sqlx::query_scalar(
        "SELECT c.position FROM projection_checkpoints c JOIN projection_slots s \
         ON s.name = c.name AND s.active_slot = c.slot WHERE c.name = 'control_panel'",
    )
    .fetch_one(&read.pool)
    .await
    .unwrap()
}

async fn rate(user: &User, score: i64) -> Value {
    user.client
        .data(
            "mutation($s: Int!) { rateStatus(domain: \"housing\", score: $s) { position consistencyToken } }",
            json!({ "s": score }),
        )
        .await["rateStatus"]
        .clone()
}

async fn writes_answer_first_and_reads_wait(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_READ_YOUR_WRITES_TIMEOUT_MS", "20000")]).await;
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    grant(&user, &rel, &["CORE"], None).await;
    wait_caught_up(&server).await;
    let read = slow_down_panel(&db).await;

    // The answer does not wait for the read model...
    let rated = rate(&user, 3).await;
    let position: i64 = rated["position"].as_str().unwrap().parse().unwrap();
    assert!(
        panel_position(&read).await < position,
        "the control panel already showed the write when the mutation answered"
    );
    // ...the writer's next read does.
    let own = user.client.data(STATUS, json!({})).await;
    assert_eq!(score(&own, "housing"), Some(3), "{own}");

    // Anyone's read of the portal shows what its owner was told was saved.
    rate(&user, 7).await;
    let p = json!({ "p": user.id });
    let theirs = kari.client.data(STATUS, p.clone()).await;
    assert_eq!(score(&theirs, "housing"), Some(7), "{theirs}");

    // Another instance on the same store holds no marks of this one: there a
    // read waits for the write a client names by its token, and only then.
    let other = Server::start_with(&db, &[("PORTAL_READ_YOUR_WRITES_TIMEOUT_MS", "20000")]).await;
    wait_caught_up(&other).await;
    let rated = rate(&user, 9).await;
    let token = rated["consistencyToken"].as_str().unwrap().to_string();
    let elsewhere = |token: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", other.base))
            .bearer_auth(kari.client.token.as_ref().unwrap())
            .json(&json!({ "query": STATUS, "variables": p }));
        if let Some(token) = token {
            request = request.header("Portal-Consistency", token);
        }
        request
    };
    let stale: Value = elsewhere(None).send().await.unwrap().json().await.unwrap();
    assert_eq!(score(&stale["data"], "housing"), Some(7), "{stale}");
    let fresh: Value = elsewhere(Some(&token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(score(&fresh["data"], "housing"), Some(9), "{fresh}");

    // A header that is not a token is refused, not ignored.
    for bad in ["latest", "1.x", "-1.3"] {
        let answer = elsewhere(Some(bad)).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{bad}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    other.stop().await;
    server.stop().await;
}
both_stores!(
    writes_answer_first_and_reads_wait_on_either_store,
    writes_answer_first_and_reads_wait
);

/// A mutation's payload object is read through the read models: selecting
/// it (or `caughtUp`) waits for them, so the answer shows the change.
async fn payloads_show_their_change(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_READ_YOUR_WRITES_TIMEOUT_MS", "20000")]).await;
    let user = open_user(&server, "clinic").await;
    user.client
        .data(
            "mutation { setGoal(domain: \"housing\", title: \"first\") { version } }",
            json!({}),
        )
        .await;
    wait_caught_up(&server).await;
    let _read = slow_down_panel(&db).await;
    let set = user
        .client
        .data(
            "mutation { rateStatus(domain: \"housing\", score: 5) { caughtUp controlPanel { domains { key latestStatus { score } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(set["rateStatus"]["caughtUp"], true);
    assert_eq!(
        score(
            &json!({ "controlPanel": set["rateStatus"]["controlPanel"] }),
            "housing"
        ),
        Some(5),
        "{set}"
    );
    server.stop().await;
}
both_stores!(
    payloads_show_their_change_on_either_store,
    payloads_show_their_change
);

/// The toolbox sections' answers about a portal now are kept between reads
/// (issue 16); each change to the portal must still show in the next read,
/// the owner's and a provider's, with no wait in between.
async fn kept_section_answers_follow_each_change(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    let provider = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &provider).await;
    grant(&user, &rel, &["MEDICATIONS", "EXERCISES"], None).await;
    let added = user
        .client
        .data(
            "mutation { addMedication(name: \"A\", dose: \"1 mg\", schedule: \"x\") { medication { uuid } } }",
            json!({}),
        )
        .await;
    let med = added["addMedication"]["medication"]["uuid"].clone();
    const READ: &str = "query($p: ID) { medications(portalId: $p) { dose changes } \
        exerciseLog(portalId: $p) { started entries(first: 50) { nodes { exercise } } } }";
    for round in 1..=4_i64 {
        for _ in 0..2 {
            for (client, portal) in [
                (&user.client, Value::Null),
                (&provider.client, json!(user.id)),
            ] {
                let read = client.data(READ, json!({ "p": portal })).await;
                assert_eq!(
                    read["medications"][0]["dose"],
                    format!("{round} mg"),
                    "{read}"
                );
                assert_eq!(read["medications"][0]["changes"], round - 1, "{read}");
                assert_eq!(read["exerciseLog"]["started"], round - 1, "{read}");
                assert_eq!(
                    read["exerciseLog"]["entries"]["nodes"]
                        .as_array()
                        .unwrap()
                        .len() as i64,
                    round - 1
                );
            }
        }
        user.client
            .data(
                "mutation($m: ID!, $d: String) { changeMedication(medicationId: $m, dose: $d) { version } }",
                json!({ "m": med, "d": format!("{} mg", round + 1) }),
            )
            .await;
        user.client
            .data(
                "mutation($e: String!) { startExercise(exercise: $e) { version } }",
                json!({ "e": "sleep_hygiene" }),
            )
            .await;
    }
    server.stop().await;
}
both_stores!(
    kept_sections_on_either_store,
    kept_section_answers_follow_each_change
);
