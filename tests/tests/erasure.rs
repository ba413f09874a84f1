//! Erasure by destroying the key (issue 18), on both stores, over HTTP.
//!
//! A service user writes into every part of the service; then their
//! organisation orders them erased. Afterwards no text of theirs is found
//! anywhere in the database (SQLite's file and its log, read byte for byte;
//! every row of every PostgreSQL table), every query still answers, saying
//! what was erased, the access trail still verifies, and a copy of the
//! store taken before the erasure, started again beside the erasure ledger,
//! does not bring them back. A request of one's own waits, can be cancelled,
//! and is carried out when it falls due.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

const ORG: &str = "clinic";

/// What the user writes: each must be gone from the store afterwards.
const GOAL: &str = "Kestrel goal of the erased person";
const GOAL_WHY: &str = "Because the Kestrel flies at dawn";
const MEDICATION: &str = "Quetiapinexyz forty";
const PLAN: &str = "Warning sign: the Ptarmigan silence";
const NETWORK: &str = "Auntie Wrenna Quillfeather";
const SUBJECT: &str = "About the Cormorant appointment";
const MESSAGE: &str = "I felt the Cormorant feeling again";
const PSEUDONYM: &str = "Nightjar Seven";
const TOPIC: &str = "Sleeping like a Nightjar";
const POST: &str = "My Nightjar nights are long";
const NOTE: &str = "Status note about the Plover";

const SECRETS: [&str; 11] = [
    GOAL, GOAL_WHY, MEDICATION, PLAN, NETWORK, SUBJECT, MESSAGE, PSEUDONYM, TOPIC, POST, NOTE,
];
/// What the provider wrote: theirs, kept.
const REPLY: &str = "Thank you, we will talk on Tuesday";

/// Every stored byte: the SQLite file and its log, or every row of every
/// PostgreSQL table as text.
async fn everything_stored(db: &TestDb) -> String {
    match db.store {
        Store::Sqlite => {
            let mut bytes = Vec::new();
            for file in ["portal.db", "portal.db-wal"] {
                if let Ok(b) = std::fs::read(db.dir.join(file)) {
                    bytes.extend(b);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Store::Postgres => {
            let read = read_db(db).await;
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&read.pool)
            .await
            .unwrap();
            let mut all = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(t AS text) FROM \"{table}\" t"))
                        .fetch_all(&read.pool)
                        .await
                        .unwrap();
                all.push_str(&rows.join("\n"));
            }
            all
        }
    }
}

fn found(stored: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .copied()
        .filter(|s| stored.contains(s))
        .collect()
}

struct Written {
    user: User,
    provider: Provider,
    conversation: String,
    post: String,
}

