//! Writes of one person at the same moment to different items of their
//! portal all succeed: a command that loses the race to append is decided
//! again on the new state by the service, not handed back as CONFLICT
//! (issue 14, item 5). Before, 9 of 20 such pairs conflicted on SQLite and
//! 14 of 20 on PostgreSQL.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::json;

/// Rounds of simultaneous writes, and writers in each.
const ROUNDS: usize = 20;
const WRITERS: usize = 4;

async fn simultaneous_writes_to_different_items_all_succeed(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let domains = ["housing", "employment", "education", "leisure"];
    for round in 0..ROUNDS {
        let writes = (0..WRITERS).map(|w| {
            let client = &user.client;
            let (domain, title) = (domains[w % domains.len()], format!("goal {round}-{w}"));
            async move {
                client
                    .gql(
                        "mutation($d: String!, $t: String!) { setGoal(domain: $d, title: $t) { version } }",
                        json!({ "d": domain, "t": title }),
                    )
                    .await
            }
        });
        for response in futures::future::join_all(writes).await {
            assert!(
                response.get("errors").is_none(),
                "round {round}: every write succeeds: {response}"
            );
        }
    }
    // Every goal is there once: nothing lost, nothing written twice.
    let goals = user
        .client
        .data(
            "{ controlPanel { domains { activeGoals { title } } } }",
            json!({}),
        )
        .await;
    let titles: Vec<&str> = goals["controlPanel"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["activeGoals"].as_array().unwrap())
        .map(|g| g["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), ROUNDS * WRITERS, "{titles:?}");
    server.stop().await;
}

both_stores!(
    simultaneous_writes,
    simultaneous_writes_to_different_items_all_succeed
);
