//! Studies, research consent and usage records over HTTP against both
//! stores: admins register studies, participants enrol and withdraw
//! themselves, researchers see only their own studies, and only enrolled
//! participants' requests become usage events.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use uuid::Uuid;

const REGISTER: &str = "mutation($t: String!, $p: String!, $s: NaiveDate!, $e: NaiveDate!, $r: [ID!]!) { \
    registerStudy(title: $t, protocolId: $p, startsOn: $s, endsOn: $e, researcherIds: $r) { study { uuid } } }";
const STUDIES: &str =
    "{ studies { nodes { uuid title protocolId startsOn endsOn researcherIds enrolledNow meEnrolled } } }";
const ENROL: &str = "mutation($s: ID!) { enrolInStudy(studyId: $s) { version } }";
const MEASURES: &str = "query($s: ID!) { studyMeasures(studyId: $s) { participants \
    weeks { week activeUsers activeProviders visits exchangesByUsers exchangesByProviders initiationRatio \
    userReplyMedianSeconds providerReplyMedianSeconds } modules { week module participants visits writes \
    users providers userVisits providerVisits userWrites providerWrites } \
    retention { month share } providerEngagement { band providers } } }";
const WITHDRAW: &str = "mutation($s: ID!) { withdrawFromStudy(studyId: $s) { version } }";

fn study(title: &str, researchers: &[Uuid]) -> Value {
    json!({ "t": title, "p": "RC-1", "s": "2026-01-01", "e": "2030-12-31", "r": researchers })
}