async fn write_everything(server: &Server) -> Written {
    let user = open_user(server, ORG).await;
    let provider = register_provider(server, ORG, "Dr Ada Okafor").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE", "MEDICATIONS"], None).await;
    let c = &user.client;
    c.data(
        "mutation($t: String!, $d: String!) { setGoal(domain: \"housing\", title: $t, description: $d) { version } }",
        json!({ "t": GOAL, "d": GOAL_WHY }),
    )
    .await;
    c.data(
        "mutation($n: String!) { rateStatus(domain: \"housing\", score: 6, note: $n) { version } }",
        json!({ "n": NOTE }),
    )
    .await;
    c.data(
        "mutation($n: String!) { addMedication(name: $n, dose: \"25 mg\", schedule: \"nightly\") { version } }",
        json!({ "n": MEDICATION }),
    )
    .await;
    c.data(
        "mutation($p: String!) { reviseCrisisPlan(plan: { warningSigns: [$p] }) { version } }",
        json!({ "p": PLAN }),
    )
    .await;
    c.data(
        "mutation($n: String!) { addPerson(displayName: $n, relation: FAMILY, closeness: 4) { version } }",
        json!({ "n": NETWORK }),
    )
    .await;
    let started = c
        .data(
            "mutation($s: String!, $b: String!, $p: ID!) { startConversation(subject: $s, body: $b, providerIds: [$p]) { conversation { uuid } } }",
            json!({ "s": SUBJECT, "b": MESSAGE, "p": provider.id }),
        )
        .await;
    let conversation = started["startConversation"]["conversation"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    provider
        .client
        .data(
            "mutation($c: ID!, $b: String!) { postMessage(conversationId: $c, body: $b) { version } }",
            json!({ "c": conversation, "b": REPLY }),
        )
        .await;
    c.data(
        "mutation($n: String!) { chooseForumName(name: $n) { name } }",
        json!({ "n": PSEUDONYM }),
    )
    .await;
    let opened = c
        .data(
            "mutation($t: String!, $b: String!) { openTopic(category: \"sleep\", title: $t, body: $b) { post { id } } }",
            json!({ "t": TOPIC, "b": POST }),
        )
        .await;
    let post = opened["openTopic"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A recorded read by the provider.
    provider
        .client
        .data(
            "query($p: ID) { medications(portalId: $p) { name } }",
            json!({ "p": user.id }),
        )
        .await;
    Written {
        user,
        provider,
        conversation,
        post,
    }
}

/// What every query answers about the erased person.
async fn reads_say_erased(server: &Server, w: &Written) {
    let user = server.client(Some(token(w.user.id, Role::ServiceUser, ORG)));
    let mine = user
        .data("{ myErasure { state erasedAt basis } }", json!({}))
        .await;
    assert_eq!(mine["myErasure"]["state"], "ERASED", "{mine}");
    assert_eq!(mine["myErasure"]["basis"], "ORGANISATION_ORDER", "{mine}");
    let panel = user
        .data(
            "{ controlPanel { erasedAt domains { name activeGoals { title } } sections { section items } } }",
            json!({}),
        )
        .await;
    assert!(panel["controlPanel"]["erasedAt"].is_string(), "{panel}");
    assert_eq!(panel["controlPanel"]["domains"], json!([]), "{panel}");
    for query in ["{ medications { name } }", "{ network { displayName } }"] {
        let answer = user.data(query, json!({})).await;
        let list = answer.as_object().unwrap().values().next().unwrap();
        assert_eq!(list, &json!([]), "{query}: {answer}");
    }
    // Nothing more is written for them.
    assert_eq!(
        user.error_code(
            "mutation { setGoal(domain: \"housing\", title: \"again\") { version } }",
            json!({})
        )
        .await,
        "FAILED_PRECONDITION"
    );
    // The provider: the portal reads as empty; the message reads as erased,
    // their own reply stays.
    let provider = &server.client(Some(token(w.provider.id, Role::Provider, ORG)));
    let meds = provider
        .data(
            "query($p: ID) { medications(portalId: $p) { name } }",
            json!({ "p": w.user.id }),
        )
        .await;
    assert_eq!(meds["medications"], json!([]), "{meds}");
    let thread = provider
        .data(
            "query($c: ID!) { conversation(conversationId: $c) { subject messages { nodes { body erased authorId } } } }",
            json!({ "c": w.conversation }),
        )
        .await;
    let messages = thread["conversation"]["messages"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(messages.len(), 2, "{thread}");
    assert_eq!(messages[0]["erased"], true, "{thread}");
    assert_eq!(messages[0]["body"], "", "{thread}");
    assert_eq!(messages[1]["erased"], false, "{thread}");
    assert_eq!(messages[1]["body"], REPLY, "{thread}");
    // The forum post: no words, no pseudonym.
    let post = provider
        .data(
            "query($id: ID!) { node(id: $id) { ... on ForumPost { body erased author { name } } } }",
            json!({ "id": w.post }),
        )
        .await;
    let shown = post.to_string();
    assert!(found(&shown).is_empty(), "{shown}");
    assert_eq!(post["node"]["erased"], true, "{shown}");
}

async fn an_ordered_erasure_leaves_nothing_readable(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let w = write_everything(&server).await;
    wait_caught_up(&server).await;
    // Before: the texts are in the read models (not in the events).
    let before = found(&everything_stored(&db).await);
    assert!(before.contains(&GOAL), "{before:?}");
    // Another user asks, sees when it falls due, and cancels.
    let other = open_user(&server, ORG).await;
    let asked = other
        .client
        .data(
            "mutation { requestErasure { erasure { state dueAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        asked["requestErasure"]["erasure"]["state"], "REQUESTED",
        "{asked}"
    );
    let due: chrono::DateTime<chrono::Utc> = asked["requestErasure"]["erasure"]["dueAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        due > chrono::Utc::now() + chrono::Duration::days(29),
        "{asked}"
    );
    let cancelled = other
        .client
        .data(
            "mutation { cancelErasure { erasure { state dueAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        cancelled["cancelErasure"]["erasure"]["state"], "NONE",
        "{cancelled}"
    );
    // Providers and other organisations' admins may not order it.
    let stranger = server.client(Some(token(Uuid::new_v4(), Role::Admin, "elsewhere")));
    let order = "mutation($p: ID!) { orderErasure(personId: $p) { erasure { state } } }";
    assert_eq!(
        stranger.error_code(order, json!({ "p": w.user.id })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        w.provider
            .client
            .error_code(order, json!({ "p": w.user.id }))
            .await,
        "FORBIDDEN"
    );
    server.stop().await;

    // A copy of the store from before the erasure.
    let backup = take_backup(&db).await;

    let server = Server::start(&db).await;
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, ORG)));
    let ordered = admin.data(order, json!({ "p": w.user.id })).await;
    assert_eq!(
        ordered["orderErasure"]["erasure"]["state"], "ERASED",
        "{ordered}"
    );
    wait_caught_up(&server).await;
    reads_say_erased(&server, &w).await;
    server.stop().await;

    let after = everything_stored(&db).await;
    assert_eq!(
        found(&after),
        Vec::<&str>::new(),
        "left in the store after erasure"
    );
    let (ok, out, err) = portal_cli_status(&db, &["audit", "verify"]).await;
    assert!(ok, "{out}{err}");

    // The copy from before, started beside the ledger: erased again. (The
    // witness tells the operator the trail was rolled back, as any restore
    // of an older copy does; they accept it to serve.)
    let restored = restore(&db, backup).await;
    let server = Server::start_with(&restored, &[("PORTAL_ACCEPT_WITNESS_LOSS", "true")]).await;
    wait_caught_up(&server).await;
    reads_say_erased(&server, &w).await;
    server.stop().await;
    assert_eq!(
        found(&everything_stored(&restored).await),
        Vec::<&str>::new(),
        "left in the restored copy"
    );
    let (ok, out, err) = portal_cli_status(&restored, &["audit", "verify"]).await;
    assert!(ok, "{out}{err}");
}

/// A copy of the store as it is now (the server stopped).
enum Backup {
    Files(Vec<(String, Vec<u8>)>),
    Database(String),
}

async fn take_backup(db: &TestDb) -> Backup {
    match db.store {
        Store::Sqlite => Backup::Files(
            ["portal.db", "portal.db-wal"]
                .iter()
                .filter_map(|f| {
                    std::fs::read(db.dir.join(f))
                        .ok()
                        .map(|b| (f.to_string(), b))
                })
                .collect(),
        ),
        Store::Postgres => {
            let admin = std::env::var("PORTAL_TEST_POSTGRES_URL").unwrap();
            let source = db.url.rsplit('/').next().unwrap().to_string();
            let copy = format!("b_{}", Uuid::new_v4().simple());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            // The template may have no other sessions.
            sqlx::query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source}' \
                 AND pid <> pg_backend_pid()"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query(&format!("CREATE DATABASE {copy} TEMPLATE {source}"))
                .execute(&mut conn)
                .await
                .unwrap();
            Backup::Database(copy)
        }
    }
}

