//! The projections against the events: under many concurrent writers, after a
//! SIGKILL in the middle of a write load, and across a rebuild while serving.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use portal_tests::*;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

/// One writer: a mix of every portal command on its users, until `rounds` run
/// out or the server goes away. Returns the goals whose creation was acknowledged.
async fn write_load(users: Arc<Vec<User>>, seed: usize, rounds: usize) -> Vec<(usize, Uuid)> {
    let mut acknowledged = Vec::new();
    let mut goals: Vec<(usize, Uuid)> = Vec::new();
    let mut activities: Vec<(usize, Uuid)> = Vec::new();
    for round in 0..rounds {
        let n = seed * 7919 + round * 104_729;
        let u = n % users.len();
        let c = &users[u].client;
        let (query, vars) = match n % 5 {
            0 | 1 => {
                let g = Uuid::new_v4();
                goals.push((u, g));
                (
                    "mutation($g: UUID!, $t: String!) { setGoal(uuid: $g, domain: \"housing\", title: $t) { version } }",
                    json!({"g": g, "t": format!("goal {seed}-{round}")}),
                )
            }
            2 if !goals.is_empty() => {
                let (gu, g) = goals[n % goals.len()];
                let a = Uuid::new_v4();
                activities.push((gu, a));
                let c = &users[gu].client;
                let r = c
                    .try_gql(
                        "mutation($g: ID!, $a: UUID!) { planActivity(goalId: $g, uuid: $a, title: \"step\") { version } }",
                        json!({"g": g, "a": a}),
                    )
                    .await;
                if r.is_none() {
                    break;
                }
                continue;
            }
            3 if !activities.is_empty() => {
                let (au, a) = activities[n % activities.len()];
                let q = if n.is_multiple_of(2) {
                    "mutation($a: ID!) { completeActivity(activityId: $a) { version } }"
                } else {
                    "mutation($a: ID!) { dropActivity(activityId: $a) { version } }"
                };
                if users[au].client.try_gql(q, json!({"a": a})).await.is_none() {
                    break;
                }
                continue;
            }
            _ => match (n / 5) % 5 {
                0 => (
                    "mutation($s: Int!) { rateStatus(domain: \"leisure\", score: $s) { version } }",
                    json!({"s": (n % 10 + 1) as i64}),
                ),
                1 => (
                    "mutation($t: String!) { addMedication(name: $t, dose: \"1 mg\", schedule: \"daily\") { version } }",
                    json!({"t": format!("med {seed}-{round}")}),
                ),
                2 => (
                    "mutation($t: String!) { addPerson(displayName: $t, relation: PEER, closeness: 3, support: [SOCIAL]) { version } }",
                    json!({"t": format!("peer {seed}-{round}")}),
                ),
                3 => (
                    "mutation($t: String!) { reviseCrisisPlan(plan: { ownWords: $t }) { version } }",
                    json!({"t": format!("words {seed}-{round}")}),
                ),
                _ => (
                    "mutation { startExercise(exercise: \"mindfulness\") { version } }",
                    json!({}),
                ),
            },
        };
        let Some(response) = c.try_gql(query, vars.clone()).await else {
            break;
        };
        if response.get("errors").is_none() {
            if let Some(g) = vars.get("g") {
                acknowledged.push((u, Uuid::parse_str(g.as_str().unwrap()).unwrap()));
            }
        }
    }
    acknowledged
}

async fn projections_equal_a_fold_of_all_events_under_concurrency(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let mut users = Vec::new();
    for i in 0..12_u32 {
        users.push(
            open_user(
                &server,
                if i.is_multiple_of(2) {
                    "clinic-a"
                } else {
                    "clinic-b"
                },
            )
            .await,
        );
    }
    let users = Arc::new(users);
    let writers = (0..16).map(|w| tokio::spawn(write_load(Arc::clone(&users), w, 40)));
    let acknowledged: Vec<_> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(
        acknowledged.len() > 50,
        "the load did write: {}",
        acknowledged.len()
    );
    wait_caught_up(&server).await;
    let read = read_db(&db).await;
    let expected = expected_state(&read).await;
    assert!(expected.len() > 500);
    for section in ["core", "medications", "network", "crisis_plan", "exercises"] {
        let pattern = format!(" {section} items=");
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("section ") && l.contains(&pattern)),
            "the load wrote nothing in section {section}"
        );
    }
    assert_eq!(projected_state(&read).await, expected);
    server.stop().await;
}
both_stores!(
    concurrency,
    projections_equal_a_fold_of_all_events_under_concurrency
);

