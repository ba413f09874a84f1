//! Global ids, `node` / `nodes` and mutation payloads (issue 14, items 1, 3
//! and 4): a mutation hands back the object it changed with an opaque
//! global id; `node` fetches it again through the same rules as the typed
//! field (the owner sees it, a provider only under a grant, another
//! organisation never) and a provider's read through `node` is on the trail
//! like any other; positions and versions travel as `BigInt` strings.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::{json, Value};

const SET_GOAL: &str = "mutation($k: String) { setGoal(domain: \"housing\", title: \"Find a flat\", idempotencyKey: $k) \
    { goal { id uuid title state } version position replayed caughtUp portalId } }";
const ADD_MEDICATION: &str =
    "mutation { addMedication(name: \"Sertraline\", dose: \"50 mg\", schedule: \"mornings\") \
    { medication { id uuid name } version } }";
const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id \
    ... on Goal { uuid title } ... on Medication { uuid name } ... on Relationship { uuid status } } }";
const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";
const LOG: &str = "{ myAccessLog { entries { nodes { section basis query readerId } } } }";

fn big_int(value: &Value) -> i64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a BigInt travels as a string, got {value}"))
        .parse()
        .unwrap()
}

async fn nodes_and_payloads(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;

    // The payload carries the goal, with a global id that is not its uuid.
    let set = user.client.data(SET_GOAL, json!({ "k": "goal-1" })).await["setGoal"].clone();
    let goal = set["goal"].clone();
    let goal_id = goal["id"].as_str().unwrap().to_string();
    assert_eq!(goal["title"], "Find a flat");
    assert_eq!(goal["state"], "ACTIVE");
    assert_ne!(goal_id, goal["uuid"].as_str().unwrap());
    assert!(big_int(&set["version"]) >= 2, "{set}");
    assert!(big_int(&set["position"]) >= 1, "{set}");
    assert_eq!(set["replayed"], false);
    assert_eq!(set["caughtUp"], true);
    assert_eq!(set["portalId"], user.id.to_string());
    // The same request again replays the same goal.
    let again = user.client.data(SET_GOAL, json!({ "k": "goal-1" })).await["setGoal"].clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["goal"]["id"], goal_id);
    assert_eq!(again["version"], set["version"]);

    let medication =
        user.client.data(ADD_MEDICATION, json!({})).await["addMedication"]["medication"].clone();
    let medication_id = medication["id"].as_str().unwrap().to_string();

    // `node` gives the same object back, typed.
    let node = user.client.data(NODE, json!({ "id": goal_id })).await["node"].clone();
    assert_eq!(node["__typename"], "Goal");
    assert_eq!(node["uuid"], goal["uuid"]);
    assert_eq!(node["title"], "Find a flat");
    // Arguments take the global id, or the uuid.
    for id in [goal_id.as_str(), goal["uuid"].as_str().unwrap()] {
        let got = user
            .client
            .data(
                "query($g: ID!) { goal(goalId: $g) { id } }",
                json!({ "g": id }),
            )
            .await;
        assert_eq!(got["goal"]["id"], goal_id);
    }
    // A global id of another type where a goal's is asked for.
    assert_eq!(
        user.client
            .error_code(
                "query($g: ID!) { goal(goalId: $g) { id } }",
                json!({ "g": medication_id })
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        user.client
            .error_code(NODE, json!({ "id": "not-an-id" }))
            .await,
        "BAD_USER_INPUT"
    );

    // An exercise log entry is a node too, and completing takes its id.
    let entry = user
        .client
        .data(
            "mutation { startExercise(exercise: \"mindfulness\") { entry { id uuid } } }",
            json!({}),
        )
        .await["startExercise"]["entry"]
        .clone();
    let done = user
        .client
        .data(
            "mutation($e: ID!) { completeExercise(entryId: $e, rating: 5) { entry { id rating } } }",
            json!({ "e": entry["id"] }),
        )
        .await["completeExercise"]["entry"]
        .clone();
    assert_eq!(done["id"], entry["id"]);
    assert_eq!(done["rating"], 5);
    let again = user
        .client
        .data(
            "query($id: ID!) { node(id: $id) { __typename ... on ExerciseEntry { uuid rating } } }",
            json!({ "id": entry["id"] }),
        )
        .await["node"]
        .clone();
    assert_eq!(again["__typename"], "ExerciseEntry");
    assert_eq!(again["uuid"], entry["uuid"]);

    // `nodes`: in order, and a bad one is null with its error at its index.
    let response = user
        .client
        .gql(
            NODES,
            json!({ "ids": [medication_id, goal_id, "bm90LWFuLWlk"] }),
        )
        .await;
    assert_eq!(response["data"]["nodes"][0]["__typename"], "Medication");
    assert_eq!(response["data"]["nodes"][1]["__typename"], "Goal");
    assert_eq!(response["data"]["nodes"][2], Value::Null);
    assert_eq!(response["errors"][0]["path"], json!(["nodes", 2]));
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    let too_many: Vec<String> = (0..101).map(|_| goal_id.clone()).collect();
    assert_eq!(
        user.client
            .error_code(NODES, json!({ "ids": too_many }))
            .await,
        "BAD_USER_INPUT"
    );

    // A provider: the core section is granted, medications are not.
    let provider = register_provider(&server, "clinic-a", "Kari Nordmann").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE"], None).await;
    let seen = provider.client.data(NODE, json!({ "id": goal_id })).await["node"].clone();
    assert_eq!(seen["title"], "Find a flat");
    // Refused through `node` exactly as through `medications`.
    let typed = provider
        .client
        .error_code(
            "query($p: ID) { medications(portalId: $p) { id } }",
            json!({ "p": user.id }),
        )
        .await;
    assert_eq!(typed, "FORBIDDEN");
    assert_eq!(
        provider
            .client
            .error_code(NODE, json!({ "id": medication_id }))
            .await,
        typed
    );
    // Both reads through `node` are on the user's access log: the granted
    // one and the refused one.
    wait_caught_up(&server).await;
    let log = user.client.data(LOG, json!({})).await["myAccessLog"]["entries"]["nodes"].clone();
    let by_node: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["readerId"] == provider.id.to_string())
        .collect();
    assert!(
        by_node
            .iter()
            .any(|e| e["section"] == "CORE" && e["basis"] == "GRANT"),
        "{log}"
    );
    assert!(
        by_node
            .iter()
            .any(|e| e["section"] == "MEDICATIONS" && e["basis"] == "REFUSED"),
        "{log}"
    );

    // The relationship is a node for both of its parties, and for nobody else.
    let relationship_id = user
        .client
        .data("{ careRelationships { nodes { id uuid } } }", json!({}))
        .await["careRelationships"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for client in [&user.client, &provider.client] {
        let got = client.data(NODE, json!({ "id": relationship_id })).await;
        assert_eq!(got["node"]["status"], "ACTIVE");
    }

    // Another organisation: the same answer as the typed fields give it.
    let outsider = open_user(&server, "clinic-b").await;
    let typed = outsider
        .client
        .error_code(
            "query($g: ID!, $p: ID) { goal(goalId: $g, portalId: $p) { id } }",
            json!({ "g": goal["uuid"], "p": user.id }),
        )
        .await;
    assert_eq!(
        outsider
            .client
            .error_code(NODE, json!({ "id": goal_id }))
            .await,
        typed
    );
    assert_eq!(
        outsider
            .client
            .error_code(NODE, json!({ "id": relationship_id }))
            .await,
        "NOT_FOUND"
    );
    server.stop().await;
}

