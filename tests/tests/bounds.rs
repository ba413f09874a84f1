//! Every resource has a bound, a setting and a test: requests in flight per
//! person, the time budget of a request, connections per address, and the
//! time to send headers. (Sockets per person and `connection_init`: live.rs
//! and websocket.rs; writes and refused reads per person: ops.rs, floods.rs.)
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use portal_tests::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADD: &str = "mutation($n: String!) { addMedication(name: $n, dose: \"1 mg\", schedule: \"daily\") { version } }";

/// Holds the store's write lock until dropped (a long transaction elsewhere).
async fn lock_writes(db: &TestDb) -> sqlx::pool::PoolConnection<sqlx::Any> {
    let read = read_db(db).await;
    let mut conn = read.pool.acquire().await.unwrap();
    let statements: &[&str] = match db.store {
        Store::Postgres => &["BEGIN", "LOCK TABLE events IN EXCLUSIVE MODE"],
        Store::Sqlite => &["BEGIN IMMEDIATE"],
    };
    for sql in statements {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
    conn
}

async fn requests_are_bounded(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_REQUESTS_IN_FLIGHT_PER_PERSON", "2"),
            ("PORTAL_REQUEST_TIMEOUT_MS", "1500"),
        ],
    )
    .await;
    let user = open_user(&server, "clinic").await;
    let other = open_user(&server, "clinic").await;

    let mut lock = lock_writes(&db).await;
    let started = Instant::now();
    let writes = (0..5).map(|i| {
        let client = user.client.clone();
        async move {
            client
                .error_code(ADD, json!({ "n": format!("m{i}") }))
                .await
        }
    });
    let codes = futures::future::join_all(writes).await;
    let took = started.elapsed();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    let timed_out = codes.iter().filter(|c| *c == "TIMEOUT").count();
    assert_eq!((limited, timed_out), (3, 2), "{codes:?}");
    assert!(
        took < Duration::from_secs(20),
        "cancelled at the budget, not left to run: {took:?}"
    );
    // Another person is not held to this person's count.
    let code = other.client.error_code(ADD, json!({ "n": "x" })).await;
    assert_eq!(code, "TIMEOUT", "blocked by the lock, not refused");

    sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);
    // The cancelled requests gave their connections back: the service answers.
    for i in 0..10 {
        let answer = user
            .client
            .data(ADD, json!({ "n": format!("after{i}") }))
            .await;
        assert!(answer["addMedication"]["version"].is_string(), "{answer}");
    }
    server.stop().await;
}
both_stores!(
    requests_in_flight_and_their_time_are_bounded,
    requests_are_bounded
);

async fn connections_are_bounded(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_CONNECTIONS_PER_ADDRESS", "3"),
            ("PORTAL_HEADER_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    // The fourth is answered 429 with a JSON error and closed.
    let mut fourth = TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), fourth.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("RATE_LIMITED"), "{answer}");

    // Headers sent too slowly: the connection is closed, and its place freed.
    let mut slow = held.pop().unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server closed a slow sender");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    server.stop().await;
}
both_stores!(
    connections_per_address_and_header_time_are_bounded,
    connections_are_bounded
);
