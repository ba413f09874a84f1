//! Studies, research consent and usage records over HTTP against both
//! stores: admins register studies, participants enrol and withdraw
//! themselves, researchers see only their own studies, and only enrolled
//! participants' requests become usage events.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const REGISTER: &str = "mutation($t: String!, $p: String!, $s: NaiveDate!, $e: NaiveDate!, $r: [UUID!]!) { \
    registerStudy(title: $t, protocolId: $p, startsOn: $s, endsOn: $e, researchers: $r) { createdId } }";
const STUDIES: &str =
    "{ studies { studyId title protocolId startsOn endsOn researchers enrolledNow meEnrolled } }";
const ENROL: &str = "mutation($s: UUID!) { enrolInStudy(studyId: $s) { version } }";
const WITHDRAW: &str = "mutation($s: UUID!) { withdrawFromStudy(studyId: $s) { version } }";

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
        .await["registerStudy"]["createdId"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = admin.data(REGISTER, study("Other", &[other_rid])).await["registerStudy"]["createdId"]
        .as_str()
        .unwrap()
        .to_string();

    // Researchers see only their own studies; participants see open ones.
    let seen = researcher.data(STUDIES, json!({})).await["studies"].clone();
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["studyId"], s.as_str());
    assert_eq!(seen[0]["researchers"], json!([rid]));
    assert_eq!(seen[0]["enrolledNow"], 0);
    let mine = user.client.data(STUDIES, json!({})).await["studies"].clone();
    assert_eq!(mine.as_array().unwrap().len(), 2);
    assert!(
        mine[0]["researchers"].is_null(),
        "participants do not see who researches"
    );
    assert_eq!(mine[0]["meEnrolled"], false);
    assert_eq!(
        admin.data(STUDIES, json!({})).await["studies"]
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
        "BAD_USER_INPUT"
    );
    let seen = researcher.data(STUDIES, json!({})).await["studies"].clone();
    assert_eq!(seen[0]["enrolledNow"], 2);
    let other = other_researcher.data(STUDIES, json!({})).await["studies"].clone();
    assert_eq!(other.as_array().unwrap().len(), 1);
    assert_eq!(other[0]["studyId"], s2.as_str());
    assert_eq!(other[0]["enrolledNow"], 0);
    let mine = user.client.data(STUDIES, json!({})).await["studies"].clone();
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
    user.client
        .data("{ controlPanel { version } medications { id } }", json!({}))
        .await;
    user.client
        .data(
            "mutation { rateStatus(domain: \"housing\", score: 6) { version } }",
            json!({}),
        )
        .await;
    kari.client
        .data("{ caseload { lastLookedAt } }", json!({}))
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
        .data("{ caseload { lastLookedAt } }", json!({}))
        .await;
    let last = usage_at_least(&read, after_withdraw + 1).await;
    assert_eq!(last.len(), after_withdraw + 1, "only the provider's read");
    assert_eq!(last.last().unwrap()["participant_id"], json!(kari.id));
    server.stop().await;
}

both_stores!(studies, studies_and_consent);
