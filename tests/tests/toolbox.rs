//! The toolbox end to end over real HTTP against both stores: every section,
//! its rules at the edge, and "as it stood at time T" checked against what the
//! service showed at T, across a restart of the server process.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use chrono::{DateTime, Utc};
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// Every section of a portal, now (`$t` null) or as it stood at `$t`.
const EVERYTHING: &str = "query($t: DateTime) { \
  controlPanel(asOf: $t) { portalId organisation version openedAt updatedAt \
    domains { key name custom ratings latestStatus { score note ratedAt } \
      activeGoals { id domain title description state setAt updatedAt closedAt \
        progress { planned done dropped percentDone } activities { id title state plannedAt updatedAt } } } \
    sections { section items current changes lastChangedAt } \
    recentChanges(first: 5) { nodes { sequence section eventType at } } } \
  medications(asOf: $t) { id name dose schedule purpose prescriber state startedAt updatedAt reason stoppedAt changes } \
  network(asOf: $t, includeRemoved: true) { id displayName relation closeness support addedAt updatedAt removedAt removalReason } \
  crisisPlan(asOf: $t) { revision revisedAt warningSigns whatHelps whatDoesNotHelp contacts { name phone whenToCall } ownWords } \
  exerciseLog(asOf: $t) { started completed entries { nodes { uuid exercise title startedAt completedAt reflection rating } } } }";

/// The `uuid` of the object a mutation `field` returned as `object`.
fn uuid(v: &Value, field: &str, object: &str) -> String {
    v[field][object]["uuid"].as_str().unwrap().to_string()
}

/// What the portal shows now, and the time just after it.
async fn look(c: &Client) -> (DateTime<Utc>, Value) {
    let now = c.data(EVERYTHING, json!({ "t": null })).await;
    (Utc::now(), now)
}

/// The selection of a connection whose nodes select `node`: nodes, edges
/// and where the page stands.
fn connection(node: &str) -> String {
    format!(
        "nodes {{ {node} }} edges {{ cursor node {{ {node} }} }} \
         pageInfo {{ hasNextPage startCursor endCursor }}"
    )
}

/// Pages through the connection at `pointer` in the answer to `query`
/// (which takes `$first` and `$after` besides `vars`), `first` at a time,
/// each page after the previous page's `endCursor`, until `hasNextPage` is
/// false; checks every page and returns the nodes of all of them in order.
async fn page_through(
    c: &Client,
    query: &str,
    vars: Value,
    pointer: &str,
    first: usize,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let mut v = vars.clone();
        v["first"] = json!(first);
        v["after"] = after;
        let answer = c.data(query, v).await;
        let page = answer
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{answer}"));
        let nodes = page["nodes"].as_array().unwrap();
        let edges = page["edges"].as_array().unwrap();
        assert!(
            !nodes.is_empty() && nodes.len() <= first,
            "a page of 1 to {first}: {answer}"
        );
        let edge_nodes: Vec<Value> = edges.iter().map(|e| e["node"].clone()).collect();
        assert_eq!(&edge_nodes, nodes, "edges and nodes agree: {answer}");
        let info = &page["pageInfo"];
        assert_eq!(info["startCursor"], edges[0]["cursor"], "{answer}");
        assert_eq!(
            info["endCursor"],
            edges[edges.len() - 1]["cursor"],
            "{answer}"
        );
        all.extend(nodes.iter().cloned());
        if info["hasNextPage"] == false {
            return all;
        }
        assert_eq!(nodes.len(), first, "only the last page is short: {answer}");
        after = info["endCursor"].clone();
    }
    panic!("more than 100 pages of {first} at {pointer}");
}

const PLAN: &str =
    "mutation($p: CrisisPlanInput!) { reviseCrisisPlan(plan: $p) { crisisPlan { revision } version } }";

