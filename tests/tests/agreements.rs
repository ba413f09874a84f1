//! Expectation agreements over HTTP against both stores: propose, counter,
//! accept, revise, decline, withdraw; every version kept; only the two
//! parties of an active relationship change it.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const PROPOSE: &str = "mutation($r: ID!, $t: AgreementTermsInput!) { proposeAgreement(relationshipId: $r, terms: $t) { agreement { pending { version } } } }";
const ANSWER: &str = "mutation($r: ID!) { FIELD(relationshipId: $r) { version } }";
const VIEW: &str = "query($r: ID!) { agreement(relationshipId: $r) { \
    inForce { version proposedBy outcome terms { providerLooksInDays userRepliesWithin { value unit } notes } } \
    pending { version proposedBy counter } \
    versions { version proposedBy counter outcome decidedAt } } }";

fn terms(days: i32, notes: &str) -> Value {
    json!({
        "initiative": "BOTH",
        "providerLooksInDays": days,
        "userRepliesWithin": { "value": 3, "unit": "WORKING_DAYS" },
        "providerRepliesWithin": { "value": 48, "unit": "HOURS" },
        "openedTogether": true,
        "notes": notes,
    })
}

fn answer(field: &str) -> String {
    ANSWER.replace("FIELD", field)
}

async fn agreements(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    let r = json!({ "r": rel });
    let with = |t: Value| json!({ "r": rel, "t": t });

    // The provider proposes, the user counters, the provider accepts.
    let v1 = kari.client.data(PROPOSE, with(terms(7, ""))).await;
    assert_eq!(v1["proposeAgreement"]["agreement"]["pending"]["version"], 1);
    assert_eq!(
        kari.client
            .error_code(&answer("acceptAgreement"), r.clone())
            .await,
        "FORBIDDEN",
        "the other side answers"
    );
    user.client
        .data(PROPOSE, with(terms(14, "Fortnightly is enough ✓")))
        .await;
    kari.client
        .data(&answer("acceptAgreement"), r.clone())
        .await;
    let seen = user.client.data(VIEW, r.clone()).await["agreement"].clone();
    assert_eq!(seen["inForce"]["version"], 2);
    assert_eq!(seen["inForce"]["proposedBy"], "SERVICE_USER");
    assert_eq!(seen["inForce"]["terms"]["providerLooksInDays"], 14);
    assert_eq!(
        seen["inForce"]["terms"]["userRepliesWithin"],
        json!({ "value": 3, "unit": "WORKING_DAYS" })
    );
    assert_eq!(seen["inForce"]["terms"]["notes"], "Fortnightly is enough ✓");
    assert!(seen["pending"].is_null());
    let outcomes: Vec<&str> = seen["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["COUNTERED", "IN_FORCE"]);

    // A revision waits while version 2 holds; declined, version 2 still holds.
    kari.client.data(PROPOSE, with(terms(30, ""))).await;
    let seen = kari.client.data(VIEW, r.clone()).await["agreement"].clone();
    assert_eq!(seen["inForce"]["version"], 2);
    assert_eq!(seen["pending"]["version"], 3);
    user.client
        .data(&answer("declineAgreement"), r.clone())
        .await;
    // The user proposes, then withdraws; then a new revision is accepted.
    user.client.data(PROPOSE, with(terms(10, ""))).await;
    user.client
        .data(&answer("withdrawAgreementProposal"), r.clone())
        .await;
    kari.client.data(PROPOSE, with(terms(21, ""))).await;
    user.client
        .data(&answer("acceptAgreement"), r.clone())
        .await;
    let seen = user.client.data(VIEW, r.clone()).await["agreement"].clone();
    let outcomes: Vec<&str> = seen["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "COUNTERED",
            "SUPERSEDED",
            "DECLINED",
            "WITHDRAWN",
            "IN_FORCE"
        ]
    );
    assert!(seen["versions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["decidedAt"].is_string()));

    // Bad terms, strangers, other roles.
    assert_eq!(
        kari.client.error_code(PROPOSE, with(terms(0, ""))).await,
        "BAD_USER_INPUT"
    );
    let stranger = register_provider(&server, "clinic", "Ola").await;
    assert_eq!(
        stranger.client.error_code(VIEW, r.clone()).await,
        "NOT_FOUND"
    );
    assert_eq!(
        stranger
            .client
            .error_code(PROPOSE, with(terms(7, "")))
            .await,
        "NOT_FOUND"
    );
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic")));
    assert_eq!(auditor.error_code(VIEW, r.clone()).await, "FORBIDDEN");

    // Once the relationship ends, the agreement is history: readable, fixed.
    user.client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            r.clone(),
        )
        .await;
    assert_eq!(
        kari.client.error_code(PROPOSE, with(terms(7, ""))).await,
        "FAILED_PRECONDITION"
    );
    let seen = kari.client.data(VIEW, r.clone()).await;
    assert_eq!(seen["agreement"]["inForce"]["version"], 5);
    server.stop().await;
}
both_stores!(agreements_over_http, agreements);

const ALIGNMENT: &str = "query($r: ID!, $t: DateTime) { alignment(relationshipId: $r, asOf: $t) { \
    agreementVersion aligned user { overdueReplies } provider { overdueReplies overdueSince } \
    lastProviderLook providerLookDue providerLookOverdue } }";

async fn alignment(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    let at = |hours: i64| (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339();
    let ask = |hours: i64| json!({ "r": rel, "t": at(hours) });
    let before = at(0);

    // No agreement: nothing to keep.
    let a = user.client.data(ALIGNMENT, ask(1)).await["alignment"].clone();
    assert!(a["agreementVersion"].is_null());
    assert_eq!(a["aligned"], true);

    let mut t = terms(1, "");
    t["providerRepliesWithin"] = json!({ "value": 1, "unit": "HOURS" });
    t["userRepliesWithin"] = json!({ "value": 1, "unit": "WORKING_DAYS" });
    kari.client.data(PROPOSE, json!({ "r": rel, "t": t })).await;
    user.client
        .data(&answer("acceptAgreement"), json!({ "r": rel }))
        .await;

    // The user writes; an hour later the provider is behind.
    let started = user
        .client
        .data(
            "mutation($p: ID!) { startConversation(subject: \"Hi\", body: \"Are you there?\", providerIds: [$p]) { conversation { uuid } } }",
            json!({ "p": kari.id }),
        )
        .await;
    let thread = started["startConversation"]["conversation"]["uuid"].clone();
    wait_caught_up(&server).await;
    let a = kari.client.data(ALIGNMENT, ask(0)).await["alignment"].clone();
    assert_eq!(a["aligned"], true, "not due yet: {a}");
    let a = kari.client.data(ALIGNMENT, ask(2)).await["alignment"].clone();
    assert_eq!(a["agreementVersion"], 1);
    assert_eq!(a["provider"]["overdueReplies"], 1, "{a}");
    assert!(a["provider"]["overdueSince"].is_string());
    assert_eq!(a["aligned"], false);
    // Answering clears it at once; the user now has a working day.
    kari.client
        .data(
            "mutation($c: ID!) { postMessage(conversationId: $c, body: \"Yes!\") { version } }",
            json!({ "c": thread }),
        )
        .await;
    let a = user.client.data(ALIGNMENT, ask(2)).await["alignment"].clone();
    assert_eq!(a["provider"]["overdueReplies"], 0, "{a}");
    assert_eq!(a["user"]["overdueReplies"], 0);
    let a = user.client.data(ALIGNMENT, ask(24 * 5)).await["alignment"].clone();
    assert_eq!(a["user"]["overdueReplies"], 1, "{a}");
    assert_eq!(a["providerLookOverdue"], true, "no look in five days: {a}");
    // Asked for a time before the agreement, there was none.
    let a = user
        .client
        .data(ALIGNMENT, json!({ "r": rel, "t": before }))
        .await["alignment"]
        .clone();
    assert!(a["agreementVersion"].is_null(), "{a}");
    // A look at the portal counts as the provider looking in.
    grant(&user, &rel, &["CORE"], None).await;
    kari.client
        .data(
            "query($p: ID) { controlPanel(portalId: $p) { version } }",
            json!({ "p": user.id }),
        )
        .await;
    wait_caught_up(&server).await;
    let a = user.client.data(ALIGNMENT, ask(1)).await["alignment"].clone();
    assert!(a["lastProviderLook"].is_string(), "{a}");
    assert_eq!(a["providerLookOverdue"], false);
    // Strangers get nothing.
    let stranger = register_provider(&server, "clinic", "Ola").await;
    assert_eq!(
        stranger.client.error_code(ALIGNMENT, ask(1)).await,
        "NOT_FOUND"
    );
    server.stop().await;
}
both_stores!(alignment_over_http, alignment);