/// The store of `db` replaced by `backup`; the data folder (keys, ledger,
/// witness) stays.
async fn restore(db: &TestDb, backup: Backup) -> TestDb {
    match backup {
        Backup::Files(files) => {
            for f in ["portal.db", "portal.db-wal", "portal.db-shm"] {
                let _ = std::fs::remove_file(db.dir.join(f));
            }
            for (name, bytes) in files {
                std::fs::write(db.dir.join(name), bytes).unwrap();
            }
            TestDb {
                store: db.store,
                url: db.url.clone(),
                dir: db.dir.clone(),
            }
        }
        Backup::Database(copy) => {
            let base = db.url.rsplit_once('/').unwrap().0;
            TestDb {
                store: db.store,
                url: format!("{base}/{copy}"),
                dir: db.dir.clone(),
            }
        }
    }
}

async fn a_request_is_carried_out_when_due(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_ERASURE_WAIT_DAYS", "0"),
            ("PORTAL_ERASURE_CHECK_SECONDS", "1"),
        ],
    )
    .await;
    let user = open_user(&server, ORG).await;
    user.client
        .data(
            "mutation($t: String!) { setGoal(domain: \"housing\", title: $t) { version } }",
            json!({ "t": GOAL }),
        )
        .await;
    let asked = user
        .client
        .data(
            "mutation { requestErasure { erasure { state } } }",
            json!({}),
        )
        .await;
    assert_eq!(asked["requestErasure"]["erasure"]["state"], "REQUESTED");
    let mut state = Value::Null;
    for _ in 0..100 {
        let mine = user
            .client
            .data("{ myErasure { state basis } }", json!({}))
            .await;
        state = mine["myErasure"].clone();
        if state["state"] == "ERASED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["state"], "ERASED", "{state}");
    assert_eq!(state["basis"], "PERSON_REQUEST", "{state}");
    wait_caught_up(&server).await;
    let panel = user
        .client
        .data("{ controlPanel { erasedAt domains { key } } }", json!({}))
        .await;
    assert!(panel["controlPanel"]["erasedAt"].is_string(), "{panel}");
    server.stop().await;
    let read = read_db(&db).await;
    let keys: Vec<Option<String>> =
        sqlx::query("SELECT wrapped FROM person_keys WHERE person_id = $1")
            .bind(format!("{ORG}/{}", user.id))
            .fetch_all(&read.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("wrapped").unwrap())
            .collect();
    assert_eq!(keys, vec![None], "the key is destroyed, its row kept");
}

both_stores!(ordered, an_ordered_erasure_leaves_nothing_readable);
both_stores!(requested, a_request_is_carried_out_when_due);
