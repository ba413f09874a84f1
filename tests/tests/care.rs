//! Working together, over HTTP against both stores: care relationships,
//! consent grants that hold for the very next read, break-glass, the user's
//! access log and the auditor's questions (tampering: tamper.rs).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use chrono::{SubsecRound, Utc};
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const MEDS: &str = "query($p: ID) { medications(portalId: $p) { name } }";
const NETWORK: &str = "query($p: ID) { network(portalId: $p) { displayName } }";
const PLAN: &str = "query($p: ID) { crisisPlan(portalId: $p) { warningSigns } }";
const LOG: &str = "{ myAccessLog { breakGlass { providerId providerName reason explanation openedAt until } \
    entries { nodes { readerId readerName readerRole section query basis breakGlass refusal clientAddress requestId } \
    pageInfo { hasNextPage } } } }";
const EXPOSURE: &str = "query($s: UUID!, $f: DateTime!, $t: DateTime!) { \
    whoCouldSee(subjectId: $s, section: SECTION, from: $f, to: $t) { \
    couldSee { providerId providerName basis from to } looked { readerId section query basis } } }";

async fn fill_portal(user: &User) {
    user.client
        .data(
            r#"mutation { addMedication(name: "Lithium MARK-MED", dose: "400 mg", schedule: "evening") { version } }"#,
            json!({}),
        )
        .await;
    user.client
        .data(
            r#"mutation { addPerson(displayName: "Anna MARK-NET", relation: FRIEND, closeness: 4, support: [EMOTIONAL]) { version } }"#,
            json!({}),
        )
        .await;
    user.client
        .data(
            r#"mutation { reviseCrisisPlan(plan: { warningSigns: ["MARK-PLAN sleeping badly"] }) { version } }"#,
            json!({}),
        )
        .await;
}

fn day() -> (String, String) {
    let now = Utc::now();
    (
        (now - chrono::Duration::hours(1)).to_rfc3339(),
        (now + chrono::Duration::hours(1)).to_rfc3339(),
    )
}

