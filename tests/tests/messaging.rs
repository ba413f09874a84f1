//! Secure messaging over HTTP against both stores (first slice): threads
//! with a team, messages with any Unicode and a length limit, read receipts
//! and unread counts, who started each exchange, and a relationship's end
//! making the thread read-only for whom it concerns, with nothing deleted.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const START: &str = "mutation($s: String!, $b: String!, $p: [ID!]!, $u: ID) { \
    startConversation(subject: $s, body: $b, providerIds: $p, userId: $u) { conversation { uuid } } }";
const POST: &str =
    "mutation($c: ID!, $b: String!) { postMessage(conversationId: $c, body: $b) { message { uuid } } }";
const READ: &str =
    "mutation($c: ID!, $m: ID!) { markRead(conversationId: $c, upTo: $m) { version } }";
const VIEW: &str =
    "query($c: ID!) { conversation(conversationId: $c) { subject startedById readOnly unread \
    participants { personId side read active } \
    messages { nodes { id authorId side body startsExchange } } } }";
/// A page of a thread's messages, with cursors.
const PAGE: &str = "query($c: ID!, $first: Int, $after: String, $last: Int, $before: String) { \
    conversation(conversationId: $c) { messages(first: $first, after: $after, last: $last, before: $before) { \
    edges { cursor node { id body } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } }";

/// The uuid of what a mutation created: `v[field][object]["uuid"]`.
fn created(v: &Value, field: &str, object: &str) -> String {
    v[field][object]["uuid"].as_str().unwrap().to_string()
}

/// A page of the thread `c`'s messages as `client` sees them; `window`
/// holds `first`/`after` or `last`/`before`.
async fn messages_page(client: &Client, c: &str, window: Value) -> Value {
    let mut variables = window;
    variables["c"] = json!(c);
    client.data(PAGE, variables).await["conversation"]["messages"].clone()
}

/// The ids of the messages on a page, in order.
fn ids(page: &Value) -> Vec<Value> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect()
}

