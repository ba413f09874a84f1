//! Live delivery with real WebSocket clients (`graphql-transport-ws`):
//! participants receive new messages, read receipts and agreement changes as
//! they happen; others receive nothing; the socket needs a valid token and
//! carries no portal reads. With PostgreSQL, a message sent through one
//! service instance reaches a subscriber on another.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::SinkExt;
use portal_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

const UPDATES: &str =
    "subscription { liveUpdates { kind conversationId relationshipId byId body read change version } }";

async fn subscribe(socket: &mut Socket, query: &str) {
    let start = json!({ "type": "subscribe", "id": "1", "payload": { "query": query } });
    socket
        .send(Frame::Text(start.to_string().into()))
        .await
        .unwrap();
}

/// Subscribes to live updates and waits for the first update, which says
/// the subscription is live: nothing sent after it can be missed.
async fn subscribe_live(socket: &mut Socket) {
    subscribe(socket, UPDATES).await;
    let first = update(socket, SECONDS)
        .await
        .expect("the subscription goes live");
    assert_eq!(first["kind"], "SUBSCRIBED", "{first}");
}

/// The next live update on the socket, if one comes in time.
async fn update(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = next_frame(socket, wait).await?;
        if frame["type"] == "next" {
            return Some(frame["payload"]["data"]["liveUpdates"].clone());
        }
    }
}

const SECONDS: Duration = Duration::from_secs(10);

async fn live(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let ola = register_provider(&server, "clinic", "Ola").await;
    let rel = relate(&user, &kari).await;
    let token_of = |c: &Client| c.token.clone().unwrap();

    // A bad token gets no socket.
    assert!(connect(&server, "not-a-token").await.is_err());

    let mut for_kari = connect(&server, &token_of(&kari.client)).await.unwrap();
    let mut for_user = connect(&server, &token_of(&user.client)).await.unwrap();
    let mut for_ola = connect(&server, &token_of(&ola.client)).await.unwrap();
    for socket in [&mut for_kari, &mut for_user, &mut for_ola] {
        subscribe_live(socket).await;
    }

    let started = user
        .client
        .data(
            "mutation($p: ID!) { startConversation(subject: \"Hi\", body: \"Hallo 👋\", providerIds: [$p]) { conversation { id } } }",
            json!({ "p": kari.id }),
        )
        .await;
    let thread = started["startConversation"]["conversation"]["id"].clone();
    let got = update(&mut for_kari, SECONDS)
        .await
        .expect("kari gets the message");
    assert_eq!(got["kind"], "MESSAGE");
    assert_eq!(got["body"], "Hallo 👋");
    assert_eq!(got["conversationId"], thread);
    assert_eq!(got["byId"], user.id.to_string());
    let own = update(&mut for_user, SECONDS).await.unwrap();
    assert_eq!(own["body"], "Hallo 👋", "the author's other devices too");

    // A read receipt reaches the user.
    let view = kari
        .client
        .data(
            "query($c: ID!) { conversation(conversationId: $c) { messages { nodes { id } } } }",
            json!({ "c": thread }),
        )
        .await;
    let first = view["conversation"]["messages"]["nodes"][0]["id"].clone();
    kari.client
        .data(
            "mutation($c: ID!, $m: ID!) { markRead(conversationId: $c, upTo: $m) { version } }",
            json!({ "c": thread, "m": first }),
        )
        .await;
    let receipt = update(&mut for_user, SECONDS).await.unwrap();
    assert_eq!(receipt["kind"], "READ_RECEIPT");
    assert_eq!(receipt["byId"], kari.id.to_string());
    assert_eq!(receipt["read"], 1);

    // An agreement change reaches the other side.
    kari.client
        .data(
            "mutation($r: ID!) { proposeAgreement(relationshipId: $r, terms: { initiative: BOTH, \
             providerLooksInDays: 7, userRepliesWithin: { value: 2, unit: WORKING_DAYS }, \
             providerRepliesWithin: { value: 24, unit: HOURS }, openedTogether: true }) { version } }",
            json!({ "r": rel }),
        )
        .await;
    let change = update(&mut for_user, SECONDS).await.unwrap();
    assert_eq!(change["kind"], "AGREEMENT");
    assert_eq!(change["change"], "PROPOSED");
    assert_eq!(change["byId"], kari.id.to_string());
    let listed = user
        .client
        .data("{ careRelationships { nodes { id uuid } } }", json!({}))
        .await;
    let rel_id = listed["careRelationships"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == rel.as_str())
        .expect("the relationship is listed")["id"]
        .clone();
    assert_eq!(
        change["relationshipId"], rel_id,
        "the relationship's global id"
    );

    // Ola, in no relationship with the user, received none of it.
    assert!(update(&mut for_ola, Duration::from_millis(500))
        .await
        .is_none());

    // A subscription ends when its token runs out.
    let short = api::auth::TokenKeys::new(&api::settings::Secret::new(TEST_KEY))
        .mint(user.id, api::auth::Role::ServiceUser, "clinic", 2)
        .unwrap();
    let mut expiring = connect(&server, &short).await.unwrap();
    subscribe(&mut expiring, UPDATES).await;
    let mut ended = false;
    while let Some(frame) = next_frame(&mut expiring, Duration::from_secs(5)).await {
        if frame["type"] == "complete" || frame["type"] == "error" {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream ended with the token");

    // The socket carries subscriptions, not portal reads.
    let mut socket = connect(&server, &token_of(&user.client)).await.unwrap();
    subscribe(&mut socket, "{ medications { name } }").await;
    let answer = next_frame(&mut socket, SECONDS).await.unwrap();
    assert!(answer.to_string().contains("go over HTTP"), "{answer}");
    server.stop().await;
}
both_stores!(live_over_websocket, live);

/// Two instances of the service on one PostgreSQL database: a message sent
/// through one reaches a subscriber connected to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_crosses_instances() {
    let db = fresh_db(Store::Postgres).await;
    // No polling to fall back on: only NOTIFY can wake B in time.
    let quiet = [("PORTAL_LIVE_POLL_MS", "600000")];
    let a = Server::start_with(&db, &quiet).await;
    let b = Server::start_with(&db, &quiet).await;
    let user = open_user(&a, "clinic").await;
    let kari = register_provider(&a, "clinic", "Kari").await;
    relate(&user, &kari).await;
    let mut on_b = connect(&b, kari.client.token.as_ref().unwrap())
        .await
        .unwrap();
    subscribe_live(&mut on_b).await;
    user.client
        .data(
            "mutation($p: ID!) { startConversation(subject: \"Hi\", body: \"via A\", providerIds: [$p]) { conversation { uuid } } }",
            json!({ "p": kari.id }),
        )
        .await;
    let got = update(&mut on_b, SECONDS).await.expect("delivered on B");
    assert_eq!(got["body"], "via A");
    a.stop().await;
    b.stop().await;
}
