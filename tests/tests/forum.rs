//! The peer-support forum over HTTP and WebSocket, on both stores: two
//! members under pseudonyms, a staff reply, a flag threshold reached and a
//! moderator restoring, a concern raised, raised again unopened (with the
//! organisation's hook run) and acted on, a pseudonym resolved by an admin
//! and shown in the person's access log, an author editing and withdrawing,
//! silences, closing, unread counts, and live delivery to followers and
//! moderators.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use futures::SinkExt;
use portal_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

const SECONDS: Duration = Duration::from_secs(10);

const UPDATES: &str = "subscription { liveUpdates { kind byId body topicId postId concernId authorName guidance round } }";

/// A socket subscribed to live updates, live once this returns.
async fn live(server: &Server, client: &Client) -> Socket {
    let mut socket = connect(server, client.token.as_deref().unwrap())
        .await
        .unwrap();
    let start = json!({ "type": "subscribe", "id": "1", "payload": { "query": UPDATES } });
    socket
        .send(Frame::Text(start.to_string().into()))
        .await
        .unwrap();
    let first = update(&mut socket, SECONDS).await.expect("goes live");
    assert_eq!(first["kind"], "SUBSCRIBED", "{first}");
    socket
}

async fn update(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = next_frame(socket, wait).await?;
        if frame["type"] == "next" {
            return Some(frame["payload"]["data"]["liveUpdates"].clone());
        }
    }
}

/// The next new post by `author`, skipping others: a subscriber may also
/// hear of posts made just before it subscribed, in topics it follows now.
/// Never one's own (`own`).
async fn post_by(socket: &mut Socket, author: &str, own: &str) -> Value {
    loop {
        let got = update_of(socket, "FORUM_POST").await;
        assert_ne!(got["authorName"], own, "heard of one's own post: {got}");
        if got["authorName"] == author {
            return got;
        }
    }
}

/// The next update of `kind`, skipping others.
async fn update_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let got = update(socket, SECONDS)
            .await
            .unwrap_or_else(|| panic!("no {kind} update came"));
        if got["kind"] == kind {
            return got;
        }
    }
}

const TOPIC: &str = "query($t: ID!) { forum { me { name kind unreadTotal silencedUntil } topic(id: $t) { uuid title closed following unread postCount author { name kind isYou } posts { nodes { id uuid number body edited revisionCount withdrawn hidden hiddenReason supportCount supportedByYou yours flagScore author { name kind profession isYou } quote { postId number excerpt author { name } } } } } } }";

async fn topic(client: &Client, topic: &str) -> Value {
    client.data(TOPIC, json!({ "t": topic })).await["forum"].clone()
}