async fn messaging(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_EXCHANGE_GAP_MINUTES", "1")]).await;
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let ola = register_provider(&server, "clinic", "Ola").await;
    let rel_kari = relate(&user, &kari).await;
    relate(&user, &ola).await;
    let stranger = register_provider(&server, "clinic", "Per").await;

    // A team thread, started by the user.
    let started = user
        .client
        .data(
            START,
            json!({ "s": "Sleep", "b": "Jeg sov dårlig 😴 — مرحبا", "p": [kari.id, ola.id] }),
        )
        .await;
    let c = created(&started, "startConversation", "conversation");
    let cv = json!({ "c": c });
    let reply = kari
        .client
        .data(POST, json!({ "c": c, "b": "Thanks for telling us." }))
        .await;
    let reply_id = created(&reply, "postMessage", "message");
    let list =
        "{ conversations { unreadTotal conversations { nodes { uuid subject startedById messages unread } } } }";
    wait_caught_up(&server).await;
    let listed = ola.client.data(list, json!({})).await["conversations"].clone();
    assert_eq!(listed["unreadTotal"], 2);
    assert_eq!(listed["conversations"]["nodes"][0]["uuid"], c);
    assert_eq!(listed["conversations"]["nodes"][0]["messages"], 2);
    assert_eq!(
        user.client.data(list, json!({})).await["conversations"]["unreadTotal"],
        1
    );
    assert_eq!(
        stranger.client.data(list, json!({})).await["conversations"]["unreadTotal"],
        0
    );
    let seen = ola.client.data(VIEW, cv.clone()).await["conversation"].clone();
    assert_eq!(seen["startedById"], user.id.to_string());
    assert_eq!(seen["unread"], 2);
    assert_eq!(
        seen["messages"]["nodes"][0]["body"],
        "Jeg sov dårlig 😴 — مرحبا"
    );
    assert_eq!(seen["messages"]["nodes"][0]["startsExchange"], true);
    assert_eq!(
        seen["messages"]["nodes"][1]["startsExchange"], false,
        "a reply"
    );
    assert_eq!(seen["messages"]["nodes"][1]["side"], "PROVIDER");
    ola.client
        .data(READ, json!({ "c": c, "m": reply_id }))
        .await;
    let seen = user.client.data(VIEW, cv.clone()).await["conversation"].clone();
    let read_by = |id: Uuid| {
        seen["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["personId"] == id.to_string())
            .unwrap()["read"]
            .clone()
    };
    assert_eq!(read_by(ola.id), 2, "read receipt");
    wait_caught_up(&server).await;
    assert_eq!(
        ola.client.data(list, json!({})).await["conversations"]["unreadTotal"],
        0
    );
    assert_eq!(read_by(kari.id), 2, "one reads what one writes");
    assert_eq!(seen["unread"], 1);

    // Limits, strangers, other roles.
    assert_eq!(
        user.client
            .error_code(POST, json!({ "c": c, "b": "x".repeat(4001) }))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        stranger.client.error_code(VIEW, cv.clone()).await,
        "NOT_FOUND"
    );
    assert_eq!(
        stranger
            .client
            .error_code(POST, json!({ "c": c, "b": "hello" }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        user.client
            .error_code(START, json!({ "s": "x", "b": "y", "p": [stranger.id] }))
            .await,
        "NOT_FOUND",
        "only providers in an active relationship"
    );
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic")));
    assert_eq!(auditor.error_code(VIEW, cv.clone()).await, "FORBIDDEN");

    // Within the gap (one minute here) a message continues the exchange;
    // one after it starts a new one (domain tests: minutes are too long here).
    kari.client
        .data(POST, json!({ "c": c, "b": "Shall we talk on Monday?" }))
        .await;
    let seen = user.client.data(VIEW, cv.clone()).await["conversation"].clone();
    assert_eq!(seen["messages"]["nodes"][2]["startsExchange"], false);

    // Kari's relationship ends: she writes nothing more and reads nothing new;
    // the user and Ola go on; everything stays.
    kari.client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            json!({ "r": rel_kari }),
        )
        .await;
    assert_eq!(
        kari.client
            .error_code(POST, json!({ "c": c, "b": "one more" }))
            .await,
        "FORBIDDEN"
    );
    user.client
        .data(POST, json!({ "c": c, "b": "Only for Ola now" }))
        .await;
    let hers = kari.client.data(VIEW, cv.clone()).await["conversation"].clone();
    assert_eq!(hers["messages"]["nodes"].as_array().unwrap().len(), 3);
    assert!(!hers.to_string().contains("Only for Ola now"));
    let his = ola.client.data(VIEW, cv.clone()).await["conversation"].clone();
    assert_eq!(his["messages"]["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(his["readOnly"], false);

    // Kari comes back: she writes again, and sees nothing of the time between.
    relate(&user, &kari).await;
    kari.client
        .data(POST, json!({ "c": c, "b": "I am back" }))
        .await;
    let hers = kari.client.data(VIEW, cv.clone()).await["conversation"].clone();
    let bodies: Vec<&str> = hers["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    assert!(!bodies.contains(&"Only for Ola now"), "{bodies:?}");
    assert_eq!(bodies[3], "I am back");
    let listed = kari.client.data(list, json!({})).await["conversations"].clone();
    assert_eq!(
        listed["conversations"]["nodes"][0]["messages"], 4,
        "{listed}"
    );

    // The thread pages both ways. Ola sees all five messages; a chat client
    // asks for the newest and pages back from the start cursor.
    let all = ola.client.data(VIEW, cv.clone()).await["conversation"]["messages"]["nodes"].clone();
    let all: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(all.len(), 5);
    let newest = messages_page(&ola.client, &c, json!({ "last": 2 })).await;
    assert_eq!(ids(&newest), all[3..], "{newest}");
    assert_eq!(newest["edges"][1]["node"]["body"], "I am back");
    assert_eq!(newest["pageInfo"]["hasPreviousPage"], true, "{newest}");
    assert_eq!(newest["pageInfo"]["hasNextPage"], false, "{newest}");
    assert_eq!(
        newest["pageInfo"]["startCursor"],
        newest["edges"][0]["cursor"]
    );
    assert_eq!(
        newest["pageInfo"]["endCursor"],
        newest["edges"][1]["cursor"]
    );
    assert_eq!(newest["totalCount"], 5);
    let before = messages_page(
        &ola.client,
        &c,
        json!({ "last": 2, "before": newest["pageInfo"]["startCursor"] }),
    )
    .await;
    assert_eq!(ids(&before), all[1..3], "{before}");
    assert_eq!(before["pageInfo"]["hasPreviousPage"], true, "{before}");
    let oldest = messages_page(
        &ola.client,
        &c,
        json!({ "last": 2, "before": before["pageInfo"]["startCursor"] }),
    )
    .await;
    assert_eq!(ids(&oldest), all[..1], "{oldest}");
    assert_eq!(oldest["pageInfo"]["hasPreviousPage"], false, "{oldest}");
    // Forward from the start, every message exactly once, in order.
    let mut forward = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let page = messages_page(&ola.client, &c, json!({ "first": 2, "after": after })).await;
        pages += 1;
        assert!(pages <= 3, "paging does not end: {page}");
        forward.extend(ids(&page));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(forward, all);
    let past_end = messages_page(
        &ola.client,
        &c,
        json!({ "first": 2, "after": newest["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(past_end["edges"], json!([]), "{past_end}");
    assert_eq!(past_end["pageInfo"]["hasNextPage"], false);
    assert!(past_end["pageInfo"]["endCursor"].is_null());
    // Kari pages through her own view: the message of the time between is
    // on none of her pages.
    let first = messages_page(&kari.client, &c, json!({ "first": 3 })).await;
    let rest = messages_page(
        &kari.client,
        &c,
        json!({ "first": 3, "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{first}");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false, "{rest}");
    let mut hers = ids(&first);
    hers.extend(ids(&rest));
    assert_eq!(hers.len(), 4, "{first} {rest}");
    assert_eq!(rest["edges"][0]["node"]["body"], "I am back");
    assert!(
        !first.to_string().contains("Only for Ola now")
            && !rest.to_string().contains("Only for Ola now")
    );

    // A cursor of another list is not a cursor of this one, either way round;
    // nor is something made up, and the page size is bounded.
    let threads = ola
        .client
        .data(
            "{ conversations { conversations(first: 1) { edges { cursor } } } }",
            json!({}),
        )
        .await;
    let thread_cursor = threads["conversations"]["conversations"]["edges"][0]["cursor"].clone();
    assert!(thread_cursor.is_string(), "{threads}");
    for window in [
        json!({ "c": c, "first": 2, "after": thread_cursor }),
        json!({ "c": c, "last": 2, "before": thread_cursor }),
        json!({ "c": c, "after": "bm90IGEgY3Vyc29y" }),
        json!({ "c": c, "first": 0 }),
        json!({ "c": c, "first": 101 }),
        json!({ "c": c, "last": 0 }),
        json!({ "c": c, "first": 1, "last": 1 }),
    ] {
        assert_eq!(
            ola.client.error_code(PAGE, window.clone()).await,
            "BAD_USER_INPUT",
            "{window}"
        );
    }
    assert_eq!(
        ola.client
            .error_code(
                "query($a: String) { conversations { conversations(after: $a) { nodes { uuid } } } }",
                json!({ "a": newest["pageInfo"]["endCursor"] })
            )
            .await,
        "BAD_USER_INPUT"
    );

    // A provider starts a thread with the user; it becomes read-only when
    // the last provider's relationship ends.
    let second = ola
        .client
        .data(
            START,
            json!({ "s": "Appointment", "b": "See you Tuesday", "p": [], "u": user.id }),
        )
        .await;
    let c2 = json!({ "c": created(&second, "startConversation", "conversation") });
    let rel_ola = domain::care::relationship_id(user.id, ola.id).to_string();
    user.client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            json!({ "r": rel_ola }),
        )
        .await;
    let seen = user.client.data(VIEW, c2.clone()).await["conversation"].clone();
    assert_eq!(seen["readOnly"], true);
    assert_eq!(seen["startedById"], ola.id.to_string());
    assert_eq!(
        user.client
            .error_code(POST, json!({ "c": c2["c"], "b": "still there?" }))
            .await,
        "FORBIDDEN"
    );
    server.stop().await;
}
both_stores!(messaging_over_http, messaging);
