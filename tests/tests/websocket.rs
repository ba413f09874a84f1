//! The WebSocket by its protocol, `graphql-transport-ws` (issue 14, item 7),
//! with a real WebSocket client: the token in the shapes clients send, the
//! protocol's close codes, the caps on subscriptions and sockets, and
//! `error` for a subscription refused before it starts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use futures::{SinkExt, StreamExt};
use portal_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

const LIVE: &str = "subscription { liveUpdates { kind change } }";
const WAIT: Duration = Duration::from_secs(5);

/// A socket that has not sent `connection_init` yet.
async fn open(server: &Server) -> Socket {
    let url = format!("{}/graphql/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Frame::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next message, or the close code (as `{"closed": code}`).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an answer in time");
        match frame {
            Some(Ok(Frame::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Frame::Close(Some(close)))) => {
                return json!({ "closed": u16::from(close.code), "reason": close.reason.to_string() })
            }
            Some(Ok(Frame::Close(None))) | None | Some(Err(_)) => return json!({ "closed": null }),
            Some(Ok(_)) => continue,
        }
    }
}

/// The next message of `kind`, skipping others (live updates).
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket).await;
        if message["type"] == kind || message.get("closed").is_some() {
            return message;
        }
    }
}

fn subscribe(id: &str, query: &str) -> Value {
    json!({ "type": "subscribe", "id": id, "payload": { "query": query } })
}

async fn acknowledged(server: &Server, payload: Value) -> Socket {
    let mut socket = open(server).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["type"], "connection_ack", "{payload}: {answer}");
    socket
}

/// The close code, after whatever messages come before it.
async fn closed_with(socket: &mut Socket) -> u64 {
    let answer = next_of(socket, "closed").await;
    answer["closed"]
        .as_u64()
        .unwrap_or_else(|| panic!("expected a close code, got {answer}"))
}

async fn the_websocket_speaks_graphql_transport_ws(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_WS_INIT_TIMEOUT_MS", "300"),
            ("PORTAL_WS_MAX_SUBSCRIPTIONS", "3"),
            ("PORTAL_WS_MAX_SOCKETS_PER_PERSON", "2"),
        ],
    )
    .await;
    let user = open_user(&server, "clinic-a").await;
    let jwt = token(user.id, Role::ServiceUser, "clinic-a");
    // Each part below but the per-person cap uses a person of its own: a
    // socket closed by the client is released when the server notices.
    let fresh = || token(Uuid::new_v4(), Role::ServiceUser, "clinic-a");

    // The token in each shape clients send.
    for payload in [
        json!({ "token": fresh() }),
        json!({ "Authorization": format!("Bearer {}", fresh()) }),
        json!({ "authorization": format!("Bearer {}", fresh()) }),
    ] {
        let socket = acknowledged(&server, payload).await;
        drop(socket);
    }

    // A bad token: 4403.
    let mut socket = open(&server).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "token": "forged" } }),
    )
    .await;
    assert_eq!(closed_with(&mut socket).await, 4403);

    // Nothing sent in time: 4408.
    let mut socket = open(&server).await;
    assert_eq!(closed_with(&mut socket).await, 4408);

    // A subscription before the acknowledgement: 4401.
    let mut socket = open(&server).await;
    send(&mut socket, subscribe("1", LIVE)).await;
    assert_eq!(closed_with(&mut socket).await, 4401);

    // Not JSON: 4400.
    let mut socket = open(&server).await;
    socket.send(Frame::Text("hello".into())).await.unwrap();
    assert_eq!(closed_with(&mut socket).await, 4400);

    // A second connection_init: 4429.
    let once = fresh();
    let mut socket = acknowledged(&server, json!({ "token": once })).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "token": once } }),
    )
    .await;
    assert_eq!(closed_with(&mut socket).await, 4429);

    // Ping is answered with pong; a duplicate id is closed 4409.
    let mut socket = acknowledged(&server, json!({ "token": fresh() })).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    send(&mut socket, subscribe("a", LIVE)).await;
    send(&mut socket, subscribe("a", LIVE)).await;
    assert_eq!(closed_with(&mut socket).await, 4409);

    // Pings may come before connection_init.
    let mut socket = open(&server).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "token": fresh() } }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");

    // Completing a subscription stops it: its id used again is a new
    // subscription, and nothing of the old one comes under it.
    send(&mut socket, subscribe("r", LIVE)).await;
    assert_eq!(
        next(&mut socket).await["payload"]["data"]["liveUpdates"]["kind"],
        "SUBSCRIBED"
    );
    send(&mut socket, json!({ "type": "complete", "id": "r" })).await;
    send(&mut socket, subscribe("r", LIVE)).await;
    let again = next(&mut socket).await;
    assert_eq!(again["id"], "r");
    assert_eq!(
        again["payload"]["data"]["liveUpdates"]["kind"], "SUBSCRIBED",
        "{again}"
    );
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(
        next(&mut socket).await["type"],
        "pong",
        "nothing else for `r`"
    );

    // A completed id may be used again; past three subscriptions: 4429.
    let mut socket = acknowledged(&server, json!({ "token": fresh() })).await;
    send(&mut socket, subscribe("a", LIVE)).await;
    send(&mut socket, json!({ "type": "complete", "id": "a" })).await;
    for id in ["a", "b", "c"] {
        send(&mut socket, subscribe(id, LIVE)).await;
    }
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(
        next_of(&mut socket, "pong").await["type"],
        "pong",
        "three are allowed"
    );
    send(&mut socket, subscribe("d", LIVE)).await;
    assert_eq!(closed_with(&mut socket).await, 4429);

    // Two sockets per person; a third is closed 4429, and one closing frees
    // a place.
    let first = acknowledged(&server, json!({ "token": jwt })).await;
    let _second = acknowledged(&server, json!({ "token": jwt })).await;
    let mut third = open(&server).await;
    send(
        &mut third,
        json!({ "type": "connection_init", "payload": { "token": jwt } }),
    )
    .await;
    assert_eq!(closed_with(&mut third).await, 4429);
    drop(first);
    let mut freed = None;
    for _ in 0..50 {
        let mut socket = open(&server).await;
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": { "token": jwt } }),
        )
        .await;
        if next(&mut socket).await["type"] == "connection_ack" {
            freed = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed.is_some(), "a closed socket frees its place");

    // A document that never runs (it does not validate) is answered `error`,
    // and nothing more for its id; a subscription its resolver refuses
    // ran: `next` with the refusal's code, then `complete`.
    let auditor = token(Uuid::new_v4(), Role::Auditor, "clinic-a");
    let mut socket = acknowledged(&server, json!({ "token": auditor })).await;
    send(&mut socket, subscribe("v", "subscription { nope }")).await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["id"], "v");
    assert_eq!(
        answer["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(
        next(&mut socket).await["type"],
        "pong",
        "no `complete` follows an `error`"
    );
    send(&mut socket, subscribe("x", LIVE)).await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["id"], "x");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    let end = next(&mut socket).await;
    assert_eq!(
        (end["type"].as_str(), end["id"].as_str()),
        (Some("complete"), Some("x")),
        "{end}"
    );

    // A live subscription's first update says it is live.
    let mut socket = acknowledged(&server, json!({ "token": fresh() })).await;
    send(&mut socket, subscribe("y", LIVE)).await;
    let first = next(&mut socket).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["id"], "y");
    assert_eq!(
        first["payload"]["data"]["liveUpdates"]["kind"], "SUBSCRIBED",
        "{first}"
    );
    server.stop().await;
}