async fn toolbox_end_to_end(store: Store) {
    let db = fresh_db(store).await;
    let mut server = Server::start(&db).await;
    let before_open = Utc::now();
    let user = open_user(&server, "clinic-a").await;
    let mut c = user.client.clone();
    let mut seen = vec![look(&c).await];

    // The core: ratings and a goal with activities, closed later on.
    let rate = "mutation($s: Int!) { rateStatus(domain: \"housing\", score: $s, note: \"so-so\") { version } }";
    c.data(rate, json!({"s": 3})).await;
    let g1 = c
        .data(
            r#"mutation { setGoal(domain: "housing", title: "Find a flat") { goal { uuid } } }"#,
            json!({}),
        )
        .await;
    let g1 = uuid(&g1, "setGoal", "goal");
    c.data(
        "mutation($g: ID!) { planActivity(goalId: $g, title: \"Call\") { version } }",
        json!({"g": g1}),
    )
    .await;
    seen.push(look(&c).await);

    // Medications.
    let med = c
        .data(
            r#"mutation { addMedication(name: " Sertraline ", dose: "50 mg", schedule: "every morning",
                purpose: "mood\tand sleep", prescriber: "د. علي 🩺") { medication { uuid } version } }"#,
            json!({}),
        )
        .await;
    let med = uuid(&med, "addMedication", "medication");
    seen.push(look(&c).await);
    let change = "mutation($m: ID!, $d: String, $s: String) { changeMedication(medicationId: $m, dose: $d, schedule: $s) { version } }";
    c.data(change, json!({"m": med, "d": "100 mg"})).await;
    seen.push(look(&c).await);
    c.data(
        "mutation($m: ID!) { pauseMedication(medicationId: $m, reason: \"holiday\") { version } }",
        json!({"m": med}),
    )
    .await;
    let lithium = c
        .data(
            r#"mutation { addMedication(name: "ليثيوم", dose: "400 mg", schedule: "evening") { medication { uuid } } }"#,
            json!({}),
        )
        .await;
    let lithium = uuid(&lithium, "addMedication", "medication");
    seen.push(look(&c).await);

    // Network map.
    let add_person = "mutation($n: String!, $r: RelationKind!, $c: Int!, $s: [SupportKind!]) { \
        addPerson(displayName: $n, relation: $r, closeness: $c, support: $s) { person { uuid } } }";
    let mum = c
        .data(
            add_person,
            json!({"n": "Mum", "r": "FAMILY", "c": 5, "s": ["EMOTIONAL", "PRACTICAL", "EMOTIONAL"]}),
        )
        .await;
    let mum = uuid(&mum, "addPerson", "person");
    let coach = c
        .data(
            add_person,
            json!({"n": "שרה the coach", "r": "PROFESSIONAL", "c": 3, "s": ["INFORMATIONAL"]}),
        )
        .await;
    let coach = uuid(&coach, "addPerson", "person");
    seen.push(look(&c).await);

    // Crisis plan, first revision.
    let first_plan = json!({
        "warningSigns": ["Not sleeping", "Skipping meals"],
        "whatHelps": ["A walk with Mum 🌳"],
        "whatDoesNotHelp": ["Being told to calm down"],
        "contacts": [{"name": "Mum", "phone": "+47 22 33 44 55", "whenToCall": "Any time"}],
        "ownWords": "When the walls close in,\nI need air."
    });
    let r1 = c.data(PLAN, json!({ "p": first_plan })).await;
    assert_eq!(r1["reviseCrisisPlan"]["crisisPlan"]["revision"], 1);
    seen.push(look(&c).await);

    // A restart in the middle: everything so far must come back, and the
    // history keeps answering for times before it.
    server.stop().await;
    server = Server::start(&db).await;
    c = server.client(c.token.clone());
    let (_, after_restart) = look(&c).await;
    assert_eq!(
        after_restart,
        seen.last().unwrap().1,
        "state changed over a restart"
    );

    // More changes after the restart.
    c.data(
        "mutation($m: ID!) { resumeMedication(medicationId: $m) { version } }",
        json!({"m": med}),
    )
    .await;
    c.data(
        "mutation($m: ID!) { stopMedication(medicationId: $m, reason: \"side effects\") { version } }",
        json!({"m": lithium}),
    )
    .await;
    c.data(
        "mutation($p: ID!) { updatePerson(personId: $p, displayName: \"Mum\", relation: FAMILY, closeness: 4, support: [EMOTIONAL]) { version } }",
        json!({"p": mum}),
    )
    .await;
    c.data(
        "mutation($p: ID!) { removePerson(personId: $p, reason: \"moved away\") { version } }",
        json!({"p": coach}),
    )
    .await;
    c.data(
        "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }",
        json!({"g": g1}),
    )
    .await;
    c.data(
        r#"mutation { setGoal(domain: "leisure", title: "Join a choir") { goal { uuid } } }"#,
        json!({}),
    )
    .await;
    c.data(rate, json!({"s": 7})).await;
    seen.push(look(&c).await);
    let mut second_plan = first_plan.clone();
    second_plan["warningSigns"] = json!(["Not sleeping"]);
    second_plan["contacts"] = json!([
        {"name": "Mum", "phone": "+47 22 33 44 55"},
        {"name": "Crisis team", "phone": "(020) 123-4567", "whenToCall": "At night"}
    ]);
    let r2 = c.data(PLAN, json!({ "p": second_plan })).await;
    assert_eq!(r2["reviseCrisisPlan"]["crisisPlan"]["revision"], 2);
    seen.push(look(&c).await);

    // Exercises: an admin adds one to the catalogue; the user logs two.
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, "clinic-a")));
    let added = admin
        .data(
            r#"mutation { addExercise(key: "breathing", title: "Breathing 🌬", description: "Five slow breaths") { exercise { key } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(added["addExercise"]["exercise"]["key"], "breathing");
    let catalogue = c
        .data("{ exerciseCatalogue { key title added } }", json!({}))
        .await;
    let keys: Vec<&str> = catalogue["exerciseCatalogue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 4, "{catalogue}");
    assert!(keys.contains(&"breathing") && keys.contains(&"sleep_hygiene"));
    let start = "mutation($e: String!) { startExercise(exercise: $e) { entry { uuid } } }";
    let e1 = c.data(start, json!({"e": "breathing"})).await;
    let e1 = uuid(&e1, "startExercise", "entry");
    c.data(
        "mutation($e: ID!) { completeExercise(entryId: $e, reflection: \"calmer ✨\", rating: 4) { version } }",
        json!({"e": e1}),
    )
    .await;
    c.data(start, json!({"e": "mindfulness"})).await;
    seen.push(look(&c).await);

    // Now: what each section says.
    let (_, now) = seen.last().unwrap().clone();
    let meds = now["medications"].as_array().unwrap();
    assert_eq!(meds.len(), 2);
    assert_eq!(meds[0]["name"], "Sertraline");
    assert_eq!(meds[0]["dose"], "100 mg");
    assert_eq!(meds[0]["state"], "ACTIVE");
    assert_eq!(meds[0]["changes"], 1);
    assert_eq!(meds[0]["purpose"], "mood\tand sleep");
    assert_eq!(meds[0]["prescriber"], "د. علي 🩺");
    assert_eq!(meds[1]["state"], "STOPPED");
    assert_eq!(meds[1]["reason"], "side effects");
    let people = now["network"].as_array().unwrap();
    assert_eq!(people[0]["support"], json!(["EMOTIONAL"]));
    assert_eq!(people[0]["closeness"], 4);
    assert_eq!(people[1]["removalReason"], "moved away");
    assert_eq!(now["crisisPlan"]["revision"], 2);
    assert_eq!(now["crisisPlan"]["contacts"][1]["whenToCall"], "At night");
    assert_eq!(now["crisisPlan"]["contacts"][0]["whenToCall"], "");
    assert_eq!(now["exerciseLog"]["started"], 2);
    assert_eq!(now["exerciseLog"]["completed"], 1);
    assert_eq!(now["exerciseLog"]["entries"]["nodes"][1]["rating"], 4);
    assert_eq!(
        now["exerciseLog"]["entries"]["nodes"][1]["title"],
        "Breathing 🌬"
    );
    let sections = now["controlPanel"]["sections"].as_array().unwrap();
    let section = |name: &str| {
        sections
            .iter()
            .find(|s| s["section"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(section("MEDICATIONS")["items"], 2);
    assert_eq!(section("MEDICATIONS")["current"], 1);
    assert_eq!(section("MEDICATIONS")["changes"], 6);
    assert_eq!(section("NETWORK")["current"], 1);
    assert_eq!(section("CRISIS_PLAN")["items"], 2);
    assert_eq!(section("CRISIS_PLAN")["current"], 1);
    assert_eq!(section("EXERCISES")["items"], 2);
    assert_eq!(section("EXERCISES")["current"], 1);
    assert_eq!(section("CORE")["items"], 2);
    assert_eq!(section("CORE")["current"], 1);
    assert_eq!(
        now["controlPanel"]["recentChanges"]["nodes"][0]["eventType"],
        "EXERCISE_STARTED"
    );

    let domains = now["controlPanel"]["domains"].as_array().unwrap();
    assert_eq!(domains[2]["ratings"], 2);
    assert_eq!(domains[2]["latestStatus"]["score"], 7);
    assert_eq!(domains[2]["activeGoals"], json!([]));
    assert_eq!(domains[7]["activeGoals"][0]["title"], "Join a choir");
    let newest = c
        .data(
            "{ exerciseLog { started entries(first: 1) { nodes { exercise } pageInfo { hasNextPage } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        newest["exerciseLog"],
        json!({"started": 2, "entries": {"nodes": [{"exercise": "mindfulness"}], "pageInfo": {"hasNextPage": true}}})
    );
    // Paged one entry at a time with cursors: every entry once, newest first.
    let entries = "uuid exercise title startedAt completedAt reflection rating";
    let paged = page_through(
        &c,
        &format!(
            "query($first: Int, $after: String) {{ exerciseLog {{ entries(first: $first, after: $after) {{ {} }} }} }}",
            connection(entries)
        ),
        json!({}),
        "/exerciseLog/entries",
        1,
    )
    .await;
    assert_eq!(&json!(paged), &now["exerciseLog"]["entries"]["nodes"]);

    // Removed people are left out unless asked for.
    let present = c.data("{ network { displayName } }", json!({})).await;
    assert_eq!(present["network"].as_array().unwrap().len(), 1);
    let active = c
        .data("{ medications(includeStopped: false) { name } }", json!({}))
        .await;
    assert_eq!(active["medications"].as_array().unwrap().len(), 1);

    // Earlier revisions and the histories of single items.
    let rev1 = c
        .data(
            "{ crisisPlan(revision: 1) { revision warningSigns ownWords } }",
            json!({}),
        )
        .await;
    assert_eq!(rev1["crisisPlan"]["revision"], 1);
    assert_eq!(
        rev1["crisisPlan"]["warningSigns"],
        json!(["Not sleeping", "Skipping meals"])
    );
    let none = c
        .data("{ crisisPlan(revision: 3) { revision } }", json!({}))
        .await;
    assert!(none["crisisPlan"].is_null());
    let history = c
        .data(
            "{ crisisPlanHistory { nodes { sequence eventType actorRole } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    let revisions = history["crisisPlanHistory"]["nodes"].as_array().unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0]["actorRole"], "SERVICE_USER");
    assert_eq!(
        history["crisisPlanHistory"]["pageInfo"]["hasNextPage"],
        false
    );
    let page =
        "query($first: Int, $after: String) { crisisPlanHistory(first: $first, after: $after) \
        { nodes { sequence } pageInfo { hasNextPage endCursor } } }";
    let first = c.data(page, json!({"first": 1})).await;
    assert_eq!(
        first["crisisPlanHistory"]["nodes"],
        json!([{"sequence": revisions[0]["sequence"]}])
    );
    assert_eq!(first["crisisPlanHistory"]["pageInfo"]["hasNextPage"], true);
    let second = c
        .data(
            page,
            json!({"first": 1, "after": first["crisisPlanHistory"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(
        second["crisisPlanHistory"]["nodes"],
        json!([{"sequence": revisions[1]["sequence"]}])
    );
    assert_eq!(
        second["crisisPlanHistory"]["pageInfo"]["hasNextPage"],
        false
    );
    let paged = page_through(
        &c,
        &format!(
            "query($first: Int, $after: String) {{ crisisPlanHistory(first: $first, after: $after) {{ {} }} }}",
            connection("sequence eventType actorRole")
        ),
        json!({}),
        "/crisisPlanHistory",
        1,
    )
    .await;
    assert_eq!(&paged, revisions);
    let history = c
        .data(
            "query($m: ID!) { medicationHistory(medicationId: $m) { nodes { sequence eventType } } }",
            json!({"m": med}),
        )
        .await;
    let types: Vec<&str> = history["medicationHistory"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "MEDICATION_ADDED",
            "MEDICATION_CHANGED",
            "MEDICATION_PAUSED",
            "MEDICATION_RESUMED"
        ]
    );
    // Pages of one, of two (the last page exactly full) and of three (the
    // last page short): every entry once, in order.
    for first in [1, 2, 3] {
        let paged = page_through(
            &c,
            &format!(
                "query($m: ID!, $first: Int, $after: String) {{ medicationHistory(medicationId: $m, first: $first, after: $after) {{ {} }} }}",
                connection("sequence eventType")
            ),
            json!({"m": med}),
            "/medicationHistory",
            first,
        )
        .await;
        assert_eq!(
            json!(paged),
            history["medicationHistory"]["nodes"],
            "pages of {first}"
        );
    }
    let history = c
        .data(
            "query($p: ID!) { personHistory(personId: $p) { nodes { eventType } } }",
            json!({"p": coach}),
        )
        .await;
    assert_eq!(
        history["personHistory"]["nodes"].as_array().unwrap().len(),
        2
    );

    // As of every moment seen: exactly what was shown then, computed now
    // from the events (and after the restart for the early ones).
    for (i, (t, then)) in seen.iter().enumerate() {
        let again = c.data(EVERYTHING, json!({ "t": t.to_rfc3339() })).await;
        assert_eq!(&again, then, "as-of read {i} at {t} differs");
    }
    // Before the portal existed there was nothing.
    let t0 = json!({ "t": before_open.to_rfc3339() });
    assert_eq!(
        c.error_code(
            "query($t: DateTime) { controlPanel(asOf: $t) { version } }",
            t0.clone()
        )
        .await,
        "NOT_FOUND"
    );
    let empty = c
        .data(
            "query($t: DateTime) { medications(asOf: $t) { id } crisisPlan(asOf: $t) { revision } exerciseLog(asOf: $t) { started } }",
            t0,
        )
        .await;
    assert_eq!(
        empty,
        json!({"medications": [], "crisisPlan": null, "exerciseLog": {"started": 0}})
    );
    server.stop().await;
}
both_stores!(toolbox, toolbox_end_to_end);

/// Refusals at the edge: bad input names the field, nothing partial is
/// stored, and only the right people act.
async fn toolbox_refusals(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let c = &user.client;
    let version = || async {
        c.data("{ controlPanel { version } }", json!({})).await["controlPanel"]["version"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let start = version().await;

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "mutation { addMedication(name: \"\", dose: \"1\", schedule: \"x\") { version } }",
            json!({}),
            "BAD_USER_INPUT",
            "`name` must not be empty",
        ),
        (
            "mutation($d: String!) { addMedication(name: \"A\", dose: $d, schedule: \"x\") { version } }",
            json!({"d": "9".repeat(101)}),
            "BAD_USER_INPUT",
            "`dose` must be at most 100 characters",
        ),
        (
            "mutation { addMedication(name: \"A\", dose: \"1\", schedule: \"x\\u0007\") { version } }",
            json!({}),
            "BAD_USER_INPUT",
            "`schedule` must not contain control characters",
        ),
        (
            "mutation { addPerson(displayName: \"Bo\", relation: FRIEND, closeness: 6) { version } }",
            json!({}),
            "BAD_USER_INPUT",
            "`closeness` must be between 1 and 5, got 6",
        ),
        (
            "mutation { reviseCrisisPlan(plan: {}) { version } }",
            json!({}),
            "BAD_USER_INPUT",
            "at least one",
        ),
        (
            PLAN,
            json!({"p": {"whatHelps": ["Music", " "]}}),
            "BAD_USER_INPUT",
            "`whatHelps` item 1 must not be empty",
        ),
        (
            PLAN,
            json!({"p": {"contacts": [{"name": "Mum", "phone": "call me"}]}}),
            "BAD_USER_INPUT",
            "`contacts.phone` item 0",
        ),
        (
            "mutation { startExercise(exercise: \"juggling\") { version } }",
            json!({}),
            "NOT_FOUND",
            "`juggling` is not in the organisation's catalogue",
        ),
        (
            "mutation($m: ID!) { stopMedication(medicationId: $m) { version } }",
            json!({"m": Uuid::new_v4()}),
            "NOT_FOUND",
            "does not exist",
        ),
        (
            "{ exerciseLog { entries(first: 0) { nodes { uuid } } } }",
            json!({}),
            "BAD_USER_INPUT",
            "`first` must be between 1 and 500",
        ),
        (
            "{ exerciseLog { entries(after: \"bm90LWEtY3Vyc29y\") { nodes { uuid } } } }",
            json!({}),
            "BAD_USER_INPUT",
            "is not a cursor of this list",
        ),
        (
            "{ crisisPlan(revision: 0) { revision } }",
            json!({}),
            "BAD_USER_INPUT",
            "`revision` must be at least 1",
        ),
        (
            "{ crisisPlanHistory(first: 501) { nodes { sequence } } }",
            json!({}),
            "BAD_USER_INPUT",
            "`first` must be between 1 and 500",
        ),
        (
            "mutation { startExercise(exercise: \"Not A Key!\") { version } }",
            json!({}),
            "BAD_USER_INPUT",
            "`exercise` must be an exercise key",
        ),
        (
            "mutation { addExercise(key: \"walk\", title: \"Walk\") { version } }",
            json!({}),
            "FORBIDDEN",
            "only an admin",
        ),
    ];
    for (query, vars, code, message) in cases {
        let response = c.gql(query, vars).await;
        let error = &response["errors"][0];
        assert_eq!(error["extensions"]["code"], code, "{query}: {response}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{query}: {response}"
        );
    }
    assert_eq!(version().await, start, "a refused command stored something");

    // A stopped medication cannot change; a duplicate name is refused while
    // the first is not stopped.
    let med = c
        .data(
            "mutation { addMedication(name: \"Quetiapine\", dose: \"25 mg\", schedule: \"night\") { medication { uuid } } }",
            json!({}),
        )
        .await;
    let med = uuid(&med, "addMedication", "medication");
    assert_eq!(
        c.error_code(
            "mutation { addMedication(name: \"QUETIAPINE\", dose: \"50 mg\", schedule: \"night\") { version } }",
            json!({})
        )
        .await,
        "FAILED_PRECONDITION"
    );
    c.data(
        "mutation($m: ID!) { stopMedication(medicationId: $m) { version } }",
        json!({"m": med}),
    )
    .await;
    let response = c
        .gql(
            "mutation($m: ID!) { changeMedication(medicationId: $m, dose: \"50 mg\") { version } }",
            json!({"m": med}),
        )
        .await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is stopped and cannot be changed"),
        "{response}"
    );

    // Other people: another user, a provider, an admin of another organisation.
    let other = open_user(&server, "clinic-a").await;
    let q = "query($p: ID!) { medications(portalId: $p) { id } }";
    assert_eq!(
        other.client.error_code(q, json!({"p": user.id})).await,
        "FORBIDDEN"
    );
    let provider = server.client(Some(token(Uuid::new_v4(), Role::Provider, "clinic-a")));
    assert_eq!(
        provider
            .error_code(
                "mutation { addPerson(displayName: \"X\", relation: OTHER, closeness: 1) { version } }",
                json!({})
            )
            .await,
        "FORBIDDEN"
    );
    // A provider without a relationship: for them there is no such portal.
    assert_eq!(
        provider.error_code(q, json!({"p": user.id})).await,
        "NOT_FOUND"
    );
    // Catalogues are per organisation.
    let admin_b = server.client(Some(token(Uuid::new_v4(), Role::Admin, "clinic-b")));
    admin_b
        .data(
            "mutation { addExercise(key: \"yoga\", title: \"Yoga\") { exercise { key } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        c.error_code(
            "mutation { startExercise(exercise: \"yoga\") { version } }",
            json!({})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        admin_b
            .error_code(
                "mutation { addExercise(key: \"yoga2\", title: \"YOGA\") { exercise { key } } }",
                json!({})
            )
            .await,
        "FAILED_PRECONDITION"
    );
    assert_eq!(
        server
            .client(None)
            .error_code("{ exerciseCatalogue { key } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    server.stop().await;
}
both_stores!(refusals, toolbox_refusals);

/// Medications and the network map are read from the newest event of each
/// kind per item; after every step of a long, varied history they must equal
/// a fold of every event with the domain's own view.
async fn item_reads_equal_a_full_fold(store: Store) {
    use domain::portal::view::PortalView;
    use domain::portal::PortalEvent;

    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let c = &user.client;
    let read = read_db(&db).await;
    let meds: Vec<String> = (0..3)
        .map(|i| Uuid::from_u128(100 + i).to_string())
        .collect();
    let people: Vec<String> = (0..3)
        .map(|i| Uuid::from_u128(200 + i).to_string())
        .collect();
    for (i, m) in meds.iter().enumerate() {
        c.data(
            "mutation($m: UUID!, $n: String!) { addMedication(uuid: $m, name: $n, dose: \"1 mg\", schedule: \"daily\") { version } }",
            json!({"m": m, "n": format!("med {i}")}),
        )
        .await;
    }
    for (i, p) in people.iter().enumerate() {
        c.data(
            "mutation($p: UUID!, $n: String!) { addPerson(uuid: $p, displayName: $n, relation: FRIEND, closeness: 1) { version } }",
            json!({"p": p, "n": format!("person {i}")}),
        )
        .await;
    }
    let steps = [
        "change", "pause", "change", "resume", "update", "change", "pause", "update", "resume",
        "change", "stop", "remove", "change", "update", "pause", "stop",
    ];
    for (n, step) in steps.iter().enumerate() {
        let m = &meds[n % meds.len()];
        let p = &people[n % people.len()];
        let (query, vars) = match *step {
            "change" => (
                "mutation($m: ID!, $d: String!) { changeMedication(medicationId: $m, dose: $d) { version } }",
                json!({"m": m, "d": format!("{n} mg")}),
            ),
            "pause" => (
                "mutation($m: ID!, $r: String!) { pauseMedication(medicationId: $m, reason: $r) { version } }",
                json!({"m": m, "r": format!("pause {n}")}),
            ),
            "resume" => (
                "mutation($m: ID!) { resumeMedication(medicationId: $m) { version } }",
                json!({"m": m}),
            ),
            "stop" => (
                "mutation($m: ID!, $r: String!) { stopMedication(medicationId: $m, reason: $r) { version } }",
                json!({"m": m, "r": format!("stop {n}")}),
            ),
            "update" => (
                "mutation($p: ID!, $n: String!, $c: Int!) { updatePerson(personId: $p, displayName: $n, relation: PEER, closeness: $c, support: [SOCIAL]) { version } }",
                json!({"p": p, "n": format!("person {n}"), "c": n % 5 + 1}),
            ),
            _ => (
                "mutation($p: ID!) { removePerson(personId: $p, reason: \"gone\") { version } }",
                json!({"p": p}),
            ),
        };
        // Some steps break a rule (resuming an active medication, acting on a
        // stopped one); they store nothing, which is part of the history too.
        c.gql(query, vars).await;

        let got = c
            .data(
                "{ medications { uuid name dose schedule state reason changes startedAt updatedAt stoppedAt } \
                   network(includeRemoved: true) { uuid displayName relation closeness support addedAt updatedAt removedAt removalReason } }",
                json!({}),
            )
            .await;
        let events: Vec<PortalEvent> = all_events(&read)
            .await
            .iter()
            .filter(|e| e.aggregate_id == user.id.to_string())
            .map(|e| e.decode().unwrap())
            .collect();
        let full = PortalView::fold(&events);
        let time = |t: chrono::DateTime<chrono::Utc>| json!(t.to_rfc3339());
        let opt_time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(Value::Null, time);
        let want_meds: Vec<Value> = full
            .medications
            .iter()
            .map(|m| {
                json!({"uuid": m.id, "name": m.name, "dose": m.dose, "schedule": m.schedule,
                    "state": format!("{:?}", m.state).to_uppercase(), "reason": m.reason, "changes": m.changes,
                    "startedAt": time(m.started_at), "updatedAt": time(m.updated_at), "stoppedAt": opt_time(m.stopped_at)})
            })
            .collect();
        let want_people: Vec<Value> = full
            .people
            .iter()
            .map(|p| {
                json!({"uuid": p.id, "displayName": p.display_name,
                    "relation": format!("{:?}", p.relation).to_uppercase(), "closeness": p.closeness,
                    "support": p.support.iter().map(|s| format!("{s:?}").to_uppercase()).collect::<Vec<_>>(),
                    "addedAt": time(p.added_at), "updatedAt": time(p.updated_at),
                    "removedAt": opt_time(p.removed_at), "removalReason": p.removal_reason})
            })
            .collect();
        assert_eq!(
            got,
            json!({"medications": want_meds, "network": want_people}),
            "after step {n} ({step})"
        );
    }
    server.stop().await;
}
both_stores!(item_reads, item_reads_equal_a_full_fold);
