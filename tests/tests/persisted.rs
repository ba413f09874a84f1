//! Apollo's automatic persisted queries over POST (issue 14, item 6): a hash
//! the server does not hold is PERSISTED_QUERY_NOT_FOUND, the query sent
//! with its hash is kept and a hash alone then runs it; a wrong hash, or a
//! document over the limits, is never kept; GET takes whole queries only.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(server: &Server, token: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/graphql", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn persisted_queries(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let jwt = token(user.id, Role::ServiceUser, "clinic-a");
    let query = "query Panel { controlPanel { portalId domains { key } } }";
    let hash = hex::encode(Sha256::digest(query.as_bytes()));

    // Not held yet: the answer Apollo's clients look for.
    let missing = post(&server, &jwt, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(
        missing["errors"][0]["message"], "PersistedQueryNotFound",
        "{missing}"
    );
    assert_eq!(
        missing["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // Sent with its hash: it runs and is kept; then the hash alone runs it.
    let first = post(
        &server,
        &jwt,
        json!({ "query": query, "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(
        first["data"]["controlPanel"]["portalId"],
        user.id.to_string()
    );
    let again = post(&server, &jwt, json!({ "extensions": extension(&hash) })).await;
    assert_eq!(again, first);
    // Kept for everyone, answered for each caller by their own rights.
    let other = open_user(&server, "clinic-a").await;
    let theirs = post(
        &server,
        &token(other.id, Role::ServiceUser, "clinic-a"),
        json!({ "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(
        theirs["data"]["controlPanel"]["portalId"],
        other.id.to_string()
    );

    // A hash that is not the query's is refused and keeps nothing.
    let wrong = hex::encode(Sha256::digest(b"something else"));
    let mismatch = post(
        &server,
        &jwt,
        json!({ "query": query, "extensions": extension(&wrong) }),
    )
    .await;
    assert_eq!(
        mismatch["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{mismatch}"
    );
    let still = post(&server, &jwt, json!({ "extensions": extension(&wrong) })).await;
    assert_eq!(
        still["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // A document over the limits is refused before it could be kept.
    let deep: String = std::iter::once("{".to_string())
        .chain((0..2_001).map(|i| format!(" a{i}: __typename")))
        .chain(std::iter::once(" }".to_string()))
        .collect();
    let deep_hash = hex::encode(Sha256::digest(deep.as_bytes()));
    let refused = post(
        &server,
        &jwt,
        json!({ "query": deep, "extensions": extension(&deep_hash) }),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert!(refused["data"].is_null(), "{refused}");
    let never = post(
        &server,
        &jwt,
        json!({ "extensions": extension(&deep_hash) }),
    )
    .await;
    assert_eq!(
        never["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{never}"
    );

    // GET takes whole queries only: a hash alone could name a mutation.
    let mutation = "mutation { rateStatus(domain: \"housing\", score: 3) { version } }";
    let mutation_hash = hex::encode(Sha256::digest(mutation.as_bytes()));
    post(
        &server,
        &jwt,
        json!({ "query": mutation, "extensions": extension(&mutation_hash) }),
    )
    .await;
    let version = |v: Value| v["controlPanel"]["version"].clone();
    let before = version(
        user.client
            .data("{ controlPanel { version } }", json!({}))
            .await,
    );
    let got = reqwest::Client::new()
        .get(format!("{}/graphql", server.base))
        .bearer_auth(&jwt)
        .query(&[("extensions", extension(&mutation_hash).to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 400);
    let body: Value = got.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        version(
            user.client
                .data("{ controlPanel { version } }", json!({}))
                .await
        ),
        before
    );
    server.stop().await;
}

both_stores!(automatic_persisted_queries, persisted_queries);
