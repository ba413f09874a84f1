//! Identity is scoped to the organisation: a token of organisation B that
//! carries the subject id of a person of organisation A reads nothing of A
//! and changes nothing of A, through every query, mutation and subscription
//! of the schema (the test fails when a root field is added and not listed
//! here).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use api::auth::Role;
use futures::SinkExt;
use portal_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

/// Text written into organisation A's data: it must never reach B.
const MARK: &str = "SECRET-A";

/// Every root field, with a request that aims it at A's data. `$`-variables
/// come from A's ids (see `variables`).
const OPERATIONS: &[(&str, &str)] = &[
    // Queries.
    ("me", "{ me { subject organisation } }"),
    ("controlPanel", "query($portal: UUID!) { controlPanel(portalId: $portal) { portalId version domains { key latestStatus { note } activeGoals { title } } recentChanges { eventType sequence } } }"),
    ("goal", "query($portal: UUID!, $goal: UUID!) { goal(goalId: $goal, portalId: $portal) { title description } }"),
    ("goalHistory", "query($portal: UUID!, $goal: UUID!) { goalHistory(goalId: $goal, portalId: $portal) { eventType actorId data } }"),
    ("statusHistory", "query($portal: UUID!) { statusHistory(domain: \"housing\", portalId: $portal) { score note } }"),
    ("medications", "query($portal: UUID!) { medications(portalId: $portal) { id name dose } }"),
    ("network", "query($portal: UUID!) { network(portalId: $portal) { id displayName } }"),
    ("crisisPlan", "query($portal: UUID!) { crisisPlan(portalId: $portal) { revision warningSigns } }"),
    ("medicationHistory", "query($portal: UUID!, $med: UUID!) { medicationHistory(medicationId: $med, portalId: $portal) { eventType data } }"),
    ("personHistory", "query($portal: UUID!, $person: UUID!) { personHistory(personId: $person, portalId: $portal) { eventType data } }"),
    ("crisisPlanHistory", "query($portal: UUID!) { crisisPlanHistory(portalId: $portal) { eventType data } }"),
    ("exerciseCatalogue", "{ exerciseCatalogue { key title description } }"),
    ("exerciseLog", "query($portal: UUID!) { exerciseLog(portalId: $portal) { entries { id reflection } } }"),
    ("providers", "{ providers { providerId displayName } }"),
    ("careRelationships", "{ careRelationships(includeClosed: true) { relationshipId userId providerId status provider { displayName } } }"),
    ("caseload", "{ caseload { relationship { relationshipId userId } lastLookedAt } }"),
    ("myAccessLog", "{ myAccessLog { entries { readerId section query } breakGlass { explanation providerName } } }"),
    ("accessTrail", "query($portal: UUID!) { accessTrail(subjectId: $portal) { readerId subjectId query } }"),
    ("whoCouldSee", "query($portal: UUID!) { whoCouldSee(subjectId: $portal, section: CRISIS_PLAN, from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { couldSee { relationshipId } looked { readerId } } }"),
    ("disclosuresCsv", "query($portal: UUID!) { disclosuresCsv(subjectId: $portal, from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") }"),
    ("disclosuresCsv", "{ disclosuresCsv(from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") }"),
    ("alignment", "query($rel: UUID!) { alignment(relationshipId: $rel) { relationshipId } }"),
    ("agreement", "query($rel: UUID!) { agreement(relationshipId: $rel) { pending { version terms { notes } } } }"),
    ("conversations", "{ conversations { unreadTotal conversations { id subject } } }"),
    ("conversation", "query($conv: UUID!) { conversation(conversationId: $conv) { subject messages { body } } }"),
    ("studies", "{ studies { studyId title enrolledNow } }"),
    ("studyMeasures", "query($study: UUID!) { studyMeasures(studyId: $study) { participants } }"),
    // Mutations.
    ("openPortal", "mutation { openPortal { portalId } }"),
    ("addLifeDomain", "mutation { addLifeDomain(key: \"b_domain\", name: \"B\") { portalId } }"),
    ("rateStatus", "mutation { rateStatus(domain: \"housing\", score: 1, note: \"from B\") { portalId } }"),
    ("setGoal", "mutation { setGoal(domain: \"housing\", title: \"from B\") { createdId } }"),
    ("reviseGoal", "mutation($goal: UUID!) { reviseGoal(goalId: $goal, title: \"from B\") { version } }"),
    ("achieveGoal", "mutation($goal: UUID!) { achieveGoal(goalId: $goal) { version } }"),
    ("abandonGoal", "mutation($goal: UUID!) { abandonGoal(goalId: $goal) { version } }"),
    ("planActivity", "mutation($goal: UUID!) { planActivity(goalId: $goal, title: \"from B\") { version } }"),
    ("completeActivity", "mutation($activity: UUID!) { completeActivity(activityId: $activity) { version } }"),
    ("dropActivity", "mutation($activity: UUID!) { dropActivity(activityId: $activity) { version } }"),
    ("addMedication", "mutation { addMedication(name: \"B\", dose: \"1\", schedule: \"now\") { version } }"),
    ("changeMedication", "mutation($med: UUID!) { changeMedication(medicationId: $med, dose: \"2 mg\") { version } }"),
    ("pauseMedication", "mutation($med: UUID!) { pauseMedication(medicationId: $med) { version } }"),
    ("resumeMedication", "mutation($med: UUID!) { resumeMedication(medicationId: $med) { version } }"),
    ("stopMedication", "mutation($med: UUID!) { stopMedication(medicationId: $med) { version } }"),
    ("addPerson", "mutation { addPerson(displayName: \"B\", relation: FRIEND, closeness: 1) { version } }"),
    ("updatePerson", "mutation($person: UUID!) { updatePerson(personId: $person, displayName: \"B\", relation: FRIEND, closeness: 2) { version } }"),
    ("removePerson", "mutation($person: UUID!) { removePerson(personId: $person) { version } }"),
    ("reviseCrisisPlan", "mutation { reviseCrisisPlan(plan: { warningSigns: [\"from B\"] }) { version } }"),
    ("startExercise", "mutation { startExercise(exercise: \"mindfulness\") { version } }"),
    ("completeExercise", "mutation($entry: UUID!) { completeExercise(entryId: $entry, reflection: \"from B\") { version } }"),
    ("addExercise", "mutation { addExercise(key: \"b_exercise\", title: \"B\") { version } }"),
    ("saveProviderProfile", "mutation { saveProviderProfile(displayName: \"B\", profession: NURSE) { version } }"),
    ("inviteToCare", "mutation($provider: UUID!) { inviteToCare(personId: $provider) { createdId } }"),
    ("acceptCareInvitation", "mutation($rel: UUID!) { acceptCareInvitation(relationshipId: $rel) { version } }"),
    ("declineCareInvitation", "mutation($rel: UUID!) { declineCareInvitation(relationshipId: $rel) { version } }"),
    ("grantAccess", "mutation($rel: UUID!) { grantAccess(relationshipId: $rel, section: MEDICATIONS) { version } }"),
    ("revokeAccess", "mutation($rel: UUID!) { revokeAccess(relationshipId: $rel, section: CRISIS_PLAN) { version } }"),
    ("breakGlass", "mutation($rel: UUID!) { breakGlass(relationshipId: $rel, reason: OTHER, explanation: \"from B\") { version } }"),
    ("proposeAgreement", "mutation($rel: UUID!) { proposeAgreement(relationshipId: $rel, terms: { initiative: BOTH, providerLooksInDays: 1, userRepliesWithin: { value: 1, unit: HOURS }, providerRepliesWithin: { value: 1, unit: HOURS }, openedTogether: false }) { version } }"),
    ("acceptAgreement", "mutation($rel: UUID!) { acceptAgreement(relationshipId: $rel) { version } }"),
    ("declineAgreement", "mutation($rel: UUID!) { declineAgreement(relationshipId: $rel) { version } }"),
    ("withdrawAgreementProposal", "mutation($rel: UUID!) { withdrawAgreementProposal(relationshipId: $rel) { version } }"),
    ("startConversation", "mutation($provider: UUID!, $portal: UUID!) { startConversation(subject: \"B\", body: \"from B\", providerIds: [$provider], userId: $portal) { createdId } }"),
    ("postMessage", "mutation($conv: UUID!) { postMessage(conversationId: $conv, body: \"from B\") { version } }"),
    ("markRead", "mutation($conv: UUID!, $msg: UUID!) { markRead(conversationId: $conv, upTo: $msg) { version } }"),
    ("registerStudy", "mutation($researcher: UUID!) { registerStudy(title: \"B\", protocolId: \"B-1\", startsOn: \"2026-01-01\", endsOn: \"2030-12-31\", researchers: [$researcher]) { version } }"),
    ("enrolInStudy", "mutation($study: UUID!) { enrolInStudy(studyId: $study) { version } }"),
    ("withdrawFromStudy", "mutation($study: UUID!) { withdrawFromStudy(studyId: $study) { version } }"),
    // The last: it ends the relationship the others aim at.
    ("endCareRelationship", "mutation($rel: UUID!) { endCareRelationship(relationshipId: $rel) { version } }"),
];