fn post(forum: &Value, number: i64) -> &Value {
    forum["topic"]["posts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == number)
        .unwrap_or_else(|| panic!("no post {number} in {forum}"))
}

async fn story(store: Store) {
    let db = fresh_db(store).await;
    let hook_dir = tempdir();
    let hook = hook_dir.join("on-call.sh");
    let called = hook_dir.join("called.jsonl");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >> '{}'\necho >> '{}'\n",
            called.display(),
            called.display()
        ),
    )
    .unwrap();
    make_executable(&hook);
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_FORUM_CONCERN_RERAISE_SECONDS", "1"),
            (
                "PORTAL_FORUM_CONCERN_GUIDANCE",
                "Call the on-call peer worker at 555-0100.",
            ),
            ("PORTAL_FORUM_CONCERN_COMMAND", hook.to_str().unwrap()),
        ],
    )
    .await;
    let org = "clinic";
    let anna = open_user(&server, org).await;
    let ben = open_user(&server, org).await;
    let nurse = register_provider(&server, org, "Nurse Joy").await;
    let moderator_id = Uuid::new_v4();
    let moderator = server.client(Some(token(moderator_id, Role::Moderator, org)));
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, org)));
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, org)));
    let researcher = server.client(Some(token(Uuid::new_v4(), Role::Researcher, org)));
    let elsewhere = server.client(Some(token(anna.id, Role::ServiceUser, "other-clinic")));

    // Given the default categories, when Anna has no name, then she reads
    // but cannot post.
    let categories = anna
        .client
        .data("{ forum { me { name } categories { key } } }", json!({}))
        .await;
    assert_eq!(categories["forum"]["me"]["name"], Value::Null);
    assert_eq!(
        categories["forum"]["categories"][2]["key"], "sleep",
        "{categories}"
    );
    let open_topic = "mutation($b: String!) { openTopic(category: \"sleep\", title: \"Awake at 4\", body: $b) { post { id uuid topicId number } } }";
    assert_eq!(
        anna.client
            .error_code(open_topic, json!({"b": "Anyone else?"}))
            .await,
        "FAILED_PRECONDITION"
    );
    // Names are unique whatever the case and spelling.
    let choose = "mutation($n: String!) { chooseForumName(name: $n) { name kind } }";
    anna.client.data(choose, json!({"n": "Night Owl"})).await;
    assert_eq!(
        ben.client
            .error_code(choose, json!({"n": "night_OWL"}))
            .await,
        "FAILED_PRECONDITION"
    );
    assert_eq!(
        ben.client
            .error_code(choose, json!({"n": "Moderator"}))
            .await,
        "BAD_USER_INPUT"
    );
    ben.client.data(choose, json!({"n": "Sunflower"})).await;
    moderator
        .data(choose, json!({"n": "Peer worker Kim"}))
        .await;
    // Staff take part under their profile's name; they choose none.
    assert_eq!(
        nurse.client.error_code(choose, json!({"n": "Joy"})).await,
        "FORBIDDEN"
    );

    // Anna opens a topic; she follows it by posting.
    let opened = anna
        .client
        .data(
            open_topic,
            json!({"b": "Anyone else awake at 4 every night?"}),
        )
        .await["openTopic"]["post"]
        .clone();
    let first_post = opened["id"].as_str().unwrap().to_string();
    let topic_id = opened["topicId"].as_str().unwrap().to_string();
    let mut anna_live = live(&server, &anna.client).await;
    let mut moderator_live = live(&server, &moderator).await;
    let mut ben_live = live(&server, &ben.client).await;

    // Ben replies quoting her; the nurse replies as staff.
    let reply = "mutation($t: ID!, $b: String!, $q: ID) { replyToTopic(topicId: $t, body: $b, quotePostId: $q) { post { id uuid number } } }";
    let bens = ben
        .client
        .data(
            reply,
            json!({"t": topic_id, "b": "Me too. It is lonely at that hour.", "q": first_post}),
        )
        .await["replyToTopic"]["post"]
        .clone();
    let bens_post = bens["id"].as_str().unwrap().to_string();
    // Anna, who follows the topic, hears of it live, by Ben's pseudonym only.
    let heard = post_by(&mut anna_live, "Sunflower", "Night Owl").await;
    assert_eq!(heard["byId"], Value::Null, "{heard}");
    assert_eq!(heard["body"], "Me too. It is lonely at that hour.");
    assert!(!heard.to_string().contains(&ben.id.to_string()));
    nurse
        .client
        .data(
            reply,
            json!({"t": topic_id, "b": "Sleep hygiene can help; ask your team about it."}),
        )
        .await;
    post_by(&mut anna_live, "Nurse Joy", "Night Owl").await;
    // Ben follows too (he replied): he hears of the nurse's post, not his own.
    post_by(&mut ben_live, "Nurse Joy", "Sunflower").await;

    // What Ben sees: names and kinds, never who anyone is.
    let seen = topic(&ben.client, &topic_id).await;
    let text = seen.to_string();
    for id in [anna.id, nurse.id, moderator_id] {
        assert!(
            !text.contains(&id.to_string()),
            "a person id leaked: {text}"
        );
    }
    assert_eq!(seen["topic"]["author"]["name"], "Night Owl");
    assert_eq!(post(&seen, 2)["yours"], true);
    assert_eq!(post(&seen, 2)["quote"]["author"]["name"], "Night Owl");
    assert_eq!(
        post(&seen, 2)["quote"]["excerpt"],
        "Anyone else awake at 4 every night?"
    );
    assert_eq!(post(&seen, 3)["author"]["kind"], "STAFF");
    assert_eq!(post(&seen, 3)["author"]["profession"], "NURSE");
    assert_eq!(
        post(&seen, 3)["flagScore"],
        Value::Null,
        "members see no scores"
    );
    // Anna has two unread posts, in the topic and in total; reading clears them.
    let annas = topic(&anna.client, &topic_id).await;
    assert_eq!(annas["topic"]["unread"], 2, "{annas}");
    assert_eq!(annas["me"]["unreadTotal"], 2, "{annas}");
    anna.client
        .data(
            "mutation($t: ID!) { markTopicRead(topicId: $t) { topic { unread } } }",
            json!({"t": topic_id}),
        )
        .await;
    assert_eq!(topic(&anna.client, &topic_id).await["topic"]["unread"], 0);

    // Support: one per person per post, not one's own.
    let support =
        "mutation($p: ID!) { supportPost(postId: $p) { post { supportCount supportedByYou } } }";
    let supported = anna.client.data(support, json!({"p": bens_post})).await;
    assert_eq!(supported["supportPost"]["post"]["supportCount"], 1);
    assert_eq!(
        anna.client
            .error_code(support, json!({"p": bens_post}))
            .await,
        "FAILED_PRECONDITION"
    );
    assert_eq!(
        ben.client
            .error_code(support, json!({"p": bens_post}))
            .await,
        "FORBIDDEN"
    );

    // Flags: a peer (1) and staff (2) reach the threshold (3): hidden
    // pending review. Its author sees it and why; others see that it was hidden.
    let flag = "mutation($p: ID!, $r: FlagReason!) { flagPost(postId: $p, reason: $r) { post { hidden } } }";
    let after_one = anna
        .client
        .data(flag, json!({"p": bens_post, "r": "HURTFUL"}))
        .await;
    assert_eq!(after_one["flagPost"]["post"]["hidden"], false);
    assert_eq!(
        anna.client
            .error_code(flag, json!({"p": bens_post, "r": "SPAM"}))
            .await,
        "FAILED_PRECONDITION",
        "one flag per person per post"
    );
    nurse
        .client
        .data(flag, json!({"p": bens_post, "r": "HURTFUL"}))
        .await;
    let annas = topic(&anna.client, &topic_id).await;
    assert_eq!(post(&annas, 2)["hidden"], true);
    assert_eq!(post(&annas, 2)["body"], Value::Null);
    assert_eq!(post(&annas, 2)["hiddenReason"], Value::Null);
    let bens_view = topic(&ben.client, &topic_id).await;
    assert_eq!(
        post(&bens_view, 2)["body"],
        "Me too. It is lonely at that hour."
    );
    assert_eq!(
        post(&bens_view, 2)["hiddenReason"],
        "hidden pending review: members flagged it as hurtful"
    );
    // The moderator's queue has it, with its score and flags (not who flagged).
    let queue = moderator
        .data(
            "{ moderationQueue { guidance flagged { topicTitle post { id flagScore body } flags { reason weight } } } }",
            json!({}),
        )
        .await["moderationQueue"]
        .clone();
    assert_eq!(
        queue["guidance"],
        "Call the on-call peer worker at 555-0100."
    );
    assert_eq!(queue["flagged"][0]["post"]["id"], bens_post.as_str());
    assert_eq!(queue["flagged"][0]["post"]["flagScore"], 3);
    assert_eq!(queue["flagged"][0]["topicTitle"], "Awake at 4");
    assert_eq!(
        queue["flagged"][0]["flags"],
        json!([{"reason": "HURTFUL", "weight": 1}, {"reason": "HURTFUL", "weight": 2}])
    );
    assert!(!queue.to_string().contains(&anna.id.to_string()));
    // Members do not moderate.
    let restore = "mutation($p: ID!, $r: String!) { restorePost(postId: $p, reason: $r) { post { hidden body } } }";
    assert_eq!(
        anna.client
            .error_code(restore, json!({"p": bens_post, "r": "fine"}))
            .await,
        "FORBIDDEN"
    );
    // The moderator restores it: everyone reads it again; the queue is empty.
    let restored = moderator
        .data(
            restore,
            json!({"p": bens_post, "r": "Read in context it is support, not hurt."}),
        )
        .await;
    assert_eq!(restored["restorePost"]["post"]["hidden"], false);
    assert_eq!(
        post(&topic(&anna.client, &topic_id).await, 2)["body"],
        "Me too. It is lonely at that hour."
    );
    let queue = moderator
        .data("{ moderationQueue { flagged { post { id } } } }", json!({}))
        .await;
    assert_eq!(queue["moderationQueue"]["flagged"], json!([]));

    // A concern for Anna: it hides nothing, reaches the moderator live with
    // the guidance, and is raised again while nobody opens it.
    let concerned = ben
        .client
        .data(
            "mutation($p: ID!) { raiseConcern(postId: $p, note: \"She sounds hopeless lately.\") { post { hidden } } }",
            json!({"p": first_post}),
        )
        .await;
    assert_eq!(concerned["raiseConcern"]["post"]["hidden"], false);
    let raised = update_of(&mut moderator_live, "CONCERN").await;
    assert_eq!(raised["round"], 0, "{raised}");
    assert_eq!(raised["body"], "She sounds hopeless lately.");
    assert_eq!(
        raised["guidance"],
        "Call the on-call peer worker at 555-0100."
    );
    let concern_id = raised["concernId"].as_str().unwrap().to_string();
    // Members hear nothing of concerns.
    assert!(
        update(&mut anna_live, Duration::from_millis(500))
            .await
            .is_none_or(|u| u["kind"] != "CONCERN"),
        "a member heard of a concern"
    );
    let again = update_of(&mut moderator_live, "CONCERN").await;
    assert!(again["round"].as_i64().unwrap() >= 1, "{again}");
    assert_eq!(again["concernId"], concern_id.as_str());
    // The organisation's hook ran, with no text and no name.
    let mut hooked = String::new();
    for _ in 0..100 {
        hooked = std::fs::read_to_string(&called).unwrap_or_default();
        if !hooked.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call: Value = serde_json::from_str(hooked.lines().next().unwrap()).unwrap();
    assert_eq!(call["organisation"], org);
    assert!(call["round"].as_i64().unwrap() >= 1);
    assert!(!hooked.contains("hopeless") && !hooked.contains("Night Owl"));
    // On top of the queue, with its post and the guidance.
    let queue = moderator
        .data(
            "{ moderationQueue { concerns { id note raisedAgain openedAt post { body author { name } } guidance } } }",
            json!({}),
        )
        .await["moderationQueue"]["concerns"]
        .clone();
    assert_eq!(queue[0]["id"], concern_id.as_str());
    assert_eq!(queue[0]["post"]["author"]["name"], "Night Owl");
    assert_eq!(queue[0]["openedAt"], Value::Null);
    // The moderator opens it (no more raising) and records what was done.
    moderator
        .data(
            "mutation($c: ID!) { openConcern(concernId: $c) { concern { openedAt } } }",
            json!({"c": concern_id}),
        )
        .await;
    let resolved = moderator
        .data(
            "mutation($c: ID!) { resolveConcern(concernId: $c, action: CONTACTED_PERSON, note: \"Messaged her; she is with her sister tonight.\") { concern { resolvedAt action outcome } } }",
            json!({"c": concern_id}),
        )
        .await;
    assert_eq!(
        resolved["resolveConcern"]["concern"]["action"],
        "CONTACTED_PERSON"
    );
    let queue = moderator
        .data("{ moderationQueue { concerns { id } } }", json!({}))
        .await;
    assert_eq!(queue["moderationQueue"]["concerns"], json!([]));
    // Opened: it is raised no more.
    let rounds = |events: &[projections::StoredEvent]| {
        events
            .iter()
            .filter(|e| e.event_type == "ConcernRaisedAgain")
            .count()
    };
    let before = rounds(&all_events(&read_db(&db).await).await);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(rounds(&all_events(&read_db(&db).await).await), before);

    // The moderation log, for moderators and auditors, not members.
    let log = "{ moderationLog { nodes { action moderatorId moderatorName targetKind reason reverted } } }";
    let entries = auditor.data(log, json!({})).await["moderationLog"]["nodes"].clone();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["concern_resolved", "post_restored", "post_hidden"]
    );
    assert_eq!(entries[2]["moderatorId"], Value::Null, "hidden by flags");
    assert_eq!(entries[2]["reverted"], true);
    assert_eq!(entries[1]["moderatorName"], "Peer worker Kim");
    // Auditors see who acted, by person; moderators see one another by name only.
    assert_eq!(entries[1]["moderatorId"], moderator_id.to_string().as_str());
    let seen_by_moderator = moderator.data(log, json!({})).await;
    assert_eq!(
        seen_by_moderator["moderationLog"]["nodes"][1]["moderatorId"],
        Value::Null
    );
    assert_eq!(anna.client.error_code(log, json!({})).await, "FORBIDDEN");
    assert_eq!(
        auditor
            .error_code("{ forum { categories { key } } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        researcher
            .error_code("{ forum { categories { key } } }", json!({}))
            .await,
        "FORBIDDEN"
    );

    // An admin learns who is behind "night owl" only with a reason; the
    // person sees it, and why, in their access log.
    let holder = "query($n: String!, $r: String!) { forumNameHolder(name: $n, reason: $r) { personId name kind } }";
    assert_eq!(
        moderator
            .error_code(holder, json!({"n": "Night Owl", "r": "safety"}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        admin
            .error_code(holder, json!({"n": "Night Owl", "r": "  "}))
            .await,
        "BAD_USER_INPUT"
    );
    let resolved = admin
        .data(
            holder,
            json!({"n": "night-owl", "r": "Concern for her safety; the crisis team must reach her."}),
        )
        .await;
    assert_eq!(
        resolved["forumNameHolder"]["personId"],
        anna.id.to_string().as_str()
    );
    assert_eq!(resolved["forumNameHolder"]["name"], "Night Owl");
    // The access log is a read model: it shows the record once projected.
    wait_caught_up(&server).await;
    let access_log = anna
        .client
        .data(
            "{ myAccessLog { entries { nodes { section readerRole basis detail query } } } }",
            json!({}),
        )
        .await;
    let entry = access_log["myAccessLog"]["entries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["section"] == "FORUM_IDENTITY")
        .unwrap_or_else(|| panic!("no identity entry in {access_log}"))
        .clone();
    assert_eq!(entry["readerRole"], "ADMIN");
    assert_eq!(entry["basis"], "ADMIN");
    assert!(entry["detail"]
        .as_str()
        .unwrap()
        .contains("the crisis team must reach her"));
    assert_eq!(
        admin
            .error_code(holder, json!({"n": "Nobody Here", "r": "check"}))
            .await,
        "NOT_FOUND"
    );

    // Moderators set the categories: a new one, a retired one (no new topics).
    let add = "mutation { addForumCategory(key: \"voices\", title: \"Hearing voices\") { key title retired } }";
    assert_eq!(anna.client.error_code(add, json!({})).await, "FORBIDDEN");
    let added = moderator.data(add, json!({})).await["addForumCategory"].clone();
    assert!(
        added
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["key"] == "voices"),
        "{added}"
    );
    let retired = moderator
        .data(
            "mutation { retireForumCategory(key: \"recovery_stories\", reason: \"Merged\") { key retired } }",
            json!({}),
        )
        .await["retireForumCategory"]
        .clone();
    assert!(retired
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "recovery_stories" && c["retired"] == true));
    assert_eq!(
        anna.client
            .error_code(
                "mutation { openTopic(category: \"recovery_stories\", title: \"T\", body: \"B\") { post { id } } }",
                json!({}),
            )
            .await,
        "NOT_FOUND"
    );
    let keys = anna
        .client
        .data("{ forum { categories { key } } }", json!({}))
        .await;
    assert!(keys.to_string().contains("voices"), "{keys}");

    // Anna edits her post: members see the latest and that it was edited;
    // moderators read every revision.
    let edit = "mutation($p: ID!) { editPost(postId: $p, body: \"Anyone else awake at 4? It got better this week.\") { post { edited revisionCount body } } }";
    assert_eq!(
        ben.client.error_code(edit, json!({"p": first_post})).await,
        "FORBIDDEN"
    );
    let edited = anna.client.data(edit, json!({"p": first_post})).await;
    assert_eq!(edited["editPost"]["post"]["revisionCount"], 2);
    let revisions =
        "query($p: ID!) { node(id: $p) { ... on ForumPost { revisions { revision body } } } }";
    assert_eq!(
        ben.client
            .error_code(revisions, json!({"p": first_post}))
            .await,
        "FORBIDDEN"
    );
    let seen = moderator.data(revisions, json!({"p": first_post})).await;
    assert_eq!(
        seen["node"]["revisions"][0]["body"],
        "Anyone else awake at 4 every night?"
    );

    // Silenced, Ben reads and cannot write; lifted, he writes again.
    let silenced = moderator
        .data(
            "mutation($p: ID!) { silenceMember(postId: $p, days: 2, reason: \"Cooling off\") { id member until } }",
            json!({"p": bens_post}),
        )
        .await["silenceMember"]
        .clone();
    assert_eq!(silenced["member"], "Sunflower");
    let hello = json!({"t": topic_id, "b": "hello"});
    assert_eq!(
        ben.client.error_code(reply, hello.clone()).await,
        "FORBIDDEN"
    );
    assert!(topic(&ben.client, &topic_id).await["me"]["silencedUntil"].is_string());
    moderator
        .data(
            "mutation($s: UUID!) { liftSilence(silenceId: $s, reason: \"Talked it through\") }",
            json!({"s": silenced["id"]}),
        )
        .await;
    ben.client.data(reply, hello.clone()).await;

    // Closed, the topic takes replies from moderators only.
    let close = "mutation($t: ID!, $c: Boolean!) { closeTopic(topicId: $t, reason: \"Resolved\", closed: $c) { topic { closed } } }";
    assert_eq!(
        ben.client
            .error_code(close, json!({"t": topic_id, "c": true}))
            .await,
        "FORBIDDEN"
    );
    moderator
        .data(close, json!({"t": topic_id, "c": true}))
        .await;
    assert_eq!(
        ben.client.error_code(reply, hello.clone()).await,
        "FAILED_PRECONDITION"
    );
    moderator
        .data(
            reply,
            json!({"t": topic_id, "b": "Closing this; thank you all."}),
        )
        .await;

    // Anna withdraws her first post: its text leaves every view, the
    // moderators' and the read model's included; the history keeps it.
    let withdrawn = anna
        .client
        .data(
            "mutation($p: ID!) { withdrawPost(postId: $p) { post { withdrawn body } } }",
            json!({"p": first_post}),
        )
        .await;
    assert_eq!(withdrawn["withdrawPost"]["post"]["body"], Value::Null);
    for client in [&anna.client, &ben.client, &moderator] {
        let seen = topic(client, &topic_id).await;
        assert_eq!(post(&seen, 1)["withdrawn"], true);
        assert_eq!(post(&seen, 1)["body"], Value::Null);
        // Ben's quote of it shows no excerpt any more.
        assert_eq!(post(&seen, 2)["quote"]["excerpt"], Value::Null);
    }
    let seen = moderator.data(revisions, json!({"p": first_post})).await;
    assert_eq!(seen["node"]["revisions"][0]["body"], Value::Null);
    wait_caught_up(&server).await;
    let read = read_db(&db).await;
    let slot = projected_slot(&read, "forum").await;
    for table in ["forum_posts", "forum_revisions"] {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT body FROM {table}_{slot} WHERE body LIKE '%awake at 4%'"
        ))
        .fetch_all(&read.pool)
        .await
        .unwrap();
        assert!(rows.is_empty(), "{table} still holds the withdrawn text");
    }
    let events = all_events(&read).await;
    assert!(events.iter().any(|e| e.event_type == "PostWithdrawn"));
    assert!(events
        .iter()
        .any(|e| e.payload.contains("Anyone else awake at 4 every night?")));

    // Moderators see the history of names, not who holds them.
    ben.client
        .data(choose, json!({"n": "Sun Flower Two"}))
        .await;
    let history = moderator
        .data("{ forumNameHistory { name previous kind } }", json!({}))
        .await;
    assert_eq!(
        history["forumNameHistory"][0],
        json!({"name": "Sun Flower Two", "previous": "Sunflower", "kind": "PEER"})
    );
    assert!(!history.to_string().contains(&ben.id.to_string()));

    // Another organisation sees nothing, whatever id it carries.
    assert_eq!(
        elsewhere.error_code(TOPIC, json!({"t": topic_id})).await,
        "NOT_FOUND"
    );
    server.stop().await;

    // The name's resolution is a trail record like any other: it verifies.
    let (ok, out, _) = portal_cli_status(&db, &["audit", "verify"]).await;
    assert!(ok, "{out}");
}
both_stores!(forum_story, story);

/// The slot the projection `name` reads from now.
async fn projected_slot(db: &projections::Db, name: &str) -> String {
    let row: (String,) = sqlx::query_as("SELECT active_slot FROM projection_slots WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    row.0
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portal-forum-hook-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions).unwrap();
}
