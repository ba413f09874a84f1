//! The portal core end to end over real HTTP, and a restart of the server
//! process that must bring back exactly the same state.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::json;

async fn slice_survives_a_restart(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let c = &user.client;

    let rated = c
        .data(
            r#"mutation { rateStatus(domain: "housing", score: 4, note: "Cramped, שלום 🌱") { version caughtUp } }"#,
            json!({}),
        )
        .await;
    assert_eq!(rated["rateStatus"]["caughtUp"], true);
    c.data(
        r#"mutation { rateStatus(domain: "housing", score: 6, note: "Better") { version } }"#,
        json!({}),
    )
    .await;
    c.data(
        r#"mutation { addLifeDomain(key: "music", name: "Music") { version } }"#,
        json!({}),
    )
    .await;

    let goal = c
        .data(
            r#"mutation { setGoal(domain: "housing", title: "Find a flat", description: "two rooms") { goal { uuid } } }"#,
            json!({}),
        )
        .await["setGoal"]["goal"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let plan =
        "mutation($g: ID!, $t: String!) { planActivity(goalId: $g, title: $t) { activity { uuid } } }";
    let a1 = c
        .data(plan, json!({"g": goal, "t": "Call the office"}))
        .await["planActivity"]["activity"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let a2 = c.data(plan, json!({"g": goal, "t": "Visit a flat"})).await["planActivity"]
        ["activity"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    c.data(plan, json!({"g": goal, "t": "Sign"})).await;
    c.data(
        "mutation($a: ID!) { completeActivity(activityId: $a) { version } }",
        json!({"a": a1}),
    )
    .await;
    c.data(
        "mutation($a: ID!) { dropActivity(activityId: $a, reason: \"too far\") { version } }",
        json!({"a": a2}),
    )
    .await;
    c.data(
        "mutation($g: ID!) { reviseGoal(goalId: $g, title: \"Find a flat near work\") { version } }",
        json!({"g": goal}),
    )
    .await;

    let done_goal = c
        .data(
            r#"mutation { setGoal(domain: "music", title: "Play again") { goal { uuid } } }"#,
            json!({}),
        )
        .await["setGoal"]["goal"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    c.data(
        "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }",
        json!({"g": done_goal}),
    )
    .await;

    let panel = c.data(CONTROL_PANEL, json!({})).await;
    let domains = panel["controlPanel"]["domains"].as_array().unwrap();
    assert_eq!(
        domains.len(),
        9,
        "eight default domains and one of the user's own"
    );
    let housing = domains.iter().find(|d| d["key"] == "housing").unwrap();
    assert_eq!(housing["ratings"], 2);
    assert_eq!(housing["latestStatus"]["score"], 6);
    let goals = housing["activeGoals"].as_array().unwrap();
    assert_eq!(goals.len(), 1);
    assert_eq!(goals[0]["title"], "Find a flat near work");
    assert_eq!(
        goals[0]["progress"],
        json!({"planned": 1, "done": 1, "dropped": 1, "percentDone": 50})
    );
    assert_eq!(goals[0]["activities"].as_array().unwrap().len(), 3);
    let music = domains.iter().find(|d| d["key"] == "music").unwrap();
    assert_eq!(music["custom"], true);
    assert!(
        music["activeGoals"].as_array().unwrap().is_empty(),
        "achieved goals leave the panel"
    );
    assert_eq!(panel["controlPanel"]["version"], "13");

    let history = c
        .data(
            "query($g: ID!) { goalHistory(goalId: $g) { nodes { sequence eventType actorId actorRole } } }",
            json!({"g": goal}),
        )
        .await;
    let types: Vec<&str> = history["goalHistory"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "GOAL_SET",
            "ACTIVITY_PLANNED",
            "ACTIVITY_PLANNED",
            "ACTIVITY_PLANNED",
            "ACTIVITY_COMPLETED",
            "ACTIVITY_DROPPED",
            "GOAL_REVISED"
        ]
    );
    assert_eq!(
        history["goalHistory"]["nodes"][0]["actorId"],
        user.id.to_string()
    );
    let statuses = c
        .data(
            r#"{ statusHistory(domain: "housing") { nodes { score note } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        statuses["statusHistory"],
        json!({"nodes": [{"score": 4, "note": "Cramped, שלום 🌱"}, {"score": 6, "note": "Better"}]})
    );
    let achieved = c
        .data(
            "query($g: ID!) { goal(goalId: $g) { state closedAt } }",
            json!({"g": done_goal}),
        )
        .await;
    assert_eq!(achieved["goal"]["state"], "ACHIEVED");

    server.stop().await;
    let server = Server::start(&db).await;
    let c = server.client(user.client.token.clone());
    assert_eq!(
        c.data(CONTROL_PANEL, json!({})).await,
        panel,
        "same state after a restart"
    );
    assert_eq!(
        c.data(
            "query($g: ID!) { goalHistory(goalId: $g) { nodes { sequence eventType actorId actorRole } } }",
            json!({"g": goal})
        )
        .await,
        history
    );
    server.stop().await;
}
both_stores!(slice_and_restart, slice_survives_a_restart);

async fn rules_reach_the_client_as_bad_user_input(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let c = open_user(&server, "clinic-a").await.client;
    // Input that could never be valid, and valid input the state forbids.
    let (bad, state) = ("BAD_USER_INPUT", "FAILED_PRECONDITION");
    let cases = [
        (
            r#"mutation { rateStatus(domain: "housing", score: 0) { version } }"#,
            "between 1 and 10",
            bad,
        ),
        (
            r#"mutation { rateStatus(domain: "nowhere", score: 5) { version } }"#,
            "does not exist",
            bad,
        ),
        (
            r#"mutation { setGoal(domain: "housing", title: "   ") { version } }"#,
            "`title` must not be empty",
            bad,
        ),
        (
            r#"mutation { addLifeDomain(key: "Bad Key", name: "x") { version } }"#,
            "field `key`",
            bad,
        ),
        (
            r#"mutation { openPortal { version } }"#,
            "already open",
            state,
        ),
    ];
    for (query, message, code) in cases {
        let response = c.gql(query, json!({})).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], code,
            "{query}: {response}"
        );
        let text = response["errors"][0]["message"].as_str().unwrap();
        assert!(text.contains(message), "{query}: {text}");
    }
    let long = "x".repeat(201);
    let response = c
        .gql(
            "mutation($t: String!) { setGoal(domain: \"housing\", title: $t) { version } }",
            json!({"t": long}),
        )
        .await;
    assert!(response["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at most 200 characters"));
    let goal = c
        .data(
            r#"mutation { setGoal(domain: "housing", title: "Move") { goal { uuid } } }"#,
            json!({}),
        )
        .await["setGoal"]["goal"]["uuid"]
        .clone();
    c.data(
        "mutation($g: ID!) { abandonGoal(goalId: $g, reason: \"later\") { version } }",
        json!({"g": goal}),
    )
    .await;
    let response = c
        .gql(
            "mutation($g: ID!) { planActivity(goalId: $g, title: \"x\") { version } }",
            json!({"g": goal}),
        )
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "FAILED_PRECONDITION"
    );
    assert!(response["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("abandoned"));
    let unknown = c
        .error_code(
            "mutation { achieveGoal(goalId: \"00000000-0000-0000-0000-000000000001\") { version } }",
            json!({}),
        )
        .await;
    assert_eq!(unknown, "NOT_FOUND");
    // Nothing partial was stored: the refused commands left no events.
    let panel = c.data("{ controlPanel { version } }", json!({})).await;
    assert_eq!(
        panel["controlPanel"]["version"], "3",
        "open, set goal, abandon goal"
    );
    server.stop().await;
}
both_stores!(domain_rules, rules_reach_the_client_as_bad_user_input);

async fn several_mutations_in_one_request_report_their_own_results(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let c = open_user(&server, "clinic-a").await.client;
    let both = c
        .data(
            r#"mutation { a: setGoal(domain: "housing", title: "A") { goal { uuid } version }
                          b: setGoal(domain: "leisure", title: "B") { goal { uuid } version } }"#,
            json!({}),
        )
        .await;
    assert_ne!(both["a"]["goal"]["uuid"], both["b"]["goal"]["uuid"]);
    assert_ne!(both["a"]["version"], both["b"]["version"]);
    for (alias, title) in [("a", "A"), ("b", "B")] {
        let goal = c
            .data(
                "query($g: ID!) { goal(goalId: $g) { title } }",
                json!({"g": both[alias]["goal"]["uuid"]}),
            )
            .await;
        assert_eq!(goal["goal"]["title"], title);
    }
    server.stop().await;
}
both_stores!(
    one_request_many_mutations,
    several_mutations_in_one_request_report_their_own_results
);
