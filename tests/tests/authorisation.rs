//! The authorisation matrix, against both stores: every role and grant state
//! × every portal query, care and audit query and mutation → allowed or
//! refused as specified; no refused answer carries any portal content, no
//! allowed answer carries content of a section the reader may not see; and
//! every look by someone other than the owner is in the access trail exactly
//! once, allowed or refused.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use api::auth::Role;
use chrono::{SubsecRound, Utc};
use domain::trail::{AccessRecord, Basis};
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// Content markers, one per section, written into the owner's portal.
const MARKS: [(&str, &str); 5] = [
    ("core", "MARKCORE"),
    ("medications", "MARKMED"),
    ("network", "MARKNET"),
    ("crisis_plan", "MARKPLAN"),
    ("exercises", "MARKEXE"),
];
const ALL: [&str; 5] = ["core", "medications", "network", "crisis_plan", "exercises"];

/// A portal query: its GraphQL field, the section it reads, and the document.
struct Read {
    field: &'static str,
    section: &'static str,
    doc: &'static str,
}

const READS: &[Read] = &[
    Read {
        field: "controlPanel",
        section: "core",
        doc: "query($p: ID) { controlPanel(portalId: $p) { version updatedAt domains { latestStatus { note } \
              activeGoals { title } } sections { section changes } recentChanges(first: 50) { nodes { section eventType } } } }",
    },
    Read {
        field: "controlPanel",
        section: "core",
        doc: "query($p: ID, $now: DateTime) { controlPanel(portalId: $p, asOf: $now) { version updatedAt \
              domains { latestStatus { note } activeGoals { title } } sections { section changes } recentChanges { nodes { section } } } }",
    },
    Read {
        field: "goal",
        section: "core",
        doc: "query($p: ID, $g: ID!) { goal(goalId: $g, portalId: $p) { title } }",
    },
    Read {
        field: "goalHistory",
        section: "core",
        doc: "query($p: ID, $g: ID!) { goalHistory(goalId: $g, portalId: $p) { nodes { eventType data } } }",
    },
    Read {
        field: "statusHistory",
        section: "core",
        doc: "query($p: ID) { statusHistory(domain: \"housing\", portalId: $p) { nodes { score note } } }",
    },
    Read {
        field: "medications",
        section: "medications",
        doc: "query($p: ID) { medications(portalId: $p) { name } }",
    },
    Read {
        field: "medications",
        section: "medications",
        doc: "query($p: ID, $now: DateTime) { medications(portalId: $p, asOf: $now) { name } }",
    },
    Read {
        field: "medicationHistory",
        section: "medications",
        doc: "query($p: ID, $m: ID!) { medicationHistory(medicationId: $m, portalId: $p) { nodes { data } } }",
    },
    Read {
        field: "network",
        section: "network",
        doc: "query($p: ID) { network(portalId: $p, includeRemoved: true) { displayName } }",
    },
    Read {
        field: "personHistory",
        section: "network",
        doc: "query($p: ID, $n: ID!) { personHistory(personId: $n, portalId: $p) { nodes { data } } }",
    },
    Read {
        field: "crisisPlan",
        section: "crisis_plan",
        doc: "query($p: ID) { crisisPlan(portalId: $p) { warningSigns } }",
    },
    Read {
        field: "crisisPlan",
        section: "crisis_plan",
        doc: "query($p: ID) { crisisPlan(portalId: $p, revision: 1) { warningSigns } }",
    },
    Read {
        field: "crisisPlanHistory",
        section: "crisis_plan",
        doc: "query($p: ID) { crisisPlanHistory(portalId: $p) { nodes { data } } }",
    },
    Read {
        field: "exerciseLog",
        section: "exercises",
        doc: "query($p: ID) { exerciseLog(portalId: $p) { completed entries { nodes { reflection } } } }",
    },
];

