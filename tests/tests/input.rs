//! Bad input of every kind gets a clear error with a code and never a panic;
//! idempotency keys and concurrent writers on one portal lose nothing.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::{json, Value};

async fn malformed_huge_and_deep_requests_are_refused_cleanly(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let http = reqwest::Client::new();
    let url = format!("{}/graphql", server.base);
    let bearer = format!("Bearer {}", user.client.token.clone().unwrap());

    let post = |body: Vec<u8>| {
        http.post(&url)
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = post(b"{\"query\": ".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let not_utf8 = post(vec![0xff, 0xfe, 0x00]).await.unwrap();
    assert_eq!(not_utf8.status(), 400);

    let huge = format!(
        r#"{{"query": "{{ me {{ personId }} }}", "variables": {{"x": "{}"}}}}"#,
        "a".repeat(200_000)
    );
    let huge = post(huge.into_bytes()).await.unwrap();
    assert_eq!(huge.status(), 413);
    let body: Value = huge.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let normal = "{ controlPanel { domains { activeGoals { activities { id } } } } }";
    assert!(
        user.client
            .gql(normal, json!({}))
            .await
            .get("errors")
            .is_none(),
        "a normal query is fine"
    );
    // Introspection nests up to 20 levels (standard clients need about 13);
    // ordinary queries 10.
    let too_deep = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "ofType { ".repeat(19),
        "} ".repeat(19)
    );
    let too_deep = too_deep.as_str();
    let response = user.client.gql(too_deep, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested 22 levels deep"),
        "{response}"
    );
    // Cost, not size: 30 pages of 500 status ratings.
    let wide: String = (0..30)
        .map(|i| {
            format!("a{i}: statusHistory(domain: \"housing\", first: 500) {{ nodes {{ score }} }} ")
        })
        .collect();
    let response = user.client.gql(&format!("{{ {wide} }}"), json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex"),
        "{response}"
    );

    let syntax = user.client.gql("{ controlPanel { ", json!({})).await;
    assert_eq!(syntax["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let wrong_type = user
        .client
        .gql(
            r#"mutation { rateStatus(domain: "housing", score: "high") { version } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        wrong_type["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    let control = user
        .client
        .gql("mutation($n: String!) { rateStatus(domain: \"housing\", score: 3, note: $n) { version } }", json!({"n": "a\u{0}b"}))
        .await;
    assert_eq!(control["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // The server is still healthy and nothing was stored by any of it.
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let panel = user
        .client
        .data("{ controlPanel { version } }", json!({}))
        .await;
    assert_eq!(panel["controlPanel"]["version"], "1");
    server.stop().await;
}
both_stores!(
    bad_requests,
    malformed_huge_and_deep_requests_are_refused_cleanly
);

async fn an_idempotency_key_appends_once(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let set = r#"mutation($k: String) { setGoal(domain: "housing", title: "Move", idempotencyKey: $k) { goal { uuid } version position replayed } }"#;
    let first = user.client.data(set, json!({"k": "goal-1"})).await["setGoal"].clone();
    let again = user.client.data(set, json!({"k": "goal-1"})).await["setGoal"].clone();
    assert_eq!(first["replayed"], false);
    assert_eq!(again["replayed"], true);
    for field in ["goal", "version", "position"] {
        assert_eq!(first[field], again[field], "{field}");
    }
    // Many copies of one request at once: exactly one goal is set.
    let copies = (0..8).map(|_| {
        let c = user.client.clone();
        async move { c.data(set, json!({"k": "goal-2"})).await["setGoal"].clone() }
    });
    let results = futures::future::join_all(copies).await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|r| r["goal"]["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every copy reports the same goal: {results:?}"
    );
    assert_eq!(results.iter().filter(|r| r["replayed"] == false).count(), 1);
    let panel = user
        .client
        .data(
            "{ controlPanel { version domains { key activeGoals { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        panel["controlPanel"]["version"], "3",
        "open + one goal per key"
    );
    let bad = user
        .client
        .error_code(set, json!({"k": "x".repeat(129)}))
        .await;
    assert_eq!(bad, "BAD_USER_INPUT");
    server.stop().await;
}
both_stores!(idempotency, an_idempotency_key_appends_once);

async fn concurrent_writes_on_one_portal_conflict_and_lose_nothing(store: Store) {
    let db = fresh_db(store).await;
    // 24 at once from one person: above the default bound of requests in flight.
    let server = Server::start_with(&db, &[("PORTAL_REQUESTS_IN_FLIGHT_PER_PERSON", "100")]).await;
    let user = open_user(&server, "clinic-a").await;
    let rate = r#"mutation($s: Int!) { rateStatus(domain: "housing", score: $s) { version } }"#;
    let writers = (0..24).map(|i| {
        let c = user.client.clone();
        async move { c.gql(rate, json!({"s": i % 10 + 1})).await }
    });
    let results = futures::future::join_all(writers).await;
    let mut ok = 0;
    for r in &results {
        match r.get("errors") {
            None => ok += 1,
            Some(e) => assert_eq!(e[0]["extensions"]["code"], "CONFLICT", "{r}"),
        }
    }
    assert!(ok >= 1);
    let versions: std::collections::BTreeSet<i64> = results
        .iter()
        .filter_map(|r| r["data"]["rateStatus"]["version"].as_str())
        .map(|v| v.parse::<i64>().unwrap())
        .collect();
    assert_eq!(
        versions.len(),
        ok,
        "no two successful writes got the same version"
    );
    let panel = user
        .client
        .data(
            "{ controlPanel { version domains { key ratings } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        panel["controlPanel"]["version"],
        (1 + ok as i64).to_string()
    );
    let housing = panel["controlPanel"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "housing")
        .unwrap()
        .clone();
    assert_eq!(
        housing["ratings"], ok as i64,
        "every acknowledged rating is there, and only those"
    );
    server.stop().await;
}
both_stores!(
    conflicts,
    concurrent_writes_on_one_portal_conflict_and_lose_nothing
);