async fn a_sigkill_during_writes_loses_nothing_acknowledged(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let mut users = Vec::new();
    for _ in 0..6 {
        users.push(open_user(&server, "clinic-a").await);
    }
    let tokens: Vec<_> = users.iter().map(|u| u.client.token.clone()).collect();
    let users = Arc::new(users);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (users, acknowledged) = (Arc::clone(&users), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                let done = write_load(users, w, 100_000).await;
                acknowledged.lock().await.extend(done);
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() > 10,
        "the load was running: {}",
        acknowledged.len()
    );

    let server = Server::start(&db).await;
    wait_caught_up(&server).await;
    for (u, goal) in &acknowledged {
        let c = server.client(tokens[*u].clone());
        let got = c
            .data(
                "query($g: ID!) { goal(goalId: $g) { uuid } }",
                json!({"g": goal}),
            )
            .await;
        assert_eq!(got["goal"]["uuid"], goal.to_string());
    }
    let read = read_db(&db).await;
    let expected = expected_state(&read).await;
    assert_eq!(
        projected_state(&read).await,
        expected,
        "projections after the crash"
    );
    portal_cli(&db, &["projections", "rebuild", "--all"]).await;
    assert_eq!(
        projected_state(&read).await,
        expected,
        "a rebuild from position 0 gives the same"
    );
    server.stop().await;
}
both_stores!(crash, a_sigkill_during_writes_loses_nothing_acknowledged);

async fn a_rebuild_while_serving_swaps_in_an_equal_copy(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    for i in 0..30 {
        user.client
            .data(
                "mutation($t: String!) { setGoal(domain: \"education\", title: $t) { version } }",
                json!({"t": format!("goal {i}")}),
            )
            .await;
    }
    let before = user.client.data(CONTROL_PANEL, json!({})).await;
    let out = portal_cli(&db, &["projections", "rebuild", "control_panel"]).await;
    assert!(out.contains("rebuilt control_panel: 31 events"), "{out}");
    // The running server follows the switch; reads and writes go on.
    let read = read_db(&db).await;
    let slot: String =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = 'control_panel'")
            .fetch_one(&read.pool)
            .await
            .unwrap();
    assert_eq!(slot, "b");
    assert_eq!(user.client.data(CONTROL_PANEL, json!({})).await, before);
    let write = user
        .client
        .data(
            r#"mutation { rateStatus(domain: "education", score: 8) { caughtUp } }"#,
            json!({}),
        )
        .await;
    assert_eq!(write["rateStatus"]["caughtUp"], true);
    let status = portal_cli(&db, &["projections", "status"]).await;
    assert!(
        status.contains("control_panel") && status.contains("history"),
        "{status}"
    );
    wait_caught_up(&server).await;
    assert_eq!(projected_state(&read).await, expected_state(&read).await);
    server.stop().await;
}
both_stores!(rebuild, a_rebuild_while_serving_swaps_in_an_equal_copy);

/// Every row of the care, messaging and access-trail read models, in order.
async fn small_aggregate_rows(db: &projections::Db) -> Vec<String> {
    projected_rows(
        db,
        &[
            (
                "care",
                &["care_providers", "care_relationships", "care_grants"][..],
            ),
            ("messaging", &["msg_threads", "msg_participants"][..]),
            ("access", &["access_log"][..]),
        ],
    )
    .await
}

/// Every row of the given projections' tables in their active slots, each
/// as one line of text, sorted.
async fn projected_rows(db: &projections::Db, projections: &[(&str, &[&str])]) -> Vec<String> {
    use sqlx::Row;
    let mut lines = Vec::new();
    for (name, tables) in projections.iter().copied() {
        let slot: String =
            sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = $1")
                .bind(name)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        for table in tables {
            // Every column as text, so the two stores print alike.
            let columns: Vec<String> =
                sqlx::query(&format!("SELECT * FROM {table}_{slot} LIMIT 1"))
                    .fetch_all(&db.pool)
                    .await
                    .unwrap()
                    .first()
                    .map(|r| {
                        r.columns()
                            .iter()
                            .map(|c| sqlx::Column::name(c).to_string())
                            .collect()
                    })
                    .unwrap_or_default();
            assert!(!columns.is_empty(), "{table} has rows");
            let listed = columns
                .iter()
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            for row in sqlx::query(&format!(
                "SELECT {listed} AS line FROM {table}_{slot} ORDER BY 1"
            ))
            .fetch_all(&db.pool)
            .await
            .unwrap()
            {
                lines.push(format!("{table}: {}", row.get::<String, _>("line")));
            }
        }
    }
    lines
}

