//! The holes found from outside (issue 12), each tried as the fuzzer and the
//! attacker tried it: fragment bombs, row-multiplying aliases, idempotency
//! keys reused for other requests, a provider whose relationship ended,
//! introspection by standard clients, token claims, and errors that hyper
//! or axum answer by themselves. (Organisation scoping: `tenancy.rs`.)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use api::auth::{Claims, Role, TokenKeys};
use api::limits::samples::{fragment_bomb, INTROSPECTION_QUERY as INTROSPECTION};
use api::settings::Secret;
use futures::SinkExt;
use portal_tests::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

/// Bounds a request the server must answer promptly (a hang fails the test
/// instead of stalling the suite); not a performance figure.
const PROMPTLY: Duration = Duration::from_secs(20);

async fn fragment_bombs_are_refused_before_validation(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let anonymous = server.client(None);
    let bombs: Vec<_> = [24usize, 30, 30, 60]
        .into_iter()
        .enumerate()
        .map(|(i, levels)| {
            let client = if i % 2 == 0 {
                anonymous.clone()
            } else {
                user.client.clone()
            };
            tokio::spawn(async move {
                tokio::time::timeout(PROMPTLY, client.gql(&fragment_bomb(levels), json!({})))
                    .await
                    .expect("a fragment bomb held the server")
            })
        })
        .collect();
    // Meanwhile the server keeps answering others.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let health = tokio::time::timeout(
            PROMPTLY,
            http.get(format!("{}/healthz", server.base)).send(),
        )
        .await
        .expect("healthz waited behind the bombs")
        .unwrap();
        assert!(health.status().is_success());
    }
    for bomb in bombs {
        let response = bomb.await.unwrap();
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{response}"
        );
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("once its fragments are spread out"),
            "{message}"
        );
    }
    // Over the WebSocket too: the bomb as a subscription gets an error frame.
    let mut socket = connect(&server, &token(user.id, Role::ServiceUser, "clinic-a"))
        .await
        .unwrap();
    let start =
        json!({ "type": "subscribe", "id": "1", "payload": { "query": fragment_bomb(30) } });
    socket
        .send(Frame::Text(start.to_string().into()))
        .await
        .unwrap();
    let answer = next_frame(&mut socket, PROMPTLY)
        .await
        .expect("the bomb held the socket");
    // (Sent as a `next` carrying the error; the protocol's frames are the
    // GraphQL API issue's.)
    assert!(
        answer["type"] == "error" || answer["type"] == "next",
        "{answer}"
    );
    assert!(
        answer.to_string().contains("fragments are spread out"),
        "{answer}"
    );
    // A bomb hidden behind a fragment that does not exist (async-graphql's
    // own checks skip unknown fragments but walk everything above them).
    let hidden = fragment_bomb(31).replace(
        "fragment F0 on Query { __typename }",
        "fragment F0 on Query { ...Missing }",
    );
    let response = tokio::time::timeout(PROMPTLY, anonymous.gql(&hidden, json!({})))
        .await
        .expect("a hidden fragment bomb held the server");
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    assert!(
        response.to_string().contains("does not define"),
        "{response}"
    );
    // As wide as the body allows: 4,000 aliases.
    let wide = format!(
        "{{ {} }}",
        (0..4000)
            .map(|i| format!("a{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(
        anonymous.error_code(&wide, json!({})).await,
        "BAD_USER_INPUT"
    );
    // Ordinary fragments still work.
    let data = user
        .client
        .data(
            "query { ...A } fragment A on Query { me { ...B } } fragment B on Me { personId organisation }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["organisation"], "clinic-a");
    server.stop().await;
}
both_stores!(fragment_bombs, fragment_bombs_are_refused_before_validation);

async fn trail_records(db: &TestDb) -> usize {
    payloads_of(&read_db(db).await, "AccessTrail").await.len()
}

/// Sends a request that must be refused for its complexity (not for a
/// mistake in it).
async fn too_complex(client: &Client, query: &str, variables: Value) {
    let response = client.gql(query, variables).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{response}"
    );
}

async fn row_limits_count_into_complexity(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let provider = register_provider(&server, "clinic-a", "Kari").await;
    relate(&user, &provider).await;
    let thread = provider
        .client
        .data(
            "mutation($u: ID!) { startConversation(subject: \"s\", body: \"b\", userId: $u) { conversation { uuid } } }",
            json!({"u": user.id}),
        )
        .await["startConversation"]["conversation"]["uuid"]
        .clone();
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic-a")));
    let aliases = |n: usize, field: &str| {
        format!(
            "{{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: {field}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let trail = "accessTrail(first: 500) { nodes { position at readerId readerRole subjectId section basis refusal } }";
    let before = trail_records(&db).await;
    // 300 aliases, as the attacker sent them; and 3, few enough fields but
    // 1,500 rows of eight: refused for their complexity.
    assert_eq!(
        auditor.error_code(&aliases(300, trail), json!({})).await,
        "BAD_USER_INPUT"
    );
    too_complex(&auditor, &aliases(3, trail), json!({})).await;
    // Through the edges just as through the nodes (each edge costs its
    // cursor and its node).
    let trail_edges =
        "accessTrail(first: 500) { edges { cursor node { position at readerId readerRole subjectId section basis refusal } } }";
    too_complex(&auditor, &aliases(3, trail_edges), json!({})).await;
    let log =
        "myAccessLog { entries(first: 500) { nodes { position at readerId section basis } } }";
    assert_eq!(
        user.client.error_code(&aliases(300, log), json!({})).await,
        "BAD_USER_INPUT"
    );
    too_complex(&user.client, &aliases(4, log), json!({})).await;
    // The page size comes from a variable just as well.
    let by_variable = |n: usize| {
        format!(
            "query($n: Int!) {{ {} }}",
            (0..n)
                .map(|i| format!(
                    "a{i}: myAccessLog {{ entries(first: $n) {{ nodes {{ position }} }} }}"
                ))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    too_complex(&user.client, &by_variable(12), json!({"n": 500})).await;
    let messages =
        "conversation(conversationId: $c) { messages(first: 100) { nodes { id body at authorId } } }";
    let threads = |n: usize, messages: &str| {
        format!(
            "query($c: ID!) {{ {} }}",
            (0..n)
                .map(|i| format!("a{i}: {messages}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    too_complex(&user.client, &threads(60, messages), json!({"c": thread})).await;
    // Without `first`, a page costs its default size (the first 50).
    let default_page =
        "conversation(conversationId: $c) { messages { nodes { id body at authorId } } }";
    too_complex(
        &user.client,
        &threads(60, default_page),
        json!({"c": thread}),
    )
    .await;
    // Refused before running: nothing was read, so nothing was recorded.
    assert_eq!(trail_records(&db).await, before);
    // One such read, or two, is fine.
    auditor.data(&aliases(2, trail), json!({})).await;
    // (A page of 500 edges costs more than one of nodes: one of them.)
    auditor.data(&aliases(1, trail_edges), json!({})).await;
    user.client.data(&aliases(2, log), json!({})).await;
    user.client.data(&by_variable(2), json!({"n": 500})).await;
    user.client
        .data(&threads(2, default_page), json!({"c": thread}))
        .await;
    let read = user
        .client
        .data(&threads(2, messages), json!({"c": thread}))
        .await;
    assert_eq!(read["a1"]["messages"]["nodes"][0]["body"], "b", "{read}");
    assert!(trail_records(&db).await > before);
    server.stop().await;
}
both_stores!(row_limits, row_limits_count_into_complexity);

async fn an_idempotency_key_belongs_to_one_request(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let rate = "mutation($k: String, $s: Int!) { rateStatus(domain: \"housing\", score: $s, note: \"ok\", idempotencyKey: $k) { version replayed } }";
    let first = user.client.data(rate, json!({"k": "K1", "s": 6})).await;
    assert_eq!(first["rateStatus"]["replayed"], false);
    // The same request again, its arguments inline and in another order: replayed.
    let again = user
        .client
        .data(
            "mutation { rateStatus(note: \"ok\", score: 6, idempotencyKey: \"K1\", domain: \"housing\") { version replayed } }",
            json!({}),
        )
        .await;
    assert_eq!(again["rateStatus"]["replayed"], true);
    assert_eq!(
        again["rateStatus"]["version"],
        first["rateStatus"]["version"]
    );
    // Another mutation, or other arguments, with the same key: refused, nothing stored.
    let add = "mutation { addLifeDomain(key: \"pets\", name: \"Pets\", idempotencyKey: \"K1\") { version replayed } }";
    let response = user.client.gql(add, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "IDEMPOTENCY_KEY_REUSED",
        "{response}"
    );
    assert_eq!(
        user.client
            .error_code(rate, json!({"k": "K1", "s": 2}))
            .await,
        "IDEMPOTENCY_KEY_REUSED"
    );
    let panel = user
        .client
        .data("{ controlPanel { version domains { key } } }", json!({}))
        .await;
    assert_eq!(
        panel["controlPanel"]["version"],
        first["rateStatus"]["version"]
    );
    assert!(!panel.to_string().contains("pets"));
    // The same subject id in another organisation cannot use (or learn) it.
    let elsewhere = server.client(Some(token(user.id, Role::Provider, "clinic-b")));
    let profile = "mutation { saveProviderProfile(displayName: \"B\", profession: NURSE, idempotencyKey: \"K1\") { version } }";
    assert_eq!(
        elsewhere.error_code(profile, json!({})).await,
        "IDEMPOTENCY_KEY_REUSED"
    );
    // A fresh key works.
    let fresh = user
        .client
        .data(add.replace("K1", "K2").as_str(), json!({}))
        .await;
    assert_eq!(fresh["addLifeDomain"]["replayed"], false);
    server.stop().await;
}
both_stores!(idempotency_keys, an_idempotency_key_belongs_to_one_request);

async fn a_provider_whose_relationship_ended_writes_nothing(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let kari = register_provider(&server, "clinic-a", "Kari").await;
    let rel = relate(&user, &kari).await;
    let thread = kari
        .client
        .data(
            "mutation($u: ID!) { startConversation(subject: \"s\", body: \"hello\", userId: $u) { conversation { uuid } } }",
            json!({"u": user.id}),
        )
        .await["startConversation"]["conversation"]["uuid"]
        .clone();
    user.client
        .data(
            "mutation($c: ID!) { postMessage(conversationId: $c, body: \"hi back\") { version } }",
            json!({"c": thread}),
        )
        .await;
    let read =
        "query($c: ID!) { conversation(conversationId: $c) { unread messages { nodes { id } } } }";
    let seen = kari.client.data(read, json!({"c": thread})).await;
    assert_eq!(seen["conversation"]["unread"], 1);
    let last = seen["conversation"]["messages"]["nodes"][1]["id"].clone();
    user.client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            json!({"r": rel}),
        )
        .await;
    let events_before = payloads_of(&read_db(&db).await, "Conversation").await.len();
    let mark = "mutation($c: ID!, $m: ID!) { markRead(conversationId: $c, upTo: $m) { version } }";
    assert_eq!(
        kari.client
            .error_code(mark, json!({"c": thread, "m": last}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        kari.client
            .error_code(
                "mutation($c: ID!) { postMessage(conversationId: $c, body: \"still here?\") { version } }",
                json!({"c": thread}),
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        payloads_of(&read_db(&db).await, "Conversation").await.len(),
        events_before,
        "a refused write was stored"
    );
    // What was written before the end stays readable, and nothing is unread.
    let after = kari.client.data(read, json!({"c": thread})).await;
    assert_eq!(after["conversation"]["unread"], 0);
    assert_eq!(
        after["conversation"]["messages"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let list = kari
        .client
        .data(
            "{ conversations { unreadTotal conversations { nodes { id unread } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["conversations"]["unreadTotal"], 0, "{list}");
    assert_eq!(
        list["conversations"]["conversations"]["nodes"][0]["unread"],
        0
    );
    // The user's thread is read-only now too.
    assert_eq!(
        user.client
            .error_code(
                "mutation($c: ID!) { postMessage(conversationId: $c, body: \"anyone?\") { version } }",
                json!({"c": thread}),
            )
            .await,
        "FORBIDDEN"
    );
    server.stop().await;
}
both_stores!(
    ended_provider,
    a_provider_whose_relationship_ended_writes_nothing
);

async fn standard_clients_can_introspect(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let anonymous = server.client(None);
    let data = anonymous.data(INTROSPECTION, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "ControlPanel"));
    // Python's gql client (graphql-core's introspection query) builds the
    // schema from it and validates a query against it, as code generators do.
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/introspect.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(format!("{}/graphql", server.base))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e} (ops/test installs gql)"));
    assert!(
        out.status.success(),
        "gql could not introspect: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema ok"));
    // The depth limit still holds for ordinary queries, before validation.
    let deep = "{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }";
    let response = anonymous.gql(deep, json!({})).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested 11 levels deep"),
        "{response}"
    );
    server.stop().await;

    // Closed by a setting.
    let closed = Server::start_with(&db, &[("PORTAL_INTROSPECTION", "false")]).await;
    let response = closed.client(None).gql(INTROSPECTION, json!({})).await;
    assert!(
        response["errors"].is_array() || response["data"]["__schema"].is_null(),
        "{response}"
    );
    assert!(
        response["data"]["__schema"]["types"]
            .as_array()
            .is_none_or(|t| t.is_empty()),
        "{response}"
    );
    closed.stop().await;
}
both_stores!(introspection, standard_clients_can_introspect);

fn keys() -> TokenKeys {
    TokenKeys::new(&Secret::new(TEST_KEY))
}

fn claims(subject: Uuid) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: subject,
        role: Role::ServiceUser,
        org: "clinic-a".into(),
        exp: now + 600,
        iat: now,
        nbf: None,
    }
}

async fn token_claims_are_checked(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let me = "{ me { personId } }";
    let refused = |claims: Claims| {
        let client = server.client(Some(keys().sign(&claims).unwrap()));
        async move {
            let response = client.gql(me, json!({})).await;
            assert_eq!(
                response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{claims:?}: {response}"
            );
            response["errors"][0]["message"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let now = chrono::Utc::now().timestamp();
    let base = claims(user.id);
    assert_eq!(
        refused(Claims {
            nbf: Some(now + 3600),
            ..base.clone()
        })
        .await,
        "the bearer token is not valid yet"
    );
    assert_eq!(
        refused(Claims {
            exp: now,
            ..base.clone()
        })
        .await,
        "the bearer token has expired"
    );
    refused(Claims {
        iat: now + 365 * 24 * 3600,
        exp: now + 366 * 24 * 3600,
        ..base.clone()
    })
    .await;
    refused(Claims {
        org: "clinic\u{7}a".into(),
        ..base.clone()
    })
    .await;
    refused(Claims {
        org: "clinic-a\n".into(),
        ..base.clone()
    })
    .await;
    refused(Claims {
        org: "x".repeat(101),
        ..base.clone()
    })
    .await;
    // A subject that is not a UUID.
    let mut raw = serde_json::to_value(&base).unwrap();
    raw["sub"] = json!("alice");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let not_uuid = jsonwebtoken::encode(
        &header,
        &raw,
        &jsonwebtoken::EncodingKey::from_secret(TEST_KEY.as_bytes()),
    )
    .unwrap();
    let response = server.client(Some(not_uuid)).gql(me, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    // Within the leeway: a clock a little behind the issuer's.
    let skewed = server.client(Some(
        keys()
            .sign(&Claims {
                nbf: Some(now + 5),
                iat: now + 5,
                ..base.clone()
            })
            .unwrap(),
    ));
    assert_eq!(
        skewed.data(me, json!({})).await["me"]["personId"],
        json!(user.id)
    );
    // Over 8 KiB: a clear error.
    let big = server.client(Some(format!(
        "{}.{}.{}",
        "a".repeat(4000),
        "b".repeat(4000),
        "c".repeat(400)
    )));
    let response = big.gql(me, json!({})).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(
        response["errors"][0]["message"],
        "the bearer token is larger than 8 KiB"
    );
    // 200 KB: the header block is refused as too large, in JSON.
    let (status, body) = raw_request(
        &server,
        &format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
            "a".repeat(200_000)
        ),
    )
    .await;
    assert_eq!(status, 431);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    server.stop().await;
}
both_stores!(token_claims, token_claims_are_checked);

/// Sends raw bytes and reads the answer: (status, JSON body).
async fn raw_request(server: &Server, request: &str) -> (u16, Value) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PROMPTLY, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&answer);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head.lines().find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        });
                        if length.is_some_and(|n| body.len() >= n) {
                            break;
                        }
                    }
                }
            }
        }
    });
    let shown: String = request.chars().take(80).collect();
    read.await
        .unwrap_or_else(|_| panic!("no answer to {shown:?}"));
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, json)
}

async fn every_error_has_a_json_body(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..150)
                    .map(|i| format!("X-Header-{i}: v\r\n"))
                    .collect::<String>()
            ),
            431,
            "BAD_REQUEST",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "v".repeat(100_000)
            ),
            431,
            "BAD_REQUEST",
        ),
        (
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .into(),
            400,
            "BAD_REQUEST",
        ),
        (
            "PUT /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".into(),
            405,
            "BAD_REQUEST",
        ),
        (
            "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            404,
            "NOT_FOUND",
        ),
        (
            "GET /graphql/ws HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = raw_request(&server, &request).await;
        let shown: String = request.chars().take(60).collect();
        // A refused WebSocket upgrade is 400 or 426, as axum decides.
        assert!(
            got == status || (status == 400 && got == 426),
            "{got} {shown:?}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["code"], code,
            "{shown:?}: {body}"
        );
        assert!(body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // And the server goes on answering.
    let body = r#"{"query":"{ __typename }"}"#;
    let ok = raw_request(
        &server,
        &format!("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    )
    .await;
    assert_eq!(ok.0, 200);
    assert_eq!(ok.1["data"]["__typename"], "Query");
    server.stop().await;
}
both_stores!(json_errors, every_error_has_a_json_body);
