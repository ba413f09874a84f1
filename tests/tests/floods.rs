//! Floods cost the attacker, not the victim: refused attempts coalesce into
//! one record each, a reader past `server.refusals_per_minute` refusals gets
//! RATE_LIMITED (still recorded), and the owner's log keeps real reads apart
//! from refused attempts.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

const ALIASES: usize = 200;

fn flood() -> String {
    let fields: Vec<String> = (0..ALIASES)
        .map(|i| format!("p{i}: crisisPlan(portalId: $p) {{ warningSigns }}"))
        .collect();
    format!("query($p: ID) {{ {} }}", fields.join(" "))
}

const LOG: &str = "{ myAccessLog { \
    reads { nodes { readerId section basis attempts } } \
    refusedAttempts { nodes { readerId section basis refusal attempts firstAt at } } \
    entries { nodes { basis attempts } } } }";

async fn trail_records(db: &TestDb, chain: Uuid) -> Vec<Value> {
    let read = read_db(db).await;
    let payload = match db.store {
        Store::Postgres => "payload::text",
        Store::Sqlite => "payload",
    };
    sqlx::query(&format!(
        "SELECT {payload} AS payload FROM events WHERE aggregate_type = 'AccessTrail' \
         AND aggregate_id = $1 ORDER BY sequence"
    ))
    .bind(chain.to_string())
    .fetch_all(&read.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| serde_json::from_str(&r.get::<String, _>("payload")).unwrap())
    .collect()
}

async fn floods_cost_the_attacker(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let victim = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&victim, &kari).await;
    grant(&victim, &rel, &["MEDICATIONS"], None).await;
    kari.client
        .data(
            "query($p: ID) { medications(portalId: $p) { name } }",
            json!({ "p": victim.id }),
        )
        .await;

    // A stranger of another organisation floods the victim's crisis plan.
    let stranger = Uuid::new_v4();
    let attacker = server.client(Some(token(stranger, Role::Provider, "elsewhere")));
    let answer = attacker.gql(&flood(), json!({ "p": victim.id })).await;
    let codes: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), ALIASES, "{answer}");
    let not_found = codes.iter().filter(|c| **c == "NOT_FOUND").count();
    let limited = codes.iter().filter(|c| **c == "RATE_LIMITED").count();
    assert_eq!(not_found, 60, "the first 60 refusals answer as refusals");
    assert_eq!(limited, ALIASES - 60, "then RATE_LIMITED");
    // The next request of the same reader is limited from the start; another
    // reader is not.
    let again = attacker
        .error_code(&flood(), json!({ "p": victim.id }))
        .await;
    assert_eq!(again, "RATE_LIMITED");
    let other = server.client(Some(token(Uuid::new_v4(), Role::Provider, "elsewhere")));
    let code = other
        .error_code(
            "query($p: ID) { crisisPlan(portalId: $p) { warningSigns } }",
            json!({ "p": victim.id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");

    // 401 attempts, three records: every attempt counted, none lost.
    let records = trail_records(&db, victim.id).await;
    let refused: Vec<&Value> = records.iter().filter(|r| r["basis"] == "refused").collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    let attempts = |r: &Value| r["attempts"].as_u64().unwrap_or(1);
    let by = |reader: Uuid, code: &str| -> u64 {
        refused
            .iter()
            .filter(|r| r["reader_id"] == reader.to_string() && r["refusal"] == code)
            .map(|r| attempts(r))
            .sum()
    };
    assert_eq!(by(stranger, "NOT_FOUND"), 60);
    assert_eq!(by(stranger, "RATE_LIMITED"), 2 * ALIASES as u64 - 60);
    assert!(refused
        .iter()
        .all(|r| attempts(r) == 1 || r["first_at"].is_string()));

    // The victim sees the real read first, and the flood apart.
    wait_caught_up(&server).await;
    let log = victim.client.data(LOG, json!({})).await;
    let reads = log["myAccessLog"]["reads"]["nodes"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{log}");
    assert_eq!(reads[0]["readerId"], kari.id.to_string());
    assert_eq!(reads[0]["basis"], "GRANT");
    let attempts = log["myAccessLog"]["refusedAttempts"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(attempts.len(), 4, "{log}");
    let total: i64 = attempts
        .iter()
        .map(|a| a["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2 * ALIASES as i64 + 1);
    assert!(attempts
        .iter()
        .all(|a| a["basis"] == "REFUSED" && a["section"] == "CRISIS_PLAN"));
    let many = attempts
        .iter()
        .find(|a| a["attempts"].as_i64() == Some(ALIASES as i64))
        .expect("a whole limited request is one entry");
    assert!(many["firstAt"].is_string() && many["firstAt"].as_str() <= many["at"].as_str());
    assert_eq!(
        log["myAccessLog"]["entries"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "{log}"
    );
    server.stop().await;

    // The coalesced records verify like any other.
    let (ok, out, _) = portal_cli_status(&db, &["audit", "verify"]).await;
    assert!(ok, "{out}");
}
both_stores!(
    floods_cost_the_attacker_not_the_victim,
    floods_cost_the_attacker
);

/// The allowance is a setting; 0 turns it off.
async fn the_refusal_limit_is_a_setting(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_REFUSALS_PER_MINUTE", "0")]).await;
    let victim = open_user(&server, "clinic").await;
    let attacker = server.client(Some(token(Uuid::new_v4(), Role::Provider, "elsewhere")));
    let answer = attacker.gql(&flood(), json!({ "p": victim.id })).await;
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), ALIASES);
    assert!(errors
        .iter()
        .all(|e| e["extensions"]["code"] == "NOT_FOUND"));
    let records = trail_records(&db, victim.id).await;
    assert_eq!(records.len(), 1, "one record for the whole request");
    assert_eq!(records[0]["attempts"], ALIASES as u64);
    server.stop().await;
}
both_stores!(
    the_refusal_limit_is_a_setting_0_is_off,
    the_refusal_limit_is_a_setting
);