/// Every mutation of a portal, with arguments that would be valid for its owner.
const PORTAL_MUTATIONS: &[&str] = &[
    "mutation { openPortal { version } }",
    "mutation { addLifeDomain(key: \"pets\", name: \"Pets\") { version } }",
    "mutation { rateStatus(domain: \"housing\", score: 3) { version } }",
    "mutation { setGoal(domain: \"housing\", title: \"x\") { version } }",
    "mutation($g: ID!) { reviseGoal(goalId: $g, title: \"x\") { version } }",
    "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }",
    "mutation($g: ID!) { abandonGoal(goalId: $g) { version } }",
    "mutation($g: ID!) { planActivity(goalId: $g, title: \"x\") { version } }",
    "mutation($a: ID!) { completeActivity(activityId: $a) { version } }",
    "mutation($a: ID!) { dropActivity(activityId: $a) { version } }",
    "mutation { addMedication(name: \"x\", dose: \"1\", schedule: \"y\") { version } }",
    "mutation($m: ID!) { changeMedication(medicationId: $m, dose: \"2\") { version } }",
    "mutation($m: ID!) { pauseMedication(medicationId: $m) { version } }",
    "mutation($m: ID!) { resumeMedication(medicationId: $m) { version } }",
    "mutation($m: ID!) { stopMedication(medicationId: $m) { version } }",
    "mutation { addPerson(displayName: \"x\", relation: FRIEND, closeness: 1) { version } }",
    "mutation($n: ID!) { updatePerson(personId: $n, displayName: \"y\", relation: FRIEND, closeness: 2) { version } }",
    "mutation($n: ID!) { removePerson(personId: $n) { version } }",
    "mutation { reviseCrisisPlan(plan: { ownWords: \"x\" }) { version } }",
    "mutation { startExercise(exercise: \"mindfulness\") { version } }",
    "mutation($e: ID!) { completeExercise(entryId: $e) { version } }",
];

/// A reader of the owner's portal and the sections they may read.
struct Actor {
    name: &'static str,
    id: Uuid,
    client: Client,
    role: Role,
    sections: Vec<&'static str>,
}

async fn provider_in(server: &Server, org: &str, name: &'static str) -> Provider {
    register_provider(server, org, name).await
}