both_stores!(nodes_and_payloads_both, nodes_and_payloads);

/// Every node of a connection, `first` at a time, each page after the
/// previous one's `endCursor`; also the cursors, decoded.
async fn every_page(
    c: &Client,
    query: &str,
    vars: Value,
    pointer: &str,
) -> (Vec<Value>, Vec<String>) {
    let (mut nodes, mut keys, mut after) = (Vec::new(), Vec::new(), Value::Null);
    for _ in 0..50 {
        let mut v = vars.clone();
        v["after"] = after;
        let answer = c.data(query, v).await;
        let page = answer
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{answer}"));
        for edge in page["edges"].as_array().unwrap() {
            nodes.push(edge["node"].clone());
            let cursor = edge["cursor"].as_str().unwrap();
            let bytes = base64_url_decode(cursor);
            keys.push(String::from_utf8(bytes).unwrap());
        }
        if page["pageInfo"]["hasNextPage"] == false {
            return (nodes, keys);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("more than 50 pages");
}

/// base64url without padding, decoded (cursors are opaque to clients; the
/// test looks inside to check what a provider could learn from them).
fn base64_url_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {text}"),
    };
    let bits: Vec<u8> = text.bytes().map(value).collect();
    let mut out = Vec::new();
    for chunk in bits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A provider pages the core section's recent changes and the exercise log
/// of a portal they follow: every item once, and cursors that count what
/// they have seen, never the portal's sequence numbers (which would tell of
/// changes in sections not granted). And a global id of another portal's
/// item names nothing in the caller's own portal.
async fn what_a_provider_pages_and_foreign_ids(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    for i in 0..3 {
        user.client
            .data(
                "mutation($t: String!) { setGoal(domain: \"housing\", title: $t) { version } }",
                json!({ "t": format!("goal {i}") }),
            )
            .await;
        // Changes in a section the provider is not granted, between.
        user.client
            .data(
                "mutation($n: String!) { addMedication(name: $n, dose: \"1 mg\", schedule: \"daily\") { version } }",
                json!({ "n": format!("med {i}") }),
            )
            .await;
        user.client
            .data(
                "mutation { startExercise(exercise: \"mindfulness\") { version } }",
                json!({}),
            )
            .await;
    }
    let provider = register_provider(&server, "clinic-a", "Kari Nordmann").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE", "EXERCISES"], None).await;
    let p = json!({ "p": user.id, "first": 1 });

    // Recent changes: the core section's, numbered and keyed by their count.
    let (changes, keys) = every_page(
        &provider.client,
        "query($p: ID, $first: Int, $after: String) { controlPanel(portalId: $p) { recentChanges(first: $first, after: $after) \
         { edges { cursor node { sequence section } } pageInfo { hasNextPage endCursor } } } }",
        p.clone(),
        "/controlPanel/recentChanges",
    )
    .await;
    let numbers: Vec<String> = changes
        .iter()
        .map(|c| c["sequence"].as_str().unwrap().to_string())
        .collect();
    // PortalOpened and three GoalSet: four core changes, counted down.
    assert_eq!(numbers, ["4", "3", "2", "1"], "{changes:?}");
    assert!(changes.iter().all(|c| c["section"] == "CORE"));
    assert_eq!(keys, ["recent:4", "recent:3", "recent:2", "recent:1"]);

    // The exercise log: three entries, cursors 1, 2, 3 (how many seen).
    let (entries, keys) = every_page(
        &provider.client,
        "query($p: ID, $first: Int, $after: String) { exerciseLog(portalId: $p) { entries(first: $first, after: $after) \
         { edges { cursor node { uuid } } pageInfo { hasNextPage endCursor } } } }",
        p.clone(),
        "/exerciseLog/entries",
    )
    .await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(keys, ["exercises:1", "exercises:2", "exercises:3"]);
    // The owner pages the same entries, in the same order.
    let (own, _) = every_page(
        &user.client,
        "query($first: Int, $after: String) { exerciseLog { entries(first: $first, after: $after) \
         { edges { cursor node { uuid } } pageInfo { hasNextPage endCursor } } } }",
        json!({ "first": 2 }),
        "/exerciseLog/entries",
    )
    .await;
    assert_eq!(own, entries);

    // Another portal's goal, by its global id: nothing in the caller's own
    // portal, and nothing is stored.
    let other = open_user(&server, "clinic-a").await;
    let theirs = other
        .client
        .data(
            "mutation { setGoal(domain: \"housing\", title: \"theirs\") { goal { id } } }",
            json!({}),
        )
        .await["setGoal"]["goal"]["id"]
        .clone();
    let version = |v: Value| v["controlPanel"]["version"].clone();
    let before = version(
        user.client
            .data("{ controlPanel { version } }", json!({}))
            .await,
    );
    assert_eq!(
        user.client
            .error_code(
                "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }",
                json!({ "g": theirs })
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        version(
            user.client
                .data("{ controlPanel { version } }", json!({}))
                .await
        ),
        before
    );
    server.stop().await;
}

both_stores!(
    provider_paging_and_foreign_ids,
    what_a_provider_pages_and_foreign_ids
);
