//! GraphQL subscriptions over WebSocket, by the `graphql-transport-ws`
//! protocol (the one `graphql-ws`, Apollo Client and Python's `gql` speak):
//!
//! - the client sends `connection_init` within the set time (else close
//!   4408), with its bearer token as `{"token": "..."}`, `{"Authorization":
//!   "Bearer ..."}` or `{"authorization": "Bearer ..."}`; a missing or bad
//!   token closes 4403, a second `connection_init` 4429;
//! - `subscribe` before the acknowledgement closes 4401, with the id of a
//!   running subscription 4409, past the subscriptions a socket may hold
//!   4429; a message that is not one of the protocol's closes 4400;
//! - a document that never runs (it does not validate, or passes a limit)
//!   answers `error` with the GraphQL errors; one that runs (a refusal of
//!   its resolver included) sends `next` per result and `complete` at its end;
//! - a person may hold a set number of sockets at once (over it: 4429);
//! - the server pings at `websocket.keepalive`; a client silent for a whole
//!   interval after a ping is closed (1001), freeing its place.
//!
//! async-graphql's own handler closes every failure with 1002 and ignores
//! duplicate ids, so the service speaks the protocol itself, over
//! async-graphql's executor (the same `Limited` schema as HTTP).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::clock::Clock;
use crate::context::{Receipts, RequestContext};
use crate::limits::Limited;
use crate::schema::PortalSchema;
use crate::service::Service;

/// The protocol's close codes.
pub mod close {
    pub const BAD_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY: u16 = 4429;
    /// The client stopped answering: WebSocket's own "going away".
    pub const GOING_AWAY: u16 = 1001;
}

/// The open sockets of each person (organisation, person id).
pub type Sockets = crate::rate::Holds<(String, Uuid)>;

/// What a subscription stream yields: its id and the message to send.
type Outgoing = BoxStream<'static, (String, Value)>;