fn created(data: &Value, field: &str) -> String {
    data[field]["createdId"].as_str().unwrap().to_string()
}

/// Organisation A: a user with something in every section, a provider
/// who reads and broke the glass, a thread, an agreement, a study.
struct OrgA {
    user: User,
    provider: Provider,
    admin: Client,
    ids: Value,
    /// Every id of A's that B must never see unless it sent it.
    secrets: Vec<String>,
}

async fn organisation_a(server: &Server) -> OrgA {
    let org = "clinic-a";
    let user = open_user(server, org).await;
    let provider = register_provider(server, org, &format!("{MARK} Provider")).await;
    let admin_id = Uuid::new_v4();
    let admin = server.client(Some(token(admin_id, Role::Admin, org)));
    let researcher = Uuid::new_v4();
    let auditor = Uuid::new_v4();
    let u = &user.client;
    u.data(
        &format!("mutation {{ rateStatus(domain: \"housing\", score: 6, note: \"{MARK} note\") {{ version }} }}"),
        json!({}),
    )
    .await;
    let goal = created(
        &u.data(&format!("mutation {{ setGoal(domain: \"housing\", title: \"{MARK} goal\") {{ createdId }} }}"), json!({})).await,
        "setGoal",
    );
    let activity = created(
        &u.data("mutation($g: UUID!) { planActivity(goalId: $g, title: \"SECRET-A step\") { createdId } }", json!({"g": goal})).await,
        "planActivity",
    );
    let med = created(
        &u.data(&format!("mutation {{ addMedication(name: \"{MARK} pill\", dose: \"1 mg\", schedule: \"daily\") {{ createdId }} }}"), json!({})).await,
        "addMedication",
    );
    let person = created(
        &u.data(&format!("mutation {{ addPerson(displayName: \"{MARK} Mum\", relation: FAMILY, closeness: 5) {{ createdId }} }}"), json!({})).await,
        "addPerson",
    );
    u.data(
        &format!("mutation {{ reviseCrisisPlan(plan: {{ warningSigns: [\"{MARK} sign\"] }}) {{ version }} }}"),
        json!({}),
    )
    .await;
    let entry = created(
        &u.data(
            "mutation { startExercise(exercise: \"mindfulness\") { createdId } }",
            json!({}),
        )
        .await,
        "startExercise",
    );
    u.data(
        &format!("mutation($e: UUID!) {{ completeExercise(entryId: $e, reflection: \"{MARK} calm\") {{ version }} }}"),
        json!({"e": entry}),
    )
    .await;
    admin
        .data(
            &format!(
                "mutation {{ addExercise(key: \"a_walk\", title: \"{MARK} walk\") {{ version }} }}"
            ),
            json!({}),
        )
        .await;
    let rel = relate(&user, &provider).await;
    grant(&user, &rel, &["CRISIS_PLAN"], None).await;
    // The provider reads (an access-log entry) and breaks the glass.
    provider
        .client
        .data(
            "query($p: UUID!) { crisisPlan(portalId: $p) { revision } }",
            json!({"p": user.id}),
        )
        .await;
    provider
        .client
        .data(
            &format!("mutation($r: UUID!) {{ breakGlass(relationshipId: $r, reason: OTHER, explanation: \"{MARK} glass\") {{ version }} }}"),
            json!({"r": rel}),
        )
        .await;
    let conv = created(
        &provider
            .client
            .data(
                &format!("mutation($u: UUID!) {{ startConversation(subject: \"{MARK} subject\", body: \"{MARK} message\", userId: $u) {{ createdId }} }}"),
                json!({"u": user.id}),
            )
            .await,
        "startConversation",
    );
    let msg = u
        .data(
            "query($c: UUID!) { conversation(conversationId: $c) { messages { id } } }",
            json!({"c": conv}),
        )
        .await["conversation"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    provider
        .client
        .data(
            "mutation($r: UUID!) { proposeAgreement(relationshipId: $r, terms: { initiative: BOTH, providerLooksInDays: 7, userRepliesWithin: { value: 3, unit: WORKING_DAYS }, providerRepliesWithin: { value: 48, unit: HOURS }, openedTogether: true, notes: \"SECRET-A terms\" }) { version } }",
            json!({"r": rel}),
        )
        .await;
    let study = created(
        &admin
            .data(
                &format!("mutation($r: UUID!) {{ registerStudy(title: \"{MARK} study\", protocolId: \"A-1\", startsOn: \"2026-01-01\", endsOn: \"2030-12-31\", researchers: [$r]) {{ createdId }} }}"),
                json!({"r": researcher}),
            )
            .await,
        "registerStudy",
    );
    u.data(
        "mutation($s: UUID!) { enrolInStudy(studyId: $s) { version } }",
        json!({"s": study}),
    )
    .await;
    let ids = json!({
        "portal": user.id, "goal": goal, "activity": activity, "med": med, "person": person,
        "entry": entry, "rel": rel, "conv": conv, "msg": msg, "study": study,
        "provider": provider.id, "researcher": researcher, "admin": admin_id, "auditor": auditor,
    });
    let secrets = ids
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    OrgA {
        user,
        provider,
        admin,
        ids,
        secrets,
    }
}

/// The variables of `query` that A's ids provide.
fn variables(query: &str, ids: &Value) -> Value {
    let mut vars = serde_json::Map::new();
    for (name, value) in ids.as_object().unwrap() {
        if query.contains(&format!("${name}:")) {
            vars.insert(name.clone(), value.clone());
        }
    }
    Value::Object(vars)
}

/// What A's own people see of A, to compare before and after B's attempts.
async fn snapshot(a: &OrgA) -> Vec<Value> {
    let ids = &a.ids;
    vec![
        a.user.client.data(CONTROL_PANEL, json!({})).await,
        a.user
            .client
            .data(
                "query($c: UUID!) { conversation(conversationId: $c) { subject participants { id read } messages { body } } }",
                json!({"c": ids["conv"]}),
            )
            .await,
        a.user
            .client
            .data(
                "{ careRelationships(includeClosed: true) { relationshipId status grants { section } } medications { name dose state } network { displayName } crisisPlan { revision } exerciseLog { entries { reflection } } }",
                json!({}),
            )
            .await,
        a.provider
            .client
            .data(
                "query($r: UUID!) { agreement(relationshipId: $r) { pending { version } } providers { displayName } }",
                json!({"r": ids["rel"]}),
            )
            .await,
        a.admin
            .data("{ studies { studyId title enrolledNow } exerciseCatalogue { key } }", json!({}))
            .await,
    ]
}

async fn another_organisation_sees_and_changes_nothing(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let a = organisation_a(&server).await;

    // The table covers every root field of the schema.
    let schema = a
        .user
        .client
        .data(
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let in_schema: BTreeSet<String> = ["queryType", "mutationType"]
        .iter()
        .flat_map(|t| schema["__schema"][t]["fields"].as_array().unwrap().clone())
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    let listed: BTreeSet<String> = OPERATIONS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(in_schema, listed, "every root field must be tried here");

    wait_caught_up(&server).await;
    let before = snapshot(&a).await;

    // B's people carry A's people's ids, each in the same role.
    let ids = &a.ids;
    let id = |k: &str| Uuid::parse_str(ids[k].as_str().unwrap()).unwrap();
    let b_people = [
        (id("portal"), Role::ServiceUser),
        (id("provider"), Role::Provider),
        (id("admin"), Role::Admin),
        (id("researcher"), Role::Researcher),
        (id("auditor"), Role::Auditor),
        (id("portal"), Role::Moderator),
    ];
    // B's live subscribers, to check that nothing of A reaches them.
    let mut b_sockets = Vec::new();
    for (subject, role) in &b_people[..2] {
        b_sockets.push(subscribed(&server, &token(*subject, *role, "clinic-b")).await);
    }
    let mut a_socket = subscribed(&server, &token(a.user.id, Role::ServiceUser, "clinic-a")).await;

    let mut answered = 0;
    for (subject, role) in b_people {
        let client = server.client(Some(token(subject, role, "clinic-b")));
        for (name, query) in OPERATIONS {
            let vars = variables(query, ids);
            let response = client.gql(query, vars.clone()).await;
            let text = response.to_string();
            assert!(
                !text.contains(MARK),
                "{role:?} of clinic-b read A's data through {name}: {text}"
            );
            let sent = format!("{vars} {subject}");
            for secret in &a.secrets {
                assert!(
                    sent.contains(secret.as_str()) || !text.contains(secret.as_str()),
                    "{role:?} of clinic-b learnt A's id {secret} through {name}: {text}"
                );
            }
            // A refusal must come from the resolver (an error with a path),
            // not from a mistake in this test's query.
            for error in response["errors"].as_array().into_iter().flatten() {
                assert!(error.get("path").is_some(), "{name}: {error}");
            }
            if response.get("errors").is_none() {
                answered += 1;
            }
        }
    }
    // Not everything was refused: B's own (empty) lists and own writes work.
    assert!(answered > 10, "only {answered} requests of B were answered");

    // Nothing of B's landed on A's aggregates.
    let db_read = read_db(&db).await;
    let a_aggregates: BTreeSet<String> = a
        .secrets
        .iter()
        .cloned()
        .chain(["clinic-a".to_string()])
        .collect();
    for event in all_events(&db_read).await {
        // B's refused attempts are evidence, recorded in the trail under
        // B's organisation (A's people do not see them in their logs).
        if event.metadata.organisation == "clinic-b" && event.aggregate_type != "AccessTrail" {
            assert!(
                !a_aggregates.contains(&event.aggregate_id),
                "clinic-b changed A's {} {}: {}",
                event.aggregate_type,
                event.aggregate_id,
                event.event_type
            );
        }
    }
    wait_caught_up(&server).await;
    assert_eq!(snapshot(&a).await, before, "A's data changed");

    // Live: A's message reaches A's user, and no one of B.
    a.provider
        .client
        .data(
            &format!("mutation($c: UUID!) {{ postMessage(conversationId: $c, body: \"{MARK} live\") {{ version }} }}"),
            json!({"c": ids["conv"]}),
        )
        .await;
    let got = next_update(&mut a_socket, Duration::from_secs(10)).await;
    assert!(
        got.is_some_and(|u| u.to_string().contains(MARK)),
        "A's user got no live update"
    );
    for socket in &mut b_sockets {
        let leaked = next_update(socket, Duration::from_secs(2)).await;
        assert!(leaked.is_none(), "clinic-b received {leaked:?}");
    }
    server.stop().await;
}
both_stores!(
    another_organisation,
    another_organisation_sees_and_changes_nothing
);

/// A socket of `token`'s, subscribed to live updates.
async fn subscribed(server: &Server, token: &str) -> Socket {
    let mut socket = connect(server, token).await.unwrap();
    let start = json!({ "type": "subscribe", "id": "1", "payload": { "query":
        "subscription { liveUpdates { kind conversationId relationshipId by body read change version } }" } });
    socket
        .send(Frame::Text(start.to_string().into()))
        .await
        .unwrap();
    // Its first update says it is live: nothing sent after it is missed.
    let first = next_update(&mut socket, Duration::from_secs(10))
        .await
        .expect("the subscription goes live");
    assert_eq!(
        first["data"]["liveUpdates"]["kind"], "SUBSCRIBED",
        "{first}"
    );
    socket
}

async fn next_update(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = next_frame(socket, wait).await?;
        if frame["type"] == "next" {
            return Some(frame["payload"].clone());
        }
    }
}