/// The projections that follow the small aggregates (care, messaging, the
/// access trail) skip the portal's events in the database when they catch
/// up; a rebuild must still give every row the live slots have, and read
/// spans must cover the stream without a gap or a repeat.
async fn a_rebuild_that_skips_other_aggregates_loses_no_row(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic-a").await;
    let provider = register_provider(&server, "clinic-a", "Kari").await;
    let rel = relate(&user, &provider).await;
    grant(&user, &rel, &["MEDICATIONS"], None).await;
    let started = user
        .client
        .data(
            "mutation($p: ID!) { startConversation(subject: \"Hi\", body: \"one\", providerIds: [$p]) { conversation { uuid } } }",
            json!({ "p": provider.id }),
        )
        .await;
    let thread = started["startConversation"]["conversation"]["uuid"].clone();
    for i in 0..5 {
        user.client
            .data(
                "mutation($t: String!) { setGoal(domain: \"education\", title: $t) { version } }",
                json!({ "t": format!("goal {i}") }),
            )
            .await;
        provider
            .client
            .data(
                "query($u: ID!) { medications(portalId: $u) { name } }",
                json!({ "u": user.id }),
            )
            .await;
        provider
            .client
            .data(
                "mutation($c: ID!, $b: String!) { postMessage(conversationId: $c, body: $b) { version } }",
                json!({ "c": thread, "b": format!("reply {i}") }),
            )
            .await;
    }
    wait_caught_up(&server).await;
    let read = read_db(&db).await;

    // Spans of three events at a time, filtered to the small types, give the
    // same events as the whole stream filtered here, and end where it ends.
    let all = all_events(&read).await;
    let types = [
        domain::care::RELATIONSHIP_TYPE,
        domain::care::PROVIDER_TYPE,
        domain::messaging::CONVERSATION_TYPE,
        domain::trail::AGGREGATE_TYPE,
    ];
    let expected: Vec<i64> = all
        .iter()
        .filter(|e| types.contains(&e.aggregate_type.as_str()))
        .map(|e| e.checkpoint.position)
        .collect();
    let (mut after, mut seen, mut scanned) = (projections::Checkpoint::default(), Vec::new(), 0);
    loop {
        let span = projections::stream::read_span(&read, after, 3, &types)
            .await
            .unwrap();
        if span.scanned == 0 {
            assert_eq!(span.to, after);
            break;
        }
        assert!(span.scanned <= 3 && span.to > after);
        seen.extend(span.events.iter().map(|e| e.checkpoint.position));
        (after, scanned) = (span.to, scanned + span.scanned);
    }
    assert!(expected.len() > 10, "{expected:?}");
    assert_eq!(seen, expected);
    assert_eq!(scanned, all.len() as i64);
    assert_eq!(after, all.last().unwrap().checkpoint);

    let before = small_aggregate_rows(&read).await;
    assert!(
        before.iter().any(|l| l.starts_with("access_log:"))
            && before.iter().any(|l| l.starts_with("msg_threads:")),
        "{before:?}"
    );
    let out = portal_cli(&db, &["projections", "rebuild", "--all"]).await;
    assert!(
        out.contains(&format!("rebuilt care: {} events", all.len())),
        "{out}"
    );
    assert_eq!(small_aggregate_rows(&read).await, before);
    server.stop().await;
}
both_stores!(
    rebuild_skipping,
    a_rebuild_that_skips_other_aggregates_loses_no_row
);

/// The forum applies openings and replies in bulk; live, the runner sees
/// them a few at a time, a rebuild in batches of thousands, mixed with
/// edits, withdrawals, flags, moderation, concerns, follows and read marks.
/// Both must give the same rows.
async fn a_forum_rebuild_gives_the_same_rows(store: Store) {
    forum_rebuild_story(store, false).await
}