async fn matrix(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let owner = open_user(&server, "clinic").await;
    let c = &owner.client;
    let created = |v: &Value, f: &str, o: &str| v[f][o]["uuid"].as_str().unwrap().to_string();
    c.data(
        "mutation { rateStatus(domain: \"housing\", score: 6, note: \"MARKCORE\") { version } }",
        json!({}),
    )
    .await;
    let goal = created(
        &c.data(
            "mutation { setGoal(domain: \"housing\", title: \"MARKCORE goal\") { goal { uuid } } }",
            json!({}),
        )
        .await,
        "setGoal",
        "goal",
    );
    let med = created(
        &c.data(
            "mutation { addMedication(name: \"MARKMED\", dose: \"1\", schedule: \"x\") { medication { uuid } } }",
            json!({}),
        )
        .await,
        "addMedication",
        "medication",
    );
    let person = created(
        &c.data(
            "mutation { addPerson(displayName: \"MARKNET\", relation: FRIEND, closeness: 3) { person { uuid } } }",
            json!({}),
        )
        .await,
        "addPerson",
        "person",
    );
    c.data(
        "mutation { reviseCrisisPlan(plan: { warningSigns: [\"MARKPLAN\"] }) { version } }",
        json!({}),
    )
    .await;
    let entry = created(
        &c.data(
            "mutation { startExercise(exercise: \"mindfulness\") { entry { uuid } } }",
            json!({}),
        )
        .await,
        "startExercise",
        "entry",
    );
    c.data(
        "mutation($e: ID!) { completeExercise(entryId: $e, reflection: \"MARKEXE\") { version } }",
        json!({ "e": entry }),
    )
    .await;

    // Every grant state.
    let granted = provider_in(&server, "clinic", "granted").await;
    let rel = relate(&owner, &granted).await;
    let all_enum = ["CORE", "MEDICATIONS", "NETWORK", "CRISIS_PLAN", "EXERCISES"];
    grant(&owner, &rel, &all_enum, None).await;
    let none = provider_in(&server, "clinic", "none").await;
    relate(&owner, &none).await;
    let revoked = provider_in(&server, "clinic", "revoked").await;
    let rel_revoked = relate(&owner, &revoked).await;
    grant(&owner, &rel_revoked, &all_enum, None).await;
    for s in all_enum {
        c.data(
            &format!("mutation($r: ID!) {{ revokeAccess(relationshipId: $r, section: {s}) {{ version }} }}"),
            json!({ "r": rel_revoked }),
        )
        .await;
    }
    let expired = provider_in(&server, "clinic", "expired").await;
    let rel_expired = relate(&owner, &expired).await;
    let until = (Utc::now() + chrono::Duration::milliseconds(1500)).trunc_subsecs(3);
    grant(&owner, &rel_expired, &all_enum, Some(&until.to_rfc3339())).await;
    let glass = provider_in(&server, "clinic", "glass").await;
    let rel_glass = relate(&owner, &glass).await;
    glass
        .client
        .data(
            "mutation($r: ID!) { breakGlass(relationshipId: $r, reason: CANNOT_CONSENT, explanation: \"found unconscious\") { version } }",
            json!({ "r": rel_glass }),
        )
        .await;
    let pending = provider_in(&server, "clinic", "pending").await;
    c.data(
        "mutation($p: ID!) { inviteToCare(personId: $p) { version } }",
        json!({ "p": pending.id }),
    )
    .await;
    let ended = provider_in(&server, "clinic", "ended").await;
    let rel_ended = relate(&owner, &ended).await;
    grant(&owner, &rel_ended, &all_enum, None).await;
    ended
        .client
        .data(
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
            json!({ "r": rel_ended }),
        )
        .await;
    let stranger = provider_in(&server, "clinic", "stranger").await;
    let abroad = provider_in(&server, "elsewhere", "abroad").await;
    let other_user = open_user(&server, "clinic").await;

    let mut actors = vec![
        Actor {
            name: "owner",
            id: owner.id,
            client: owner.client.clone(),
            role: Role::ServiceUser,
            sections: ALL.to_vec(),
        },
        Actor {
            name: "other service user",
            id: other_user.id,
            client: other_user.client.clone(),
            role: Role::ServiceUser,
            sections: vec![],
        },
    ];
    for (name, p, sections) in [
        ("provider, all granted", &granted, ALL.to_vec()),
        ("provider, nothing granted", &none, vec![]),
        ("provider, revoked", &revoked, vec![]),
        ("provider, expired", &expired, vec![]),
        ("provider, break-glass", &glass, vec!["crisis_plan"]),
        ("provider, invitation pending", &pending, vec![]),
        ("provider, relationship ended", &ended, vec![]),
        ("provider, no relationship", &stranger, vec![]),
        ("provider, other organisation", &abroad, vec![]),
    ] {
        actors.push(Actor {
            name,
            id: p.id,
            client: p.client.clone(),
            role: Role::Provider,
            sections,
        });
    }
    for (name, role) in [
        ("auditor", Role::Auditor),
        ("admin", Role::Admin),
        ("moderator", Role::Moderator),
        ("researcher", Role::Researcher),
    ] {
        let id = Uuid::new_v4();
        actors.push(Actor {
            name,
            id,
            client: server.client(Some(token(id, role, "clinic"))),
            role,
            sections: vec![],
        });
    }
    // Let the expiring grants run out.
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;

    // Every portal query by every actor.
    let vars = json!({
        "p": owner.id, "g": goal, "m": med, "n": person,
        "now": Utc::now().to_rfc3339(),
    });
    // (reader, field, allowed) → reads made.
    let mut expected: BTreeMap<(Uuid, String, bool), usize> = BTreeMap::new();
    for actor in &actors {
        for read in READS {
            let allowed = actor.sections.contains(&read.section);
            let response = actor.client.gql(read.doc, vars.clone()).await;
            let body = response.to_string();
            let context = format!("{} reading {} ({})", actor.name, read.field, read.doc);
            if allowed {
                assert!(response.get("errors").is_none(), "{context}: {response}");
                let mark = MARKS.iter().find(|(s, _)| *s == read.section).unwrap().1;
                assert!(body.contains(mark), "{context}: no content: {body}");
            } else {
                // The provider of an active relationship is refused the
                // section (FORBIDDEN); any other provider is told there is no
                // such portal for them (NOT_FOUND), as for one that does not
                // exist; every other role is refused for its role, whatever
                // the portal (FORBIDDEN). Nobody but a party learns that it
                // exists.
                let party = [&none, &revoked, &expired, &glass]
                    .iter()
                    .any(|p| p.id == actor.id);
                let (code, message) = refusal_of(actor.role, party);
                assert_eq!(
                    response["errors"][0]["extensions"]["code"], code,
                    "{context}: {response}"
                );
                assert!(response["data"].is_null(), "{context}: {response}");
                if let Some(message) = message {
                    assert_eq!(response["errors"][0]["message"], message, "{context}");
                }
            }
            if allowed && read.field == "controlPanel" && actor.id != owner.id {
                // Summaries and changes of the other sections are not shown either.
                let panel = &response["data"]["controlPanel"];
                assert_eq!(
                    panel["sections"],
                    json!([{ "section": "CORE", "changes": big(&panel["version"]) }]),
                    "{context}"
                );
                let changes = panel["recentChanges"]["nodes"].as_array().unwrap();
                assert!(
                    !changes.is_empty() && changes.iter().all(|c| c["section"] == "CORE"),
                    "{context}"
                );
            }
            for (section, mark) in MARKS {
                if !actor.sections.contains(&section) {
                    assert!(!body.contains(mark), "{context}: leaks {section}: {body}");
                }
            }
            if actor.id != owner.id {
                *expected
                    .entry((actor.id, read.field.to_string(), allowed))
                    .or_default() += 1;
            }
        }
    }

    // A portal that does not exist gets the same answer as one that is not
    // yours: a provider without a relationship, or another role, cannot tell.
    let nobody = json!({ "p": Uuid::new_v4() });
    for actor in actors.iter().filter(|a| a.id != owner.id) {
        let response = actor.client.gql(READS[5].doc, nobody.clone()).await;
        let (code, message) = refusal_of(actor.role, false);
        assert_eq!(
            response["errors"][0]["extensions"]["code"], code,
            "{}: {response}",
            actor.name
        );
        assert_eq!(
            response["errors"][0]["message"],
            message.unwrap(),
            "{}: {response}",
            actor.name
        );
    }

    // Nobody but the owner changes the portal; mutations act on the caller's
    // own portal, so other roles are refused outright.
    let ids = json!({ "g": goal, "a": Uuid::new_v4(), "m": med, "n": person, "e": entry });
    let version = |v: Value| big(&v["controlPanel"]["version"]);
    let before = version(c.data("{ controlPanel { version } }", json!({})).await);
    for actor in actors.iter().filter(|a| a.role != Role::ServiceUser) {
        for m in PORTAL_MUTATIONS {
            assert_eq!(
                actor.client.error_code(m, ids.clone()).await,
                "FORBIDDEN",
                "{} ran {m}",
                actor.name
            );
        }
    }
    assert_eq!(
        version(c.data("{ controlPanel { version } }", json!({})).await),
        before
    );

    // Care relationships are for service users and providers only, and only
    // between the two parties.
    let rel_pending = relationship_of(owner.id, pending.id).to_string();
    for actor in &actors {
        let staff = matches!(
            actor.role,
            Role::Auditor | Role::Admin | Role::Moderator | Role::Researcher
        );
        for doc in [
            "mutation { saveProviderProfile(displayName: \"x\", profession: OTHER) { version } }",
            "mutation($p: ID!) { inviteToCare(personId: $p) { version } }",
            "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { version } }",
            "mutation($r: ID!) { declineCareInvitation(relationshipId: $r) { version } }",
            "mutation($r: ID!) { endCareRelationship(relationshipId: $r) { version } }",
        ] {
            if !staff && (actor.id == pending.id || actor.id == owner.id) {
                continue; // the parties themselves, tested in tests/care.rs
            }
            let vars = json!({ "p": owner.id, "r": rel_pending });
            let response = actor.client.gql(doc, vars).await;
            let code = response["errors"][0]["extensions"]["code"].as_str();
            if staff {
                assert_eq!(code, Some("FORBIDDEN"), "{}: {doc}: {response}", actor.name);
            } else if doc.contains("saveProviderProfile") {
                // A provider may change their own profile; a service user has none.
                assert!(
                    actor.role == Role::Provider || code == Some("FORBIDDEN"),
                    "{}: {doc}: {response}",
                    actor.name
                );
            } else if doc.contains("relationshipId") {
                assert_eq!(code, Some("NOT_FOUND"), "{}: {doc}: {response}", actor.name);
            }
        }
    }
    // The pending invitation is still pending.
    let list = pending
        .client
        .data("{ careRelationships { nodes { status } } }", json!({}))
        .await;
    assert_eq!(list["careRelationships"]["nodes"][0]["status"], "INVITED");

    // Only the owner changes grants; only the relationship's provider breaks glass.
    for actor in actors.iter().filter(|a| a.id != owner.id) {
        let code = actor
            .client
            .error_code(
                "mutation($r: ID!) { grantAccess(relationshipId: $r, section: MEDICATIONS) { version } }",
                json!({ "r": rel_revoked }),
            )
            .await;
        assert!(
            code == "NOT_FOUND" || code == "FORBIDDEN",
            "{}: {code}",
            actor.name
        );
        let code = actor
            .client
            .error_code(
                "mutation($r: ID!) { revokeAccess(relationshipId: $r, section: CORE) { version } }",
                json!({ "r": rel }),
            )
            .await;
        assert!(
            code == "NOT_FOUND" || code == "FORBIDDEN",
            "{}: {code}",
            actor.name
        );
        if actor.id != none.id {
            let code = actor
                .client
                .error_code(
                    "mutation($r: ID!) { breakGlass(relationshipId: $r, reason: OTHER, explanation: \"x\") { version } }",
                    json!({ "r": relationship_of(owner.id, none.id) }),
                )
                .await;
            assert!(
                code == "NOT_FOUND" || code == "FORBIDDEN",
                "{}: {code}",
                actor.name
            );
        }
    }
    // ...so the provider with every grant still reads, and the one with none still cannot.
    granted
        .client
        .data(
            "query($p: ID) { medications(portalId: $p) { name } }",
            vars.clone(),
        )
        .await;
    *expected
        .entry((granted.id, "medications".into(), true))
        .or_default() += 1;

    // The trail's own queries: auditors search, service users read their own log.
    let (from, to) = (
        (Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
        (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    );
    let span = json!({ "s": owner.id, "f": from, "t": to });
    for actor in &actors {
        let auditor = actor.role == Role::Auditor;
        let service_user = actor.role == Role::ServiceUser;
        let provider = actor.role == Role::Provider;
        let moderator = actor.role == Role::Moderator;
        for (doc, may) in [
            // The forum: its members read it; moderators moderate; auditors
            // read the moderation log; researchers and admins see nothing.
            (
                "{ forum { categories { key } topics { nodes { title } } } }",
                service_user || provider || moderator,
            ),
            ("{ moderationQueue { guidance } }", moderator),
            ("{ forumConcerns { note } }", moderator),
            ("{ forumNameHistory { name } }", moderator),
            ("{ moderationLog { nodes { action } } }", moderator || auditor),
            ("{ accessTrail { nodes { position } } }", auditor),
            (
                "query($s: UUID!, $f: DateTime!, $t: DateTime!) { whoCouldSee(subjectId: $s, section: CRISIS_PLAN, from: $f, to: $t) { looked { position } } }",
                auditor,
            ),
            (
                "query($s: UUID, $f: DateTime!, $t: DateTime!) { disclosuresCsv(subjectId: $s, from: $f, to: $t) }",
                auditor || actor.id == owner.id,
            ),
            ("{ myAccessLog { entries { nodes { position } } } }", service_user),
            ("{ caseload { nodes { lastLookedAt } } }", provider),
            ("{ careRelationships { nodes { status } } }", service_user || provider),
        ] {
            let response = actor.client.gql(doc, span.clone()).await;
            if may {
                assert!(response.get("errors").is_none(), "{}: {doc}: {response}", actor.name);
            } else {
                assert_eq!(
                    response["errors"][0]["extensions"]["code"], "FORBIDDEN",
                    "{}: {doc}: {response}",
                    actor.name
                );
            }
            for (_, mark) in MARKS {
                assert!(!response.to_string().contains(mark), "{}: {doc} leaks", actor.name);
            }
        }
    }

    // Every look at the portal by someone else is on the trail exactly once:
    // counted from the event store, the source of truth.
    let read = read_db(&db).await;
    let section_of = |field: &str| READS.iter().find(|r| r.field == field).map(|r| r.section);
    let mut recorded: BTreeMap<(Uuid, String, bool), usize> = BTreeMap::new();
    let mut trail_reads: BTreeMap<(Uuid, String), usize> = BTreeMap::new();
    let mut requests = std::collections::BTreeSet::new();
    for payload in payloads_of(&read, "AccessTrail").await {
        let r: AccessRecord = serde_json::from_str(&payload).unwrap();
        if r.section == "access_log" {
            *trail_reads
                .entry((r.reader_id, r.query.clone()))
                .or_default() += 1;
            continue;
        }
        let context = format!("{r:?}");
        assert_eq!(r.subject_id, Some(owner.id), "{context}");
        assert_ne!(
            r.reader_id, owner.id,
            "the owner's own reads are not recorded"
        );
        assert_eq!(r.client_address.as_deref(), Some("127.0.0.1"), "{context}");
        if r.query == "caseload" {
            // The caseload's change counts: one record per granted section.
            assert_eq!(r.basis, Basis::Grant, "{context}");
            assert_eq!(r.reader_id, granted.id, "{context}");
        } else {
            assert_eq!(Some(r.section.as_str()), section_of(&r.query), "{context}");
            // One record per request: a record counted twice for one query and
            // missing for another would show here.
            assert!(
                requests.insert(r.request_id.clone()),
                "two records for one request: {context}"
            );
        }
        if r.allowed() {
            let reader = actors.iter().find(|a| a.id == r.reader_id).unwrap();
            let expected_basis = if reader.id == glass.id {
                Basis::BreakGlass
            } else {
                Basis::Grant
            };
            assert_eq!(r.basis, expected_basis, "{context}");
            assert_eq!(
                r.relationship_id,
                Some(relationship_of(owner.id, r.reader_id)),
                "{context}"
            );
            assert!(r.basis_sequence.is_some_and(|s| s > 0), "{context}");
            assert_eq!(r.refusal, None, "{context}");
        } else {
            let reader = actors.iter().find(|a| a.id == r.reader_id).unwrap();
            let party = [&none, &revoked, &expired, &glass]
                .iter()
                .any(|p| p.id == reader.id);
            let (code, _) = refusal_of(reader.role, party);
            assert_eq!(r.refusal.as_deref(), Some(code), "{context}");
            assert_eq!(r.relationship_id, None, "{context}");
        }
        *recorded
            .entry((r.reader_id, r.query.clone(), r.allowed()))
            .or_default() += 1;
    }
    *expected
        .entry((granted.id, "caseload".into(), true))
        .or_default() += ALL.len();
    assert_eq!(recorded, expected);
    // Reads of the trail itself: each allowed one, once.
    let auditor_id = actors.iter().find(|a| a.role == Role::Auditor).unwrap().id;
    let expected_trail: BTreeMap<(Uuid, String), usize> = [
        ((auditor_id, "accessTrail".to_string()), 1),
        ((auditor_id, "whoCouldSee".to_string()), 1),
        ((auditor_id, "disclosuresCsv".to_string()), 1),
        ((owner.id, "disclosuresCsv".to_string()), 1),
        ((owner.id, "myAccessLog".to_string()), 1),
        ((other_user.id, "myAccessLog".to_string()), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(trail_reads, expected_trail);
    server.stop().await;
}
both_stores!(authorisation_matrix, matrix);

fn relationship_of(user: Uuid, provider: Uuid) -> Uuid {
    domain::care::relationship_id(user, provider)
}

/// A `BigInt` (sent as a decimal string) as a number.
fn big(v: &Value) -> i64 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a BigInt: {v}"))
        .parse()
        .unwrap()
}

/// What someone who may not read a section of another's portal is told:
/// the code, and the message where it is the same for every portal.
fn refusal_of(role: Role, party: bool) -> (&'static str, Option<&'static str>) {
    match (role, party) {
        (Role::Provider, true) => ("FORBIDDEN", None),
        (Role::Provider, false) => ("NOT_FOUND", Some("no portal you may read has this id")),
        _ => (
            "FORBIDDEN",
            Some("your role does not read other people's portals"),
        ),
    }
}