/// The usage payloads outside the studies module (whose records around an
/// enrolment depend on when the enrolment reached the recorder), once at
/// least `n` are stored (the writer batches).
async fn usage_at_least(db: &projections::Db, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<Value> = payloads_of(db, "Usage")
            .await
            .iter()
            .map(|p| serde_json::from_str::<Value>(p).unwrap())
            .filter(|u| u["module"] != "studies")
            .collect();
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn studies_and_consent(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let read = read_db(&db).await;
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, "clinic")));
    let (rid, other_rid) = (Uuid::new_v4(), Uuid::new_v4());
    let researcher = server.client(Some(token(rid, Role::Researcher, "clinic")));
    let other_researcher = server.client(Some(token(other_rid, Role::Researcher, "clinic")));
    let user = open_user(&server, "clinic").await;
    let bystander = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let outsider = open_user(&server, "elsewhere").await;

    // Only an admin registers, and a study needs sensible fields.
    assert_eq!(
        researcher.error_code(REGISTER, study("Mine", &[rid])).await,
        "FORBIDDEN"
    );
    assert_eq!(
        user.client
            .error_code(REGISTER, study("Mine", &[rid]))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        admin.error_code(REGISTER, study(" ", &[rid])).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        admin.error_code(REGISTER, study("No one", &[])).await,
        "BAD_USER_INPUT"
    );
    let mut backwards = study("Backwards", &[rid]);
    backwards["e"] = json!("2025-12-31");
    assert_eq!(
        admin.error_code(REGISTER, backwards).await,
        "BAD_USER_INPUT"
    );
    let s = admin
        .data(REGISTER, study("ReConnect follow-up", &[rid]))
        .await["registerStudy"]["study"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = admin.data(REGISTER, study("Other", &[other_rid])).await["registerStudy"]["study"]
        ["uuid"]
        .as_str()
        .unwrap()
        .to_string();

    // Researchers see only their own studies; participants see open ones.
    let seen = researcher.data(STUDIES, json!({})).await["studies"]["nodes"].clone();
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["uuid"], s.as_str());
    assert_eq!(seen[0]["researcherIds"], json!([rid]));
    assert_eq!(seen[0]["enrolledNow"], 0);
    let mine = user.client.data(STUDIES, json!({})).await["studies"]["nodes"].clone();
    assert_eq!(mine.as_array().unwrap().len(), 2);
    assert!(
        mine[0]["researcherIds"].is_null(),
        "participants do not see who researches"
    );
    assert_eq!(mine[0]["meEnrolled"], false);
    assert_eq!(
        admin.data(STUDIES, json!({})).await["studies"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic")));
    assert_eq!(auditor.error_code(STUDIES, json!({})).await, "FORBIDDEN");

    // Enrolment: participants only, in their own organisation, once.
    assert_eq!(
        outsider.client.error_code(ENROL, json!({ "s": s })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        researcher.error_code(ENROL, json!({ "s": s })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        user.client.error_code(WITHDRAW, json!({ "s": s })).await,
        "FORBIDDEN",
        "not enrolled yet"
    );
    user.client.data(ENROL, json!({ "s": s })).await;
    kari.client.data(ENROL, json!({ "s": s })).await;
    assert_eq!(
        user.client.error_code(ENROL, json!({ "s": s })).await,
        "FAILED_PRECONDITION"
    );
    let seen = researcher.data(STUDIES, json!({})).await["studies"]["nodes"].clone();
    assert_eq!(seen[0]["enrolledNow"], 2);
    let other = other_researcher.data(STUDIES, json!({})).await["studies"]["nodes"].clone();
    assert_eq!(other.as_array().unwrap().len(), 1);
    assert_eq!(other[0]["uuid"], s2.as_str());
    assert_eq!(other[0]["enrolledNow"], 0);
    let mine = user.client.data(STUDIES, json!({})).await["studies"]["nodes"].clone();
    let enrolled: Vec<&Value> = mine
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["meEnrolled"] == true)
        .collect();
    assert_eq!(enrolled.len(), 1);

    // Usage: only the enrolled participants' requests are recorded, by module.
    let before = 0;
    bystander
        .client
        .data("{ controlPanel { version } }", json!({}))
        .await;
    // Fields inside a top-level fragment count like any other.
    user.client
        .data(
            "query { ...Panel medications { id } } fragment Panel on Query { controlPanel { version } }",
            json!({}),
        )
        .await;
    user.client
        .data(
            "mutation { rateStatus(domain: \"housing\", score: 6) { version } }",
            json!({}),
        )
        .await;
    kari.client
        .data("{ caseload { nodes { lastLookedAt } } }", json!({}))
        .await;
    let used = usage_at_least(&read, before + 4).await;
    let new: Vec<&Value> = used[before..].iter().collect();
    assert_eq!(new.len(), 4, "{new:?}");
    assert!(new
        .iter()
        .all(|u| u["participant_id"] != json!(bystander.id)));
    let modules: Vec<(String, bool)> = new
        .iter()
        .map(|u| {
            (
                u["module"].as_str().unwrap().to_string(),
                u["write"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(modules.contains(&("control_panel".into(), false)));
    assert!(modules.contains(&("medications".into(), false)));
    assert!(modules.contains(&("control_panel".into(), true)));
    assert!(modules.contains(&("care".into(), false)));
    let text = serde_json::to_string(&new).unwrap();
    assert!(!text.contains("housing"), "no content in usage: {text}");

    // After withdrawing, nothing more is recorded.
    user.client.data(WITHDRAW, json!({ "s": s })).await;
    let after_withdraw = usage_at_least(&read, before + 4).await.len();
    user.client
        .data("{ controlPanel { version } }", json!({}))
        .await;
    kari.client
        .data("{ caseload { nodes { lastLookedAt } } }", json!({}))
        .await;
    let last = usage_at_least(&read, after_withdraw + 1).await;
    assert_eq!(last.len(), after_withdraw + 1, "only the provider's read");
    assert_eq!(last.last().unwrap()["participant_id"], json!(kari.id));
    server.stop().await;
}

both_stores!(studies, studies_and_consent);

/// Runs `portal research export` and returns its folder.
async fn export(db: &TestDb, study: &str, as_of: &str, format: &str, name: &str) -> PathBuf {
    let out = db.dir.join(name);
    portal_cli(
        db,
        &[
            "research",
            "export",
            "--study",
            study,
            "--as-of",
            as_of,
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
    )
    .await;
    out
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every file of an export folder, by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// True if `text` holds something shaped like a UUID.
fn has_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).any(|i| {
        let s = &text[i..i + 36];
        s.char_indices().all(|(j, c)| match j {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
    })
}

fn csv_rows(dir: &Path, table: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join(format!("{table}.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// A simulated study, exported twice as CSV and once as Parquet: the same
/// bytes each time, checksums as the manifest says, no ids, and pyarrow
/// reads the Parquet files to the same values as the CSV. On PostgreSQL the
/// export also runs against a database that refuses every write.
async fn simulated_export(store: Store) {
    let db = fresh_db(store).await;
    let out = portal_cli(
        &db,
        &[
            "simulate",
            "--users",
            "6",
            "--providers",
            "4",
            "--months",
            "2",
            "--seed",
            "11",
        ],
    )
    .await;
    let study = out
        .lines()
        .find_map(|l| l.strip_prefix("study "))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        out.contains("refused: {}"),
        "every simulated operation went through: {out}"
    );
    let as_of = chrono::Utc::now().to_rfc3339();
    let (ok, _, err) = portal_cli_status(
        &db,
        &[
            "research",
            "export",
            "--study",
            &study,
            "--as-of",
            "2999-01-01T00:00:00Z",
            "--out",
            "x",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("future"),
        "a future as-of is refused: {err}"
    );
    let a = export(&db, &study, &as_of, "csv", "a").await;
    let b = export(&db, &study, &as_of, "csv", "b").await;
    assert_eq!(
        files(&a),
        files(&b),
        "the same export twice gives the same bytes"
    );

    let m = manifest(&a);
    assert_eq!(m["study"]["id"], study.as_str());
    assert!(m["participants"].as_u64().unwrap() >= 8, "{m}");
    assert!(m["events_used"].as_u64().unwrap() > 500, "{m}");
    let on_disk = files(&a);
    for table in m["tables"].as_array().unwrap() {
        let bytes = &on_disk[table["file"].as_str().unwrap()];
        assert_eq!(
            table["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(bytes)),
            "{}",
            table["name"]
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text.lines().count() as u64 - 1,
            table["rows"].as_u64().unwrap()
        );
        assert!(!has_uuid(&text), "{} holds an id", table["name"]);
    }
    // Rows in pseudonym order, never in the order of the real ids.
    let people = csv_rows(&a, "participants");
    let names: Vec<&String> = people.iter().map(|r| &r[0]).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    for table in [
        "participant_weeks",
        "participant_module_weeks",
        "relationship_weeks",
        "study_weeks",
    ] {
        assert!(!csv_rows(&a, table).is_empty(), "{table} is empty");
    }
    // The forum is the most visited module, as in ReConnect, and a
    // minority of the users write most of its posts.
    let mut visits_by_module: std::collections::BTreeMap<String, i64> = Default::default();
    for row in csv_rows(&a, "module_weeks") {
        *visits_by_module.entry(row[1].clone()).or_default() += row[3].parse::<i64>().unwrap();
    }
    let most = visits_by_module.iter().max_by_key(|(_, v)| **v).unwrap();
    assert_eq!(most.0, "forum", "{visits_by_module:?}");
    let mut posts_by_person: std::collections::BTreeMap<String, i64> = Default::default();
    for row in csv_rows(&a, "participant_module_weeks") {
        if row[2] == "forum" {
            *posts_by_person.entry(row[0].clone()).or_default() += row[5].parse::<i64>().unwrap();
        }
    }
    let mut posts: Vec<i64> = posts_by_person.values().copied().collect();
    posts.sort_unstable_by(|a, b| b.cmp(a));
    let total: i64 = posts.iter().sum();
    assert!(total > 0, "nobody posted in the forum: {posts_by_person:?}");
    let top = posts.iter().take(posts.len().div_ceil(3)).sum::<i64>();
    assert!(
        top * 2 > total,
        "the top third wrote {top} of {total} posts"
    );

    let p = export(&db, &study, &as_of, "parquet", "p").await;
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/check_parquet.py");
    let checked = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&a)
        .arg(&p)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e} (ops/test installs pyarrow)"));
    assert!(
        checked.status.success(),
        "pyarrow check failed: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout)
            .matches("rows match")
            .count(),
        8
    );

    // The figures: SVG with their titles, PNG images, from the same data.
    let plots = db.dir.join("plots");
    let listed = portal_cli(
        &db,
        &[
            "research",
            "plot",
            "--study",
            &study,
            "--as-of",
            &as_of,
            "--out",
            plots.to_str().unwrap(),
            "--quiet",
        ],
    )
    .await;
    for (name, title) in [
        ("engagement", "Weekly engagement per module"),
        ("retention", "Retention of service users"),
        ("initiation", "provider-to-user initiation ratio"),
    ] {
        assert!(listed.contains(&format!("{name}.svg")) && listed.contains(&format!("{name}.png")));
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains(title), "{name}.svg");
        assert!(
            svg.contains("Simulated engagement study (seed 11)"),
            "titled with the study"
        );
        let png = std::fs::read(plots.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{name}.png"
        );
    }

    if store == Store::Postgres {
        // As on a hot-standby replica: every transaction is read-only.
        let admin = std::env::var("PORTAL_TEST_POSTGRES_URL").unwrap();
        let name = db.url.rsplit_once('/').unwrap().1.to_string();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = on"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let mut replica = sqlx::PgConnection::connect(&db.url).await.unwrap();
        assert!(sqlx::query("CREATE TABLE scratch (x int)")
            .execute(&mut replica)
            .await
            .is_err());
        let r = export(&db, &study, &as_of, "csv", "r").await;
        assert_eq!(
            files(&a),
            files(&r),
            "a read-only database gives the same export"
        );
    }
}

both_stores!(simulated, simulated_export);

/// Measures of a small study made over HTTP, and what a withdrawal does to
/// exports made after it (even of earlier dates).
async fn measures_and_withdrawal(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let rid = Uuid::new_v4();
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, "clinic")));
    let user = open_user(&server, "clinic").await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    let s = admin.data(REGISTER, study("Measures", &[rid])).await["registerStudy"]["study"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    user.client.data(ENROL, json!({ "s": s })).await;
    kari.client.data(ENROL, json!({ "s": s })).await;
    user.client
        .data(
            "mutation { rateStatus(domain: \"housing\", score: 6) { version } }",
            json!({}),
        )
        .await;
    let started = kari
        .client
        .data(
            "mutation($u: ID!) { startConversation(subject: \"Hi\", body: \"How are you?\", userId: $u) { conversation { uuid } } }",
            json!({ "u": user.id }),
        )
        .await;
    let thread = started["startConversation"]["conversation"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    user.client
        .data(
            "mutation($c: ID!) { postMessage(conversationId: $c, body: \"Fine\") { version } }",
            json!({ "c": thread }),
        )
        .await;
    let _ = rel;
    user.client
        .data("{ controlPanel { version } }", json!({}))
        .await;
    // The forum: the user takes a name (a visit, not a posting), opens a
    // topic and supports the reply; the provider reads and replies.
    user.client
        .data(
            "mutation { chooseForumName(name: \"Research Owl\") { name } }",
            json!({}),
        )
        .await;
    let topic = user
        .client
        .data(
            "mutation { openTopic(category: \"sleep\", title: \"T\", body: \"FORUM-SECRET words\") { post { topicId } } }",
            json!({}),
        )
        .await["openTopic"]["post"]["topicId"]
        .as_str()
        .unwrap()
        .to_string();
    kari.client
        .data("{ forum { topics { nodes { title } } } }", json!({}))
        .await;
    let reply = kari
        .client
        .data(
            "mutation($t: ID!) { replyToTopic(topicId: $t, body: \"FORUM-SECRET reply\") { post { id } } }",
            json!({ "t": topic }),
        )
        .await["replyToTopic"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    user.client
        .data(
            "mutation($p: ID!) { supportPost(postId: $p) { post { supportCount } } }",
            json!({ "p": reply }),
        )
        .await;
    // Let the usage writer catch up before the export.
    let read = read_db(&db).await;
    usage_at_least(&read, 8).await;
    let as_of = chrono::Utc::now().to_rfc3339();

    let before = export(&db, &s, &as_of, "csv", "before").await;
    assert_eq!(manifest(&before)["participants"], 2);
    let weeks = csv_rows(&before, "participant_weeks");
    let user_row = weeks.iter().find(|r| r[4] == "1").expect("the user's week");
    assert_eq!(
        &user_row[4..11],
        ["1", "0", "0", "0", "1", "1", "0"],
        "{user_row:?}"
    );
    let provider_row = weeks
        .iter()
        .find(|r| r[10] == "1")
        .expect("the provider's week");
    assert_eq!(provider_row[8], "1", "one message sent");
    assert_ne!(user_row[0], provider_row[0]);
    let pairs = csv_rows(&before, "relationship_weeks");
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0][3].as_str(), pairs[0][4].as_str()),
        ("0", "1"),
        "the provider initiated"
    );
    assert_eq!(pairs[0][5], "1", "one reply by the user");
    assert_eq!(pairs[0][6], pairs[0][7], "median and p90 of one sample");

    // The same measures in aggregate over GraphQL, for the study's researchers only.
    let researcher = server.client(Some(token(rid, Role::Researcher, "clinic")));
    let stranger = server.client(Some(token(Uuid::new_v4(), Role::Researcher, "clinic")));
    let measures = json!({ "s": s });
    assert_eq!(
        stranger.error_code(MEASURES, measures.clone()).await,
        "NOT_FOUND"
    );
    assert_eq!(
        user.client.error_code(MEASURES, measures.clone()).await,
        "FORBIDDEN"
    );
    assert_eq!(
        admin.error_code(MEASURES, measures.clone()).await,
        "FORBIDDEN"
    );
    let m = researcher.data(MEASURES, measures.clone()).await["studyMeasures"].clone();
    assert_eq!(m["participants"], 2, "{m}");
    let week = m["weeks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(week["activeUsers"], 1, "{week}");
    assert_eq!(week["activeProviders"], 1);
    assert_eq!(week["exchangesByProviders"], 1);
    assert_eq!(week["exchangesByUsers"], 0);
    assert!(
        week["initiationRatio"].is_null(),
        "no user-initiated exchange to divide by"
    );
    assert!(week["userReplyMedianSeconds"].as_i64().unwrap() >= 0);
    assert!(m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["module"] == "messages"));
    // The forum's visits and postings by role, as ReConnect reported them:
    // the user posted once (the name and the support are part of visits),
    // the provider once.
    let forum = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["module"] == "forum")
        .unwrap_or_else(|| panic!("no forum module in {m}"))
        .clone();
    assert_eq!(
        (&forum["users"], &forum["providers"]),
        (&json!(1), &json!(1)),
        "{forum}"
    );
    assert_eq!(
        (
            &forum["userWrites"],
            &forum["providerWrites"],
            &forum["writes"]
        ),
        (&json!(1), &json!(1), &json!(2)),
        "{forum}"
    );
    assert!(
        forum["userVisits"].as_i64().unwrap() >= 1
            && forum["providerVisits"].as_i64().unwrap() >= 1
    );
    assert!(!m.to_string().contains("FORUM-SECRET") && !m.to_string().contains("Research Owl"));
    let bands: Vec<&str> = m["providerEngagement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["band"].as_str().unwrap())
        .collect();
    assert_eq!(
        bands,
        ["NEVER", "LESS_THAN_MONTHLY", "MONTHLY", "WEEKLY", "DAILY"]
    );
    let text = m.to_string();
    assert!(!text.contains(&user.id.to_string()) && !text.contains(&user_row[0]));

    user.client.data(WITHDRAW, json!({ "s": s })).await;
    let m = researcher.data(MEASURES, measures).await["studyMeasures"].clone();
    assert_eq!(m["participants"], 1, "a withdrawal applies at once: {m}");
    let after = export(&db, &s, &as_of, "csv", "after").await;
    let m = manifest(&after);
    assert_eq!(m["participants"], 1, "{m}");
    assert_eq!(m["withdrawn_excluded"], 1);
    let text = std::fs::read_to_string(after.join("participant_weeks.csv")).unwrap();
    assert!(!text.contains(&user_row[0]), "the withdrawn user is gone");
    assert!(text.contains(&provider_row[0]));
    assert!(csv_rows(&after, "relationship_weeks").is_empty());

    // An erased participant is left out too, and the manifest says so.
    admin
        .data(
            "mutation($p: ID!) { orderErasure(personId: $p) { erasure { state } } }",
            json!({ "p": kari.id }),
        )
        .await;
    let erased = export(&db, &s, &as_of, "csv", "erased").await;
    let m = manifest(&erased);
    assert_eq!(
        (
            &m["participants"],
            &m["withdrawn_excluded"],
            &m["erased_excluded"]
        ),
        (&json!(0), &json!(1), &json!(1)),
        "{m}"
    );
    let text = std::fs::read_to_string(erased.join("participant_weeks.csv")).unwrap();
    assert!(
        !text.contains(&provider_row[0]),
        "the erased provider is gone"
    );
    server.stop().await;
}

both_stores!(withdrawal, measures_and_withdrawal);