both_stores!(
    websocket_protocol,
    the_websocket_speaks_graphql_transport_ws
);

/// Python's gql, a third-party client: a query and a mutation over HTTP,
/// then a live subscription over its graphql-transport-ws transport, which
/// sends the token as `{"authorization": "Bearer ..."}`.
async fn a_python_client_subscribes(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/live.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&server.base)
        .arg(token(user.id, Role::ServiceUser, "clinic-a"))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e} (ops/test installs gql)"));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("live ok"),
        "gql: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

both_stores!(python_client, a_python_client_subscribes);

/// The server pings; a client that answers stays, one that stays silent for
/// a whole interval is closed (1001) and its place under the per-person cap
/// is freed.
async fn silent_clients_are_closed(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_WS_KEEPALIVE_MS", "300"),
            ("PORTAL_WS_MAX_SOCKETS_PER_PERSON", "1"),
        ],
    )
    .await;
    let (talker, mute) = (Uuid::new_v4(), Uuid::new_v4());
    let jwt = |id| token(id, Role::ServiceUser, "clinic-a");
    let mut answering = acknowledged(&server, json!({ "token": jwt(talker) })).await;
    let mut silent = acknowledged(&server, json!({ "token": jwt(mute) })).await;
    // For about four intervals the first answers every ping.
    let until = tokio::time::Instant::now() + Duration::from_millis(1_200);
    let mut pings = 0;
    while tokio::time::Instant::now() < until {
        let wait = until - tokio::time::Instant::now();
        let Ok(Some(Ok(frame))) = tokio::time::timeout(wait, answering.next()).await else {
            continue;
        };
        let message: Value = match frame {
            Frame::Text(text) => serde_json::from_str(&text).unwrap(),
            Frame::Close(close) => panic!("an answering client was closed: {close:?}"),
            _ => continue,
        };
        assert_eq!(message["type"], "ping", "{message}");
        pings += 1;
        send(&mut answering, json!({ "type": "pong" })).await;
    }
    assert!(pings >= 2, "the server pings: {pings}");
    send(&mut answering, json!({ "type": "ping" })).await;
    assert_eq!(
        next_of(&mut answering, "pong").await["type"],
        "pong",
        "still open"
    );
    // The silent one was pinged and then closed as gone.
    assert_eq!(next(&mut silent).await["type"], "ping");
    assert_eq!(closed_with(&mut silent).await, 1001);
    // Its place is free again (the cap is one socket).
    let _back = acknowledged(&server, json!({ "token": jwt(mute) })).await;
    server.stop().await;
}

both_stores!(keepalive, silent_clients_are_closed);