/// The same story with two members erased at the end (issue 18): each
/// projection blanked them live; a rebuild reads their texts as erased
/// (their keys are gone) and must give the very same rows.
async fn after_erasures_a_rebuild_gives_the_same_rows(store: Store) {
    forum_rebuild_story(store, true).await
}

async fn forum_rebuild_story(store: Store, erase: bool) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let org = "clinic-a";
    let anna = open_user(&server, org).await;
    let ben = open_user(&server, org).await;
    let nurse = register_provider(&server, org, "Nurse Joy").await;
    let moderator = server.client(Some(token(Uuid::new_v4(), api::auth::Role::Moderator, org)));
    let name = "mutation($n: String!) { chooseForumName(name: $n) { name } }";
    anna.client.data(name, json!({"n": "Night Owl"})).await;
    ben.client.data(name, json!({"n": "Sunflower"})).await;
    ben.client.data(name, json!({"n": "Sun Flower"})).await;
    moderator.data(name, json!({"n": "Kim"})).await;
    moderator
        .data(
            "mutation { addForumCategory(key: \"voices\", title: \"Voices\") { key } }",
            json!({}),
        )
        .await;
    let reply = "mutation($t: ID!, $b: String!, $q: ID) { replyToTopic(topicId: $t, body: $b, quotePostId: $q) { post { id } } }";
    let mut last_post = None;
    for t in 0..3 {
        let opened = anna
            .client
            .data(
                "mutation($t: String!) { openTopic(category: \"sleep\", title: $t, body: \"first\") { post { id topicId } } }",
                json!({"t": format!("topic {t}")}),
            )
            .await["openTopic"]["post"]
            .clone();
        let topic = opened["topicId"].as_str().unwrap().to_string();
        for r in 0..4 {
            let who = if r % 2 == 0 {
                &ben.client
            } else {
                &nurse.client
            };
            let posted = who
                .data(
                    reply,
                    json!({"t": topic, "b": format!("reply {r}"), "q": opened["id"]}),
                )
                .await;
            last_post = Some(
                posted["replyToTopic"]["post"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        // Changes to a reply right after it, with no other kind of event
        // between: a rebuild meets them in the same batch as the reply.
        let fresh = nurse
            .client
            .data(reply, json!({"t": topic, "b": "fresh"}))
            .await["replyToTopic"]["post"]["id"]
            .clone();
        nurse
            .client
            .data(
                "mutation($p: ID!) { editPost(postId: $p, body: \"fresh, edited\") { post { id } } }",
                json!({"p": fresh}),
            )
            .await;
        ben.client
            .data(
                "mutation($p: ID!) { supportPost(postId: $p) { post { id } } }",
                json!({"p": fresh}),
            )
            .await;
        if t == 2 {
            nurse
                .client
                .data(
                    "mutation($p: ID!) { withdrawPost(postId: $p) { post { id } } }",
                    json!({"p": fresh}),
                )
                .await;
        }
        anna.client
            .data(
                "mutation($t: ID!) { markTopicRead(topicId: $t, upTo: 3) { topic { unread } } }",
                json!({"t": topic}),
            )
            .await;
        if t == 1 {
            ben.client
                .data(
                    "mutation($t: ID!) { followTopic(topicId: $t, follow: false) { topic { following } } }",
                    json!({"t": topic}),
                )
                .await;
            moderator
                .data(
                    "mutation($t: ID!) { closeTopic(topicId: $t, reason: \"done\") { topic { closed } } }",
                    json!({"t": topic}),
                )
                .await;
        }
        // A reply after the changes above, in the same topic (a moderator's:
        // one topic is closed).
        moderator
            .data(reply, json!({"t": topic, "b": "later"}))
            .await;
    }
    let post = last_post.unwrap();
    anna.client
        .data(
            "mutation($p: ID!) { supportPost(postId: $p) { post { id } } }",
            json!({"p": post}),
        )
        .await;
    anna.client
        .data(
            "mutation($p: ID!) { flagPost(postId: $p, reason: SPAM) { post { id } } }",
            json!({"p": post}),
        )
        .await;
    nurse
        .client
        .data(
            "mutation($p: ID!) { editPost(postId: $p, body: \"edited\") { post { id } } }",
            json!({"p": post}),
        )
        .await;
    moderator
        .data(
            "mutation($p: ID!) { hidePost(postId: $p, reason: \"spam\") { post { id } } }",
            json!({"p": post}),
        )
        .await;
    moderator
        .data(
            "mutation($p: ID!) { restorePost(postId: $p, reason: \"fine\") { post { id } } }",
            json!({"p": post}),
        )
        .await;
    anna.client
        .data(
            "mutation($p: ID!) { raiseConcern(postId: $p) { post { id } } }",
            json!({"p": post}),
        )
        .await;
    let concern = moderator
        .data("{ moderationQueue { concerns { id } } }", json!({}))
        .await["moderationQueue"]["concerns"][0]["id"]
        .clone();
    moderator
        .data(
            "mutation($c: ID!) { resolveConcern(concernId: $c, action: NO_ACTION_NEEDED) { concern { id } } }",
            json!({"c": concern}),
        )
        .await;
    if erase {
        // Goals, a conversation and a recorded read, so every projection
        // has something of theirs to blank, and of others' to keep.
        for who in [&anna, &ben] {
            let goal = who
                .client
                .data(
                    "mutation { setGoal(domain: \"housing\", title: \"A home\", description: \"mine\") { goal { id } } }",
                    json!({}),
                )
                .await["setGoal"]["goal"]["id"]
                .clone();
            who.client
                .data(
                    "mutation($g: ID!) { planActivity(goalId: $g, title: \"Call\") { version } }",
                    json!({ "g": goal }),
                )
                .await;
        }
        let rel = relate(&ben, &nurse).await;
        grant(&ben, &rel, &["MEDICATIONS"], None).await;
        ben.client
            .data(
                "mutation($p: ID!) { startConversation(subject: \"Ben's subject\", body: \"hello\", providerIds: [$p]) { conversation { uuid } } }",
                json!({ "p": nurse.id }),
            )
            .await;
        nurse
            .client
            .data(
                "query($u: ID!) { medications(portalId: $u) { name } }",
                json!({ "u": ben.id }),
            )
            .await;
        let admin = server.client(Some(token(Uuid::new_v4(), api::auth::Role::Admin, org)));
        for person in [anna.id, nurse.id] {
            admin
                .data(
                    "mutation($p: ID!) { orderErasure(personId: $p) { erasure { state } } }",
                    json!({ "p": person }),
                )
                .await;
        }
    }
    wait_caught_up(&server).await;
    let read = read_db(&db).await;
    if erase {
        let projections: &[(&str, &[&str])] = &[
            (
                "control_panel",
                &[
                    "cp_portals",
                    "cp_domains",
                    "cp_goals",
                    "cp_activities",
                    "cp_sections",
                ][..],
            ),
            (
                "care",
                &[
                    "care_providers",
                    "care_relationships",
                    "care_grants",
                    "erasures",
                ][..],
            ),
            ("messaging", &["msg_threads", "msg_participants"][..]),
            ("access", &["access_log"][..]),
            (
                "forum",
                &[
                    "forum_names",
                    "forum_name_history",
                    "forum_topics",
                    "forum_posts",
                    "forum_revisions",
                    "forum_flags",
                    "forum_concerns",
                    "forum_log",
                ][..],
            ),
        ];
        let before = projected_rows(&read, projections).await;
        assert!(
            before
                .iter()
                .any(|l| l.starts_with("erasures:") && l.contains(&anna.id.to_string())),
            "{before:?}"
        );
        portal_cli(&db, &["projections", "rebuild", "--all"]).await;
        assert_eq!(projected_rows(&read, projections).await, before);
    }
    let tables: &[&str] = &[
        "forum_names",
        "forum_name_history",
        "forum_categories",
        "forum_topics",
        "forum_posts",
        "forum_revisions",
        "forum_supports",
        "forum_flags",
        "forum_concerns",
        "forum_log",
        "forum_follows",
    ];
    let before = projected_rows(&read, &[("forum", tables)]).await;
    let out = portal_cli(&db, &["projections", "rebuild", "forum"]).await;
    assert!(out.contains("rebuilt forum"), "{out}");
    assert_eq!(projected_rows(&read, &[("forum", tables)]).await, before);
    server.stop().await;
}
both_stores!(forum_rebuild, a_forum_rebuild_gives_the_same_rows);
both_stores!(
    erasure_rebuild,
    after_erasures_a_rebuild_gives_the_same_rows
);
