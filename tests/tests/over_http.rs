//! GraphQL over HTTP by its specification (issue 14, item 6): queries over
//! GET (never mutations), batches, `application/graphql-response+json`, and
//! CORS for configured origins only.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const ORIGIN: &str = "https://app.example.org";

async fn graphql_over_http(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[("PORTAL_CORS_ORIGINS", ORIGIN), ("PORTAL_MAX_BATCH", "3")],
    )
    .await;
    let user = open_user(&server, "clinic-a").await;
    let jwt = token(user.id, Role::ServiceUser, "clinic-a");
    let http = reqwest::Client::new();
    let url = format!("{}/graphql", server.base);

    // A query over GET.
    let response = http
        .get(&url)
        .bearer_auth(&jwt)
        .query(&[("query", "query($n: Int!) { me { personId } controlPanel { recentChanges(first: $n) { nodes { eventType } } } }"), ("variables", r#"{"n": 1}"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["me"]["personId"],
        user.id.to_string(),
        "{body}"
    );
    assert_eq!(
        body["data"]["controlPanel"]["recentChanges"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A mutation over GET: 405, and nothing written.
    let response = http
        .get(&url)
        .bearer_auth(&jwt)
        .query(&[(
            "query",
            r#"mutation { setGoal(domain: "housing", title: "by GET") { version } }"#,
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    let goals = user
        .client
        .data(
            "{ controlPanel { domains { activeGoals { title } } } }",
            json!({}),
        )
        .await;
    assert!(!goals.to_string().contains("by GET"), "{goals}");

    // Without a query, GET shows GraphiQL.
    let page = http.get(&url).send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    // A batch: answered in order; past the set size, refused.
    let batch = json!([
        { "query": "{ me { personId } }" },
        { "query": "mutation { rateStatus(domain: \"housing\", score: 6) { version } }" },
        { "query": "{ nope }" },
    ]);
    let body: Value = http
        .post(&url)
        .bearer_auth(&jwt)
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answers = body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {body}"));
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["data"]["me"]["personId"], user.id.to_string());
    assert!(
        answers[1]["data"]["rateStatus"]["version"]
            .as_str()
            .is_some_and(|v| v.parse::<i64>().is_ok()),
        "{body}"
    );
    assert_eq!(
        answers[2]["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    let four: Vec<Value> = (0..4)
        .map(|_| json!({ "query": "{ me { personId } }" }))
        .collect();
    let response = http
        .post(&url)
        .bearer_auth(&jwt)
        .json(&four)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // application/graphql-response+json when asked for: 400 for a request
    // that never ran, 200 for one whose field was refused.
    let ask = |query: &str| {
        http.post(&url)
            .bearer_auth(&jwt)
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
    };
    let response = ask("{ me { personId }").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/graphql-response+json"
    );
    let refused = format!(
        "{{ controlPanel(portalId: \"{}\") {{ version }} }}",
        Uuid::new_v4()
    );
    let response = ask(&refused).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // Clients that do not ask get application/json, 200.
    let response = http
        .post(&url)
        .json(&json!({ "query": "{ me { personId }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    // CORS: the configured origin's preflight is answered and allowed;
    // another origin's is not allowed.
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight(ORIGIN).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    let other = preflight("https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let response = http
        .post(&url)
        .header("origin", ORIGIN)
        .bearer_auth(&jwt)
        .json(&json!({ "query": "{ me { personId } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert!(response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
    server.stop().await;

    // No origin is allowed by default.
    let server = Server::start(&db).await;
    let response = http
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    server.stop().await;
}

both_stores!(over_http, graphql_over_http);