/// Serves one socket until either side closes it.
pub async fn serve(
    mut socket: WebSocket,
    service: Arc<Service>,
    schema: Limited<PortalSchema>,
    sockets: Arc<Sockets>,
    client_address: Option<String>,
) {
    let limits = service.settings.websocket.clone();
    // connection_init, in time (pings may come first: the protocol allows
    // them at any time).
    let deadline = tokio::time::Instant::now() + limits.init_timeout;
    let payload = loop {
        let init = tokio::time::timeout_at(deadline, next_message(&mut socket)).await;
        let message = match init {
            Err(_) => {
                let reason = "Connection initialisation timeout";
                return shut(&mut socket, close::INIT_TIMEOUT, reason).await;
            }
            Ok(Incoming::Closed) => return,
            Ok(Incoming::Bad(reason)) => {
                return shut(&mut socket, close::BAD_MESSAGE, &reason).await
            }
            Ok(Incoming::Message(message)) => message,
        };
        match message["type"].as_str() {
            Some("connection_init") => {
                break message.get("payload").cloned().unwrap_or(Value::Null)
            }
            Some("ping") => {
                if send(&mut socket, json!({ "type": "pong" })).await.is_err() {
                    return;
                }
            }
            Some("pong") => {}
            Some("subscribe") => {
                return shut(&mut socket, close::UNAUTHORIZED, "Unauthorized").await
            }
            _ => {
                let reason = "expected connection_init";
                return shut(&mut socket, close::BAD_MESSAGE, reason).await;
            }
        }
    };
    let caller = match service
        .auth
        .verify_header(bearer(&payload).as_deref())
        .await
    {
        Ok(caller) => caller,
        Err(_) => return shut(&mut socket, close::FORBIDDEN, "Forbidden").await,
    };
    let key = (caller.organisation.clone(), caller.subject);
    let Some(_held) = sockets.hold(key, limits.max_sockets_per_person) else {
        let reason = "Too many sockets for this person";
        return shut(&mut socket, close::TOO_MANY, reason).await;
    };
    let mut data = Data::default();
    data.insert(RequestContext {
        caller: Ok(caller),
        request_id: Uuid::new_v4().to_string(),
        client_address,
        receipts: Arc::new(Receipts::default()),
        over_websocket: true,
        clock: Clock::Wall,
        read_after: None,
    });
    let data = Arc::new(data);
    if send(&mut socket, json!({ "type": "connection_ack" }))
        .await
        .is_err()
    {
        return;
    }
    let mut running: SelectAll<Abortable<Outgoing>> = SelectAll::new();
    // The running subscriptions by id. Completing one aborts its stream,
    // which then ends without another message, so an id used again is a
    // new subscription and nothing of the old one reaches it.
    let mut ids: HashMap<String, AbortHandle> = HashMap::new();
    // The server pings at each interval; a client that has sent nothing
    // since the previous ping (not even its pong) is gone, and its socket is
    // closed so that it stops counting against the person's sockets.
    let mut keepalive = tokio::time::interval(limits.keepalive);
    keepalive.tick().await;
    let mut heard = true;
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if !heard {
                    let reason = "No answer to ping";
                    return shut(&mut socket, close::GOING_AWAY, reason).await;
                }
                heard = false;
                if send(&mut socket, json!({ "type": "ping" })).await.is_err() {
                    return;
                }
            }
            incoming = next_message(&mut socket) => {
                heard = true;
                let message = match incoming {
                    Incoming::Closed => return,
                    Incoming::Bad(reason) => {
                        return shut(&mut socket, close::BAD_MESSAGE, &reason).await
                    }
                    Incoming::Message(message) => message,
                };
                match message["type"].as_str() {
                    Some("connection_init") => {
                        let reason = "Too many initialisation requests";
                        return shut(&mut socket, close::TOO_MANY, reason).await;
                    }
                    Some("ping") => {
                        if send(&mut socket, json!({ "type": "pong" })).await.is_err() {
                            return;
                        }
                    }
                    Some("pong") => {}
                    Some("complete") => {
                        if let Some(handle) = message["id"].as_str().and_then(|id| ids.remove(id)) {
                            handle.abort();
                        }
                    }
                    Some("subscribe") => {
                        let (Some(id), Some(payload)) =
                            (message["id"].as_str(), message.get("payload"))
                        else {
                            let reason = "subscribe needs an id and a payload";
                            return shut(&mut socket, close::BAD_MESSAGE, reason).await;
                        };
                        if ids.contains_key(id) {
                            let reason = format!("Subscriber for {id} already exists");
                            return shut(&mut socket, close::DUPLICATE_ID, &reason).await;
                        }
                        if ids.len() >= limits.max_subscriptions_per_socket {
                            let reason = "Too many subscriptions on this socket";
                            return shut(&mut socket, close::TOO_MANY, reason).await;
                        }
                        let request: async_graphql::Request =
                            match serde_json::from_value(payload.clone()) {
                                Ok(request) => request,
                                Err(e) => {
                                    let reason = format!("subscribe payload: {e}");
                                    return shut(&mut socket, close::BAD_MESSAGE, &reason).await;
                                }
                            };
                        let (handle, registration) = AbortHandle::new_pair();
                        ids.insert(id.to_string(), handle);
                        let results = schema.execute_stream(request, Some(Arc::clone(&data)));
                        running.push(Abortable::new(
                            subscription(id.to_string(), results),
                            registration,
                        ));
                    }
                    _ => {
                        let reason = "unknown message type";
                        return shut(&mut socket, close::BAD_MESSAGE, reason).await;
                    }
                }
            }
            Some((id, message)) = running.next(), if !running.is_empty() => {
                if matches!(message["type"].as_str(), Some("complete" | "error")) {
                    ids.remove(&id);
                }
                if send(&mut socket, message).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The messages of one subscription: `error` if it never ran (and nothing
/// more), else `next` per result and `complete` at its end.
fn subscription(id: String, results: BoxStream<'static, async_graphql::Response>) -> Outgoing {
    let mut first = true;
    let next_id = id.clone();
    results
        .map(move |mut response| {
            crate::error::code_input_errors(&mut response.errors);
            // Never ran (a document that does not validate, a limit): errors
            // without a path, no data. A resolver's refusal has a path.
            let refused = first
                && response.data == async_graphql::Value::Null
                && response.is_err()
                && response.errors.iter().all(|e| e.path.is_empty());
            first = false;
            if refused {
                json!({ "id": next_id, "type": "error", "payload": response.errors })
            } else {
                json!({ "id": next_id, "type": "next", "payload": response })
            }
        })
        .chain(futures::stream::once({
            let id = id.clone();
            async move { json!({ "id": id, "type": "complete" }) }
        }))
        .scan(false, |errored, message| {
            if *errored {
                return futures::future::ready(None);
            }
            *errored = message["type"] == "error";
            futures::future::ready(Some(message))
        })
        .map(move |message| (id.clone(), message))
        .boxed()
}

/// The bearer header a `connection_init` payload carries, in any of the
/// shapes clients send.
fn bearer(payload: &Value) -> Option<String> {
    if let Some(token) = payload.get("token").and_then(Value::as_str) {
        return Some(format!("Bearer {token}"));
    }
    payload.as_object()?.iter().find_map(|(key, value)| {
        key.eq_ignore_ascii_case("authorization")
            .then(|| value.as_str().map(str::to_string))
            .flatten()
    })
}

enum Incoming {
    Message(Value),
    Bad(String),
    Closed,
}

/// The next protocol message: a JSON object with a `type`.
async fn next_message(socket: &mut WebSocket) -> Incoming {
    loop {
        match socket.recv().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Incoming::Closed,
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<Value>(&text) {
                    Ok(value) if value["type"].is_string() => Incoming::Message(value),
                    Ok(_) => Incoming::Bad("a message needs a type".into()),
                    Err(e) => Incoming::Bad(format!("not JSON: {e}")),
                }
            }
            Some(Ok(Message::Binary(_))) => {
                return Incoming::Bad("binary messages are not part of the protocol".into())
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
        }
    }
}

async fn send(socket: &mut WebSocket, message: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(message.to_string().into())).await
}

async fn shut(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close frame's reason holds at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason[..end];
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await;
}