async fn working_together(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    fill_portal(&user).await;
    let kari = register_provider(&server, "clinic", "Kari Nordmann").await;
    let p = json!({ "p": user.id });

    // The user finds the provider in their organisation and invites them.
    let providers = user
        .client
        .data(
            "{ providers { nodes { personId displayName profession } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        providers["providers"]["nodes"][0]["displayName"],
        "Kari Nordmann"
    );
    assert_eq!(providers["providers"]["nodes"][0]["profession"], "NURSE");
    let invited = user
        .client
        .data(
            "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
            json!({ "p": kari.id }),
        )
        .await;
    let rel = invited["inviteToCare"]["relationship"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = json!({ "r": rel });
    let pending = kari
        .client
        .data(
            "{ careRelationships { nodes { uuid userId status invitedBy expiresAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        pending["careRelationships"]["nodes"][0]["status"],
        "INVITED"
    );
    assert_eq!(
        pending["careRelationships"]["nodes"][0]["invitedBy"],
        "SERVICE_USER"
    );
    // The inviter cannot answer their own invitation; nobody else can see it.
    let accept = "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }";
    assert_eq!(user.client.error_code(accept, r.clone()).await, "FORBIDDEN");
    let stranger = register_provider(&server, "clinic", "Ola").await;
    assert_eq!(
        stranger.client.error_code(accept, r.clone()).await,
        "NOT_FOUND"
    );
    kari.client.data(accept, r.clone()).await;

    // Active, but nothing granted: every section is refused.
    for q in [MEDS, NETWORK, PLAN] {
        assert_eq!(kari.client.error_code(q, p.clone()).await, "FORBIDDEN");
    }
    // A provider cannot grant themselves anything.
    assert_eq!(
        kari.client
            .error_code(
                "mutation($r: ID!) { grantAccess(relationshipId: $r, section: MEDICATIONS) { version } }",
                r.clone()
            )
            .await,
        "FORBIDDEN"
    );
    grant(&user, &rel, &["CORE", "MEDICATIONS"], None).await;
    let meds = kari.client.data(MEDS, p.clone()).await;
    assert_eq!(meds["medications"][0]["name"], "Lithium MARK-MED");
    assert_eq!(
        kari.client.error_code(NETWORK, p.clone()).await,
        "FORBIDDEN"
    );

    // The caseload: the sections granted now, and per section the last look
    // and the changes since (the core section was never read).
    wait_caught_up(&server).await;
    let caseload =
        "{ caseload { nodes { relationship { userId grants { section until } } lastLookedAt \
        changedSinceLastLook { section lastLookedAt changes } } } }";
    let seen = kari.client.data(caseload, json!({})).await;
    let entry = &seen["caseload"]["nodes"][0];
    assert_eq!(entry["relationship"]["userId"], user.id.to_string());
    assert_eq!(entry["relationship"]["grants"][0]["section"], "CORE");
    assert_eq!(entry["relationship"]["grants"][1]["section"], "MEDICATIONS");
    let changed = &entry["changedSinceLastLook"];
    assert!(changed[0]["lastLookedAt"].is_null(), "{seen}");
    assert_eq!(changed[0]["changes"], 1, "the portal's opening: {seen}");
    assert!(changed[1]["lastLookedAt"].is_string());
    assert_eq!(changed[1]["changes"], 0);
    assert_eq!(entry["lastLookedAt"], changed[1]["lastLookedAt"]);
    for change in [
        r#"mutation { addMedication(name: "Melatonin", dose: "2 mg", schedule: "night") { version } }"#,
        r#"mutation { addPerson(displayName: "Bo", relation: FAMILY, closeness: 2) { version } }"#,
        r#"mutation { rateStatus(domain: "housing", score: 4) { version } }"#,
    ] {
        user.client.data(change, json!({})).await;
    }
    wait_caught_up(&server).await;
    // Asked twice: looking at the caseload is not a look at the sections.
    for _ in 0..2 {
        let seen = kari.client.data(caseload, json!({})).await;
        let changed = &seen["caseload"]["nodes"][0]["changedSinceLastLook"];
        assert_eq!(
            changed.as_array().unwrap().len(),
            2,
            "only granted sections: {seen}"
        );
        assert_eq!(changed[0]["changes"], 2, "{seen}");
        assert_eq!(changed[1]["changes"], 1, "{seen}");
    }

    // The provider sees each history numbered on its own, not by the portal's
    // sequence, whose gaps would tell of changes in other sections.
    let own = user
        .client
        .data(
            "{ medications { id } controlPanel { recentChanges { nodes { sequence } } } }",
            json!({}),
        )
        .await;
    let med = json!({ "p": user.id, "m": own["medications"][0]["id"] });
    let history = kari
        .client
        .data(
            "query($p: ID, $m: ID!) { medicationHistory(medicationId: $m, portalId: $p) { nodes { sequence position requestId } } \
             statusHistory(domain: \"housing\", portalId: $p) { nodes { sequence } } \
             controlPanel(portalId: $p) { version recentChanges { nodes { sequence section } } } }",
            med.clone(),
        )
        .await;
    assert_eq!(
        history["medicationHistory"]["nodes"],
        json!([{ "sequence": "1", "position": "0", "requestId": "" }])
    );
    assert_eq!(
        history["statusHistory"]["nodes"],
        json!([{ "sequence": "1" }])
    );
    assert_eq!(history["controlPanel"]["version"], "2");
    assert_eq!(
        history["controlPanel"]["recentChanges"]["nodes"],
        json!([{ "sequence": "2", "section": "CORE" }, { "sequence": "1", "section": "CORE" }])
    );
    assert!(
        own["controlPanel"]["recentChanges"]["nodes"][0]["sequence"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 2
    );

    // A revocation holds for the very next read.
    user.client
        .data(
            "mutation($r: ID!) { revokeAccess(relationshipId: $r, section: MEDICATIONS) { version } }",
            r.clone(),
        )
        .await;
    assert_eq!(kari.client.error_code(MEDS, p.clone()).await, "FORBIDDEN");

    // A grant with an end date: allowed before it, refused after.
    let until = (Utc::now() + chrono::Duration::milliseconds(1500)).trunc_subsecs(3);
    grant(&user, &rel, &["NETWORK"], Some(&until.to_rfc3339())).await;
    let network = kari.client.data(NETWORK, p.clone()).await;
    assert_eq!(network["network"][0]["displayName"], "Anna MARK-NET");
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    assert_eq!(
        kari.client.error_code(NETWORK, p.clone()).await,
        "FORBIDDEN"
    );

    // Break-glass opens the crisis plan, and only it, for a while.
    assert_eq!(kari.client.error_code(PLAN, p.clone()).await, "FORBIDDEN");
    let glass = "mutation($r: ID!) { breakGlass(relationshipId: $r, reason: RISK_TO_SELF, \
        explanation: \"Called by the crisis team at night\") { version } }";
    assert_eq!(user.client.error_code(glass, r.clone()).await, "FORBIDDEN");
    kari.client.data(glass, r.clone()).await;
    // One opening at a time: a second while the first lasts is refused.
    assert_eq!(
        kari.client.error_code(glass, r.clone()).await,
        "FAILED_PRECONDITION"
    );
    let plan = kari.client.data(PLAN, p.clone()).await;
    assert_eq!(
        plan["crisisPlan"]["warningSigns"][0],
        "MARK-PLAN sleeping badly"
    );
    assert_eq!(kari.client.error_code(MEDS, p.clone()).await, "FORBIDDEN");
    // A provider without a relationship: for them there is no such portal.
    assert_eq!(
        stranger.client.error_code(PLAN, p.clone()).await,
        "NOT_FOUND"
    );

    // The user's access log: the break-glass first, then every look by others.
    wait_caught_up(&server).await;
    let log = user.client.data(LOG, json!({})).await["myAccessLog"].clone();
    assert_eq!(log["breakGlass"][0]["providerName"], "Kari Nordmann");
    assert_eq!(log["breakGlass"][0]["reason"], "RISK_TO_SELF");
    assert_eq!(
        log["breakGlass"][0]["explanation"],
        "Called by the crisis team at night"
    );
    assert_eq!(log["entries"]["pageInfo"]["hasNextPage"], false, "{log}");
    let entries = log["entries"]["nodes"].as_array().unwrap();
    let newest = &entries[0];
    assert_eq!(newest["readerId"], stranger.id.to_string());
    assert_eq!(newest["basis"], "REFUSED");
    assert_eq!(newest["refusal"], "NOT_FOUND");
    let glass_read = entries
        .iter()
        .find(|e| e["breakGlass"] == true)
        .expect("the break-glass read is in the log");
    assert_eq!(glass_read["section"], "CRISIS_PLAN");
    assert_eq!(glass_read["readerName"], "Kari Nordmann");
    let allowed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["basis"] != "REFUSED" && e["query"] != "caseload")
        .collect();
    assert_eq!(
        allowed.len(),
        6,
        "medications, two histories, the panel, network, crisis plan: {log}"
    );
    let counted = entries.iter().filter(|e| e["query"] == "caseload").count();
    assert_eq!(
        counted, 6,
        "three caseload views counted two sections: {log}"
    );
    // The user sees who looked, not their addresses or request ids.
    assert!(entries
        .iter()
        .all(|e| e["clientAddress"].is_null() && e["requestId"] == ""));
    assert!(entries.iter().all(|e| e["readerId"] != user.id.to_string()));

    // The auditor: the trail, who could see and who looked, the disclosures.
    let auditor_id = Uuid::new_v4();
    let auditor = server.client(Some(token(auditor_id, Role::Auditor, "clinic")));
    assert_eq!(auditor.error_code(PLAN, p.clone()).await, "FORBIDDEN");
    let trail = auditor
        .data(
            "query($s: UUID) { accessTrail(subjectId: $s, first: 500) { nodes { readerId section basis } \
             pageInfo { hasNextPage } } }",
            json!({ "s": user.id }),
        )
        .await;
    assert_eq!(trail["accessTrail"]["pageInfo"]["hasNextPage"], false);
    let trail = trail["accessTrail"]["nodes"].as_array().unwrap();
    assert!(trail.iter().any(|e| e["basis"] == "BREAK_GLASS"));
    let (from, to) = day();
    let span = json!({ "s": user.id, "f": from, "t": to });
    let plan_exposure = auditor
        .data(&EXPOSURE.replace("SECTION", "CRISIS_PLAN"), span.clone())
        .await["whoCouldSee"]
        .clone();
    assert_eq!(plan_exposure["couldSee"][0]["basis"], "BREAK_GLASS");
    assert_eq!(
        plan_exposure["couldSee"][0]["providerId"],
        kari.id.to_string()
    );
    assert_eq!(plan_exposure["looked"].as_array().unwrap().len(), 1);
    assert_eq!(plan_exposure["looked"][0]["query"], "crisisPlan");
    // Revoked now, but the medications grant shows for the period it held.
    let meds_exposure = auditor
        .data(&EXPOSURE.replace("SECTION", "MEDICATIONS"), span.clone())
        .await["whoCouldSee"]
        .clone();
    assert_eq!(meds_exposure["couldSee"][0]["basis"], "GRANT");
    assert!(meds_exposure["couldSee"][0]["to"].is_string());
    let csv = auditor
        .data(
            "query($s: UUID, $f: DateTime!, $t: DateTime!) { disclosuresCsv(subjectId: $s, from: $f, to: $t) }",
            span.clone(),
        )
        .await["disclosuresCsv"]
        .as_str()
        .unwrap()
        .to_string();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("at,reader_id,reader_name"));
    assert_eq!(lines.len(), 13, "six reads and six caseload counts: {csv}");
    assert!(lines.iter().any(|l| l.contains("break_glass")));
    assert!(!csv.contains("MARK-"), "no portal content in the export");
    // A service user exports their own; not someone else's.
    let own = user
        .client
        .data(
            "query($f: DateTime!, $t: DateTime!) { disclosuresCsv(from: $f, to: $t) }",
            span.clone(),
        )
        .await;
    let own = own["disclosuresCsv"].as_str().unwrap();
    assert_eq!(own.lines().count(), csv.lines().count());
    assert!(
        csv.contains("127.0.0.1") && !own.contains("127.0.0.1"),
        "{own}"
    );
    let other_user = open_user(&server, "clinic").await;
    assert_eq!(
        other_user
            .client
            .error_code(
                "query($s: UUID, $f: DateTime!, $t: DateTime!) { disclosuresCsv(subjectId: $s, from: $f, to: $t) }",
                span.clone()
            )
            .await,
        "FORBIDDEN"
    );
    // Only auditors search the trail; an auditor of another organisation
    // cannot name this user.
    assert_eq!(
        kari.client
            .error_code("{ accessTrail { nodes { readerId } } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    let elsewhere = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "other")));
    assert_eq!(
        elsewhere
            .error_code(
                "query($s: UUID) { accessTrail(subjectId: $s) { nodes { readerId } } }",
                json!({ "s": user.id })
            )
            .await,
        "NOT_FOUND"
    );

    // Reads of the trail are themselves on the trail (asked by a second
    // auditor, so that the search does not count itself).
    wait_caught_up(&server).await;
    let second = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic")));
    let trail_reads = second
        .data(
            r#"{ accessTrail(section: ACCESS_LOG, first: 500) { nodes { readerId readerRole query basis } pageInfo { hasNextPage } } }"#,
            json!({}),
        )
        .await["accessTrail"]
        .clone();
    assert_eq!(trail_reads["pageInfo"]["hasNextPage"], false);
    let trail_reads = trail_reads["nodes"].as_array().unwrap();
    let by = |reader: Uuid, query: &str| {
        trail_reads
            .iter()
            .filter(|e| e["readerId"] == reader.to_string() && e["query"] == query)
            .count()
    };
    assert_eq!(by(user.id, "myAccessLog"), 1);
    assert_eq!(by(user.id, "disclosuresCsv"), 1);
    assert_eq!(by(auditor_id, "accessTrail"), 1);
    assert_eq!(by(auditor_id, "whoCouldSee"), 2);
    assert_eq!(by(auditor_id, "disclosuresCsv"), 1);

    // Ending the relationship ends every access; it can start again.
    kari.client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            r.clone(),
        )
        .await;
    // No longer a party: for Kari there is no such portal now.
    assert_eq!(kari.client.error_code(PLAN, p.clone()).await, "NOT_FOUND");
    let closed = user
        .client
        .data(
            "{ careRelationships(includeClosed: true) { nodes { status endedAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(closed["careRelationships"]["nodes"][0]["status"], "ENDED");
    kari.client
        .data(
            "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
            json!({ "p": user.id }),
        )
        .await;
    server.stop().await;
}
both_stores!(working_together_over_http, working_together);

async fn invitations_and_break_glass_run_out(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(
        &db,
        &[
            ("PORTAL_INVITATION_TTL_SECONDS", "1"),
            ("PORTAL_BREAK_GLASS_SECONDS", "1"),
        ],
    )
    .await;
    let user = open_user(&server, "clinic").await;
    fill_portal(&user).await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let invited = kari
        .client
        .data(
            "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
            json!({ "p": user.id }),
        )
        .await;
    let r = json!({ "r": invited["inviteToCare"]["relationship"]["uuid"] });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let accept = "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }";
    assert_eq!(
        user.client.error_code(accept, r.clone()).await,
        "FAILED_PRECONDITION"
    );
    let list = user
        .client
        .data("{ careRelationships { nodes { status } } }", json!({}))
        .await;
    assert_eq!(list["careRelationships"]["nodes"][0]["status"], "EXPIRED");
    // A new invitation, answered in time.
    let rel = relate(&user, &kari).await;
    let glass = "mutation($r: ID!) { breakGlass(relationshipId: $r, reason: OTHER, explanation: \"x\") { version } }";
    kari.client.data(glass, json!({ "r": rel })).await;
    let p = json!({ "p": user.id });
    kari.client.data(PLAN, p.clone()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(kari.client.error_code(PLAN, p.clone()).await, "FORBIDDEN");
    // Providers of another organisation cannot be invited, nor invite.
    let abroad = register_provider(&server, "elsewhere", "Per").await;
    assert_eq!(
        user.client
            .error_code(
                "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
                json!({ "p": abroad.id })
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        abroad
            .client
            .error_code(
                "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { uuid } } }",
                json!({ "p": user.id })
            )
            .await,
        "NOT_FOUND"
    );
    server.stop().await;
}
both_stores!(
    invitations_and_break_glass_run_out_over_http,
    invitations_and_break_glass_run_out
);

/// If the trail cannot be written, the answer does not leave (fail closed).
async fn no_record_no_answer(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, "clinic").await;
    fill_portal(&user).await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    grant(&user, &rel, &["MEDICATIONS"], None).await;
    let p = json!({ "p": user.id });
    kari.client.data(MEDS, p.clone()).await;

    let read = read_db(&db).await;
    let block = match db.store {
        Store::Postgres => vec![
            "CREATE FUNCTION no_trail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
            "CREATE TRIGGER no_trail BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.aggregate_type = 'AccessTrail') EXECUTE FUNCTION no_trail()",
        ],
        Store::Sqlite => vec![
            "CREATE TRIGGER no_trail BEFORE INSERT ON events WHEN NEW.aggregate_type = 'AccessTrail' BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        ],
    };
    for statement in block {
        sqlx::query(statement).execute(&read.pool).await.unwrap();
    }
    let response = kari.client.gql(MEDS, p.clone()).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "INTERNAL",
        "{response}"
    );
    assert_eq!(response["errors"][0]["message"], "internal error");
    assert!(response["data"].is_null());
    assert!(!response.to_string().contains("MARK-"), "{response}");
    // The owner's reads are not recorded and go on.
    user.client.data(MEDS, json!({})).await;

    sqlx::query("DROP TRIGGER no_trail ON events")
        .execute(&read.pool)
        .await
        .or(sqlx::query("DROP TRIGGER no_trail")
            .execute(&read.pool)
            .await)
        .unwrap();
    let meds = kari.client.data(MEDS, p.clone()).await;
    assert_eq!(meds["medications"][0]["name"], "Lithium MARK-MED");
    server.stop().await;
}
both_stores!(no_record_no_answer_on_either_store, no_record_no_answer);

/// A revocation refuses the very next read even while the projections lag:
/// decisions fold the relationship's events, not the care projection. The
/// projection is held back by a trigger that sleeps when a grant row is
/// deleted (PostgreSQL only: SQLite has no sleep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_does_not_wait_for_projections() {
    let db = fresh_db(Store::Postgres).await;
    let server = Server::start_with(&db, &[("PORTAL_READ_YOUR_WRITES_TIMEOUT_MS", "100")]).await;
    let user = open_user(&server, "clinic").await;
    fill_portal(&user).await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let rel = relate(&user, &kari).await;
    grant(&user, &rel, &["MEDICATIONS"], None).await;
    let p = json!({ "p": user.id });
    kari.client.data(MEDS, p.clone()).await;

    let read = read_db(&db).await;
    let slot: String =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = 'care'")
            .fetch_one(&read.pool)
            .await
            .unwrap();
    for statement in [
        "CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN OLD; END $$".to_string(),
        format!("CREATE TRIGGER slow_down BEFORE DELETE ON care_grants_{slot} FOR EACH ROW EXECUTE FUNCTION slow_down()"),
    ] {
        sqlx::query(&statement).execute(&read.pool).await.unwrap();
    }
    let revoked = user
        .client
        .data(
            "mutation($r: ID!) { revokeAccess(relationshipId: $r, section: MEDICATIONS) { caughtUp } }",
            json!({ "r": rel }),
        )
        .await;
    assert_eq!(
        revoked["revokeAccess"]["caughtUp"], false,
        "the projection lags"
    );
    assert_eq!(kari.client.error_code(MEDS, p.clone()).await, "FORBIDDEN");
    // The lists, which read the projection, catch up later.
    wait_caught_up(&server).await;
    let list = kari
        .client
        .data(
            "{ careRelationships { nodes { grants { section } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["careRelationships"]["nodes"][0]["grants"], json!([]));
    server.stop().await;
}
