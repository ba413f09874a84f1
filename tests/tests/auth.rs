//! Who may do what: missing, forged and expired tokens; another person's
//! portal; another organisation; roles that have no business in a portal.
#![allow(clippy::unwrap_used)]

use api::auth::{Role, TokenKeys};
use api::settings::Secret;
use portal_tests::*;
use serde_json::json;
use uuid::Uuid;

const PANEL: &str = "{ controlPanel { version } }";
const RATE: &str = r#"mutation { rateStatus(domain: "housing", score: 5) { version } }"#;

async fn tokens_and_tenancy_are_enforced(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let alice = open_user(&server, "clinic-a").await;

    // No token, a malformed header, a forged signature, an expired token.
    let anonymous = server.client(None);
    assert_eq!(
        anonymous.error_code(PANEL, json!({})).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        anonymous.error_code(RATE, json!({})).await,
        "UNAUTHENTICATED"
    );
    let garbage = server.client(Some("not-a-jwt".into()));
    assert_eq!(
        garbage.error_code(PANEL, json!({})).await,
        "UNAUTHENTICATED"
    );
    let forged_keys = TokenKeys::new(&Secret::new("another-key-of-an-attacker-0123456789abcdef"));
    let forged = server.client(Some(
        forged_keys
            .mint(alice.id, Role::ServiceUser, "clinic-a", 600)
            .unwrap(),
    ));
    assert_eq!(forged.error_code(PANEL, json!({})).await, "UNAUTHENTICATED");
    assert_eq!(forged.error_code(RATE, json!({})).await, "UNAUTHENTICATED");
    let test_keys = TokenKeys::new(&Secret::new(TEST_KEY));
    let expired = server.client(Some(
        test_keys
            .mint(alice.id, Role::ServiceUser, "clinic-a", -10)
            .unwrap(),
    ));
    let response = expired.gql(PANEL, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(
        response["errors"][0]["message"],
        "the bearer token has expired"
    );

    // Another person in the same organisation cannot read Alice's portal.
    let bob = open_user(&server, "clinic-a").await;
    let other = bob
        .client
        .error_code(
            "query($p: ID!) { controlPanel(portalId: $p) { version } }",
            json!({"p": alice.id}),
        )
        .await;
    assert_eq!(other, "FORBIDDEN");
    let other_history = bob
        .client
        .error_code(
            "query($p: ID!) { statusHistory(portalId: $p, domain: \"housing\") { nodes { score } } }",
            json!({"p": alice.id}),
        )
        .await;
    assert_eq!(other_history, "FORBIDDEN");

    // Alice's own id with another organisation's token: refused both ways.
    let elsewhere = server.client(Some(token(alice.id, Role::ServiceUser, "clinic-b")));
    assert_eq!(elsewhere.error_code(PANEL, json!({})).await, "FORBIDDEN");
    assert_eq!(elsewhere.error_code(RATE, json!({})).await, "FORBIDDEN");

    // A provider without a relationship, admins and auditors see no portal
    // content: for the provider there is no such portal (NOT_FOUND), the
    // other roles are refused for their role.
    for role in [
        Role::Provider,
        Role::Admin,
        Role::Auditor,
        Role::Researcher,
        Role::Moderator,
    ] {
        let c = server.client(Some(token(Uuid::new_v4(), role, "clinic-a")));
        let read = c
            .error_code(
                "query($p: ID!) { controlPanel(portalId: $p) { version } }",
                json!({"p": alice.id}),
            )
            .await;
        let want = if role == Role::Provider {
            "NOT_FOUND"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(read, want, "{role:?} read");
        assert_eq!(
            c.error_code(RATE, json!({})).await,
            "FORBIDDEN",
            "{role:?} write"
        );
    }

    // None of the refused writes reached Alice's portal.
    let panel = alice.client.data(PANEL, json!({})).await;
    assert_eq!(panel["controlPanel"]["version"], "1");
    // Errors never leak internals.
    let me = alice
        .client
        .data("{ me { personId role organisation } }", json!({}))
        .await;
    assert_eq!(
        me["me"],
        json!({"personId": alice.id, "role": "SERVICE_USER", "organisation": "clinic-a"})
    );
    server.stop().await;
}
both_stores!(auth, tokens_and_tenancy_are_enforced);
