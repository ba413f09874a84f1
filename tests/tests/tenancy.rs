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

/// What `node` and `nodes` ask of an object: its id and, for every type,
/// content that would show if A's object were answered.
macro_rules! node_fields {
    () => {
        "id __typename ... on ControlPanel { portalId domains { latestStatus { note } activeGoals { title } } } \
         ... on Goal { uuid title } ... on Activity { uuid title } ... on Medication { uuid name } \
         ... on NetworkPerson { uuid displayName } ... on CrisisPlan { revision warningSigns } \
         ... on ProviderProfile { displayName } ... on Relationship { uuid status } \
         ... on Agreement { pending { terms { notes } } } ... on Conversation { uuid subject messages { nodes { body } } } \
         ... on Message { uuid body } ... on Study { uuid title } \
         ... on ForumTopic { uuid title } ... on ForumPost { uuid body } ... on ForumConcern { note post { body } }"
    };
}

/// `node` asked for one of A's objects by its global id (`$<name>`).
macro_rules! node_op {
    ($var:literal) => {
        (
            "node",
            concat!(
                "query($",
                $var,
                ": ID!) { node(id: $",
                $var,
                ") { ",
                node_fields!(),
                " } }"
            ),
        )
    };
}

/// Every root field, with a request that aims it at A's data. `$`-variables
/// come from A's ids (see `variables`).
const OPERATIONS: &[(&str, &str)] = &[
    // Queries.
    ("me", "{ me { personId organisation } }"),
    node_op!("panelNode"),
    node_op!("goalNode"),
    node_op!("activityNode"),
    node_op!("medNode"),
    node_op!("personNode"),
    node_op!("planNode"),
    node_op!("profileNode"),
    node_op!("relNode"),
    node_op!("agreementNode"),
    node_op!("convNode"),
    node_op!("msgNode"),
    node_op!("studyNode"),
    node_op!("topicNode"),
    node_op!("postNode"),
    node_op!("concernNode"),
    ("nodes", concat!("query($allNodes: [ID!]!) { nodes(ids: $allNodes) { ", node_fields!(), " } }")),
    ("controlPanel", "query($portal: ID!) { controlPanel(portalId: $portal) { portalId version domains { key latestStatus { note } activeGoals { title } } recentChanges { nodes { eventType sequence } } } }"),
    ("goal", "query($portal: ID!, $goal: ID!) { goal(goalId: $goal, portalId: $portal) { title description } }"),
    ("goal", "query($goal: ID!) { goal(goalId: $goal) { title description } }"),
    ("goals", "query($portal: ID!) { goals(portalId: $portal, includeClosed: true) { title description activities { title } } }"),
    ("goalHistory", "query($portal: ID!, $goal: ID!) { goalHistory(goalId: $goal, portalId: $portal) { nodes { eventType actorId data } } }"),
    ("goalHistory", "query($goal: ID!) { goalHistory(goalId: $goal) { nodes { eventType actorId data } } }"),
    ("statusHistory", "query($portal: ID!) { statusHistory(domain: \"housing\", portalId: $portal) { nodes { score note } } }"),
    ("medications", "query($portal: ID!) { medications(portalId: $portal) { id uuid name dose } }"),
    ("network", "query($portal: ID!) { network(portalId: $portal) { id uuid displayName } }"),
    ("crisisPlan", "query($portal: ID!) { crisisPlan(portalId: $portal) { id revision warningSigns } }"),
    ("medicationHistory", "query($portal: ID!, $med: ID!) { medicationHistory(medicationId: $med, portalId: $portal) { nodes { eventType data } } }"),
    ("medicationHistory", "query($med: ID!) { medicationHistory(medicationId: $med) { nodes { eventType data } } }"),
    ("personHistory", "query($portal: ID!, $person: ID!) { personHistory(personId: $person, portalId: $portal) { nodes { eventType data } } }"),
    ("personHistory", "query($person: ID!) { personHistory(personId: $person) { nodes { eventType data } } }"),
    ("crisisPlanHistory", "query($portal: ID!) { crisisPlanHistory(portalId: $portal) { nodes { eventType data } } }"),
    ("exerciseCatalogue", "{ exerciseCatalogue { key title description } }"),
    ("exerciseLog", "query($portal: ID!) { exerciseLog(portalId: $portal) { entries { nodes { uuid reflection } } } }"),
    ("providers", "{ providers { nodes { id personId displayName } } }"),
    ("careRelationships", "{ careRelationships(includeClosed: true) { nodes { id uuid userId providerId status provider { displayName } consentHistory { number section ending } } } }"),
    ("caseload", "{ caseload { nodes { relationship { id uuid userId } lastLookedAt } } }"),
    ("myAccessLog", "{ myAccessLog { entries { nodes { readerId relationshipId section query } } breakGlass { relationshipId explanation providerName } } }"),
    ("accessTrail", "query($portal: UUID!) { accessTrail(subjectId: $portal) { nodes { readerId subjectId relationshipId query } } }"),
    ("whoCouldSee", "query($portal: UUID!) { whoCouldSee(subjectId: $portal, section: CRISIS_PLAN, from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { couldSee { relationshipId } looked { readerId } } }"),
    ("disclosuresCsv", "query($portal: UUID!) { disclosuresCsv(subjectId: $portal, from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") }"),
    ("disclosuresCsv", "{ disclosuresCsv(from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") }"),
    ("breakGlassReport", "{ breakGlassReport(from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { relationshipId subjectId providerId explanation reads } }"),
    ("alignment", "query($rel: ID!) { alignment(relationshipId: $rel) { relationshipId } }"),
    ("agreement", "query($rel: ID!) { agreement(relationshipId: $rel) { id relationshipId pending { version terms { notes } } } }"),
    ("conversations", "{ conversations { unreadTotal conversations { nodes { id uuid subject } } } }"),
    ("conversation", "query($conv: ID!) { conversation(conversationId: $conv) { id uuid subject messages { nodes { id body } } } }"),
    ("studies", "{ studies { nodes { id uuid title enrolledNow } } }"),
    ("studyMeasures", "query($study: ID!) { studyMeasures(studyId: $study) { studyId participants } }"),
    ("forum", "query($topic: ID!) { forum { me { name unreadTotal } categories { key topicCount } topics { nodes { id uuid title author { name } } } topic(id: $topic) { title posts { nodes { id uuid body } } } } }"),
    ("forum", "{ forum { me { name unreadTotal } categories { key topicCount } topics(followed: true) { nodes { id uuid title author { name } } } } }"),
    ("moderationQueue", "{ moderationQueue { concerns { id note post { body } } flagged { post { uuid body } flags { note } } } }"),
    ("forumConcerns", "{ forumConcerns { id note outcome } }"),
    ("forumNameHistory", "{ forumNameHistory { name previous } }"),
    ("moderationLog", "{ moderationLog { nodes { action targetId targetName reason } } }"),
    ("forumNameHolder", "{ forumNameHolder(name: \"SECRET-A Sunflower\", reason: \"from B\") { personId name } }"),
    // Mutations.
    ("openPortal", "mutation { openPortal { portalId } }"),
    ("addLifeDomain", "mutation { addLifeDomain(key: \"b_domain\", name: \"B\") { portalId } }"),
    ("rateStatus", "mutation { rateStatus(domain: \"housing\", score: 1, note: \"from B\") { portalId } }"),
    ("setGoal", "mutation { setGoal(domain: \"housing\", title: \"from B\") { goal { uuid } } }"),
    ("reviseGoal", "mutation($goal: ID!) { reviseGoal(goalId: $goal, title: \"from B\") { version goal { title } } }"),
    ("achieveGoal", "mutation($goal: ID!) { achieveGoal(goalId: $goal) { version goal { title } } }"),
    ("abandonGoal", "mutation($goal: ID!) { abandonGoal(goalId: $goal) { version goal { title } } }"),
    ("planActivity", "mutation($goal: ID!) { planActivity(goalId: $goal, title: \"from B\") { version activity { title } } }"),
    ("completeActivity", "mutation($activity: ID!) { completeActivity(activityId: $activity) { version activity { title } } }"),
    ("dropActivity", "mutation($activity: ID!) { dropActivity(activityId: $activity) { version activity { title } } }"),
    ("addMedication", "mutation { addMedication(name: \"B\", dose: \"1\", schedule: \"now\") { version } }"),
    ("changeMedication", "mutation($med: ID!) { changeMedication(medicationId: $med, dose: \"2 mg\") { version medication { name } } }"),
    ("pauseMedication", "mutation($med: ID!) { pauseMedication(medicationId: $med) { version medication { name } } }"),
    ("resumeMedication", "mutation($med: ID!) { resumeMedication(medicationId: $med) { version medication { name } } }"),
    ("stopMedication", "mutation($med: ID!) { stopMedication(medicationId: $med) { version medication { name } } }"),
    ("addPerson", "mutation { addPerson(displayName: \"B\", relation: FRIEND, closeness: 1) { version } }"),
    ("updatePerson", "mutation($person: ID!) { updatePerson(personId: $person, displayName: \"B\", relation: FRIEND, closeness: 2) { version person { displayName } } }"),
    ("removePerson", "mutation($person: ID!) { removePerson(personId: $person) { version person { displayName } } }"),
    ("reviseCrisisPlan", "mutation { reviseCrisisPlan(plan: { warningSigns: [\"from B\"] }) { version } }"),
    ("startExercise", "mutation { startExercise(exercise: \"mindfulness\") { version } }"),
    ("completeExercise", "mutation($entry: ID!) { completeExercise(entryId: $entry, reflection: \"from B\") { version entry { title reflection } } }"),
    ("addExercise", "mutation { addExercise(key: \"b_exercise\", title: \"B\") { version } }"),
    ("saveProviderProfile", "mutation { saveProviderProfile(displayName: \"B\", profession: NURSE) { version } }"),
    ("inviteToCare", "mutation($provider: ID!) { inviteToCare(personId: $provider) { relationship { uuid provider { displayName } } } }"),
    ("acceptCareInvitation", "mutation($rel: ID!) { acceptCareInvitation(relationshipId: $rel) { version relationship { status } } }"),
    ("declineCareInvitation", "mutation($rel: ID!) { declineCareInvitation(relationshipId: $rel) { version relationship { status } } }"),
    ("grantAccess", "mutation($rel: ID!) { grantAccess(relationshipId: $rel, section: MEDICATIONS) { version relationship { status } } }"),
    ("revokeAccess", "mutation($rel: ID!) { revokeAccess(relationshipId: $rel, section: CRISIS_PLAN) { version relationship { status } } }"),
    ("breakGlass", "mutation($rel: ID!) { breakGlass(relationshipId: $rel, reason: OTHER, explanation: \"from B\") { version relationship { status } } }"),
    ("proposeAgreement", "mutation($rel: ID!) { proposeAgreement(relationshipId: $rel, terms: { initiative: BOTH, providerLooksInDays: 1, userRepliesWithin: { value: 1, unit: HOURS }, providerRepliesWithin: { value: 1, unit: HOURS }, openedTogether: false }) { version agreement { pending { terms { notes } } } } }"),
    ("acceptAgreement", "mutation($rel: ID!) { acceptAgreement(relationshipId: $rel) { version agreement { inForce { terms { notes } } } } }"),
    ("declineAgreement", "mutation($rel: ID!) { declineAgreement(relationshipId: $rel) { version agreement { versions { terms { notes } } } } }"),
    ("withdrawAgreementProposal", "mutation($rel: ID!) { withdrawAgreementProposal(relationshipId: $rel) { version agreement { versions { terms { notes } } } } }"),
    ("startConversation", "mutation($provider: ID!, $portal: ID!) { startConversation(subject: \"B\", body: \"from B\", providerIds: [$provider], userId: $portal) { conversation { uuid } } }"),
    ("postMessage", "mutation($conv: ID!) { postMessage(conversationId: $conv, body: \"from B\") { version message { body } } }"),
    ("markRead", "mutation($conv: ID!, $msg: ID!) { markRead(conversationId: $conv, upTo: $msg) { version conversation { subject messages { nodes { body } } } } }"),
    ("registerStudy", "mutation($researcher: ID!) { registerStudy(title: \"B\", protocolId: \"B-1\", startsOn: \"2026-01-01\", endsOn: \"2030-12-31\", researcherIds: [$researcher]) { version } }"),
    ("enrolInStudy", "mutation($study: ID!) { enrolInStudy(studyId: $study) { version study { title } } }"),
    ("withdrawFromStudy", "mutation($study: ID!) { withdrawFromStudy(studyId: $study) { version study { title } } }"),
    ("chooseForumName", "mutation { chooseForumName(name: \"B member\") { name } }"),
    ("openTopic", "mutation { openTopic(category: \"sleep\", title: \"B\", body: \"from B\") { post { uuid body } } }"),
    ("replyToTopic", "mutation($topic: ID!) { replyToTopic(topicId: $topic, body: \"from B\") { post { uuid body } } }"),
    ("replyToTopic", "mutation($post: ID!) { replyToTopic(topicId: \"00000000-0000-0000-0000-000000000000\", body: \"from B\", quotePostId: $post) { post { uuid body } } }"),
    ("editPost", "mutation($post: ID!) { editPost(postId: $post, body: \"from B\") { post { body } } }"),
    ("withdrawPost", "mutation($post: ID!) { withdrawPost(postId: $post) { post { body } } }"),
    ("supportPost", "mutation($post: ID!) { supportPost(postId: $post) { post { body } } }"),
    ("flagPost", "mutation($post: ID!) { flagPost(postId: $post, reason: SPAM) { post { body } } }"),
    ("raiseConcern", "mutation($post: ID!) { raiseConcern(postId: $post) { post { body } } }"),
    ("followTopic", "mutation($topic: ID!) { followTopic(topicId: $topic) { topic { title } } }"),
    ("markTopicRead", "mutation($topic: ID!) { markTopicRead(topicId: $topic) { topic { title } } }"),
    ("hidePost", "mutation($post: ID!) { hidePost(postId: $post, reason: \"from B\") { post { body } } }"),
    ("restorePost", "mutation($post: ID!) { restorePost(postId: $post, reason: \"from B\") { post { body } } }"),
    ("closeTopic", "mutation($topic: ID!) { closeTopic(topicId: $topic, reason: \"from B\") { topic { title } } }"),
    ("silenceMember", "mutation($post: ID!) { silenceMember(postId: $post, days: 1, reason: \"from B\") { id member } }"),
    ("liftSilence", "mutation($silence: UUID!) { liftSilence(silenceId: $silence, reason: \"from B\") }"),
    ("addForumCategory", "mutation { addForumCategory(key: \"b_cat\", title: \"B\") { key title } }"),
    ("retireForumCategory", "mutation { retireForumCategory(key: \"recovery_stories\", reason: \"from B\") { key retired } }"),
    ("openConcern", "mutation($concern: ID!) { openConcern(concernId: $concern) { concern { note post { body } } } }"),
    ("resolveConcern", "mutation($concern: ID!) { resolveConcern(concernId: $concern, action: NO_ACTION_NEEDED) { concern { note post { body } } } }"),
    ("myErasure", "{ myErasure { personId state dueAt } }"),
    ("requestErasure", "mutation { requestErasure { erasure { personId state } } }"),
    ("cancelErasure", "mutation { cancelErasure { erasure { personId state } } }"),
    ("orderErasure", "mutation($portal: ID!) { orderErasure(personId: $portal) { erasure { personId state } } }"),
    ("requestDataExport", "mutation { requestDataExport { id state eventsTotal downloadUrl } }"),
    ("dataExport", "query($portal: ID!) { dataExport(id: $portal) { id state downloadUrl } }"),
    ("myDataExports", "{ myDataExports { id state eventsTotal downloadUrl } }"),
    // The last: it ends the relationship the others aim at.
    ("endCareRelationship", "mutation($rel: ID!) { endCareRelationship(relationshipId: $rel) { version relationship { status } } }"),
];

/// The uuid and the global id of the object a mutation returned.
fn created(data: &Value, field: &str, object: &str) -> (String, String) {
    let o = &data[field][object];
    let text = |k: &str| {
        o[k].as_str()
            .unwrap_or_else(|| panic!("no {k} in {data}"))
            .to_string()
    };
    (text("uuid"), text("id"))
}

/// Organisation A: a user with something in every section, a provider
/// who reads and broke the glass, a thread, an agreement, a study.
struct OrgA {
    user: User,
    provider: Provider,
    admin: Client,
    moderator: Client,
    ids: Value,
    /// For each variable that names one of A's objects, the object's global
    /// id: B's people try every field with those too.
    globals: Value,
    /// Every id of A's (uuids and global ids) that B must never see unless
    /// it sent it.
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
    let panel = u.data("{ controlPanel { id } }", json!({})).await["controlPanel"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (goal, goal_node) = created(
        &u.data(&format!("mutation {{ setGoal(domain: \"housing\", title: \"{MARK} goal\") {{ goal {{ id uuid }} }} }}"), json!({})).await,
        "setGoal",
        "goal",
    );
    let (activity, activity_node) = created(
        &u.data("mutation($g: ID!) { planActivity(goalId: $g, title: \"SECRET-A step\") { activity { id uuid } } }", json!({"g": goal})).await,
        "planActivity",
        "activity",
    );
    let (med, med_node) = created(
        &u.data(&format!("mutation {{ addMedication(name: \"{MARK} pill\", dose: \"1 mg\", schedule: \"daily\") {{ medication {{ id uuid }} }} }}"), json!({})).await,
        "addMedication",
        "medication",
    );
    let (person, person_node) = created(
        &u.data(&format!("mutation {{ addPerson(displayName: \"{MARK} Mum\", relation: FAMILY, closeness: 5) {{ person {{ id uuid }} }} }}"), json!({})).await,
        "addPerson",
        "person",
    );
    let plan_node = u
        .data(
            &format!("mutation {{ reviseCrisisPlan(plan: {{ warningSigns: [\"{MARK} sign\"] }}) {{ crisisPlan {{ id }} }} }}"),
            json!({}),
        )
        .await["reviseCrisisPlan"]["crisisPlan"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = u
        .data(
            "mutation { startExercise(exercise: \"mindfulness\") { entry { uuid } } }",
            json!({}),
        )
        .await["startExercise"]["entry"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    u.data(
        &format!("mutation($e: ID!) {{ completeExercise(entryId: $e, reflection: \"{MARK} calm\") {{ version }} }}"),
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
    let profile_node = u
        .data("{ providers { nodes { id personId } } }", json!({}))
        .await["providers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["personId"] == json!(provider.id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rel = relate(&user, &provider).await;
    let rel_node = u
        .data("{ careRelationships { nodes { id uuid } } }", json!({}))
        .await["careRelationships"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == rel.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    grant(&user, &rel, &["CRISIS_PLAN"], None).await;
    // The provider reads (an access-log entry) and breaks the glass.
    provider
        .client
        .data(
            "query($p: ID!) { crisisPlan(portalId: $p) { revision } }",
            json!({"p": user.id}),
        )
        .await;
    provider
        .client
        .data(
            &format!("mutation($r: ID!) {{ breakGlass(relationshipId: $r, reason: OTHER, explanation: \"{MARK} glass\") {{ version }} }}"),
            json!({"r": rel}),
        )
        .await;
    let (conv, conv_node) = created(
        &provider
            .client
            .data(
                &format!("mutation($u: ID!) {{ startConversation(subject: \"{MARK} subject\", body: \"{MARK} message\", userId: $u) {{ conversation {{ id uuid }} }} }}"),
                json!({"u": user.id}),
            )
            .await,
        "startConversation",
        "conversation",
    );
    let first = u
        .data(
            "query($c: ID!) { conversation(conversationId: $c) { messages { nodes { id uuid } } } }",
            json!({"c": conv}),
        )
        .await["conversation"]["messages"]["nodes"][0]
        .clone();
    let (msg, msg_node) = (
        first["uuid"].as_str().unwrap().to_string(),
        first["id"].as_str().unwrap().to_string(),
    );
    let agreement_node = provider
        .client
        .data(
            "mutation($r: ID!) { proposeAgreement(relationshipId: $r, terms: { initiative: BOTH, providerLooksInDays: 7, userRepliesWithin: { value: 3, unit: WORKING_DAYS }, providerRepliesWithin: { value: 48, unit: HOURS }, openedTogether: true, notes: \"SECRET-A terms\" }) { agreement { id } } }",
            json!({"r": rel}),
        )
        .await["proposeAgreement"]["agreement"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (study, study_node) = created(
        &admin
            .data(
                &format!("mutation($r: ID!) {{ registerStudy(title: \"{MARK} study\", protocolId: \"A-1\", startsOn: \"2026-01-01\", endsOn: \"2030-12-31\", researcherIds: [$r]) {{ study {{ id uuid }} }} }}"),
                json!({"r": researcher}),
            )
            .await,
        "registerStudy",
        "study",
    );
    u.data(
        "mutation($s: ID!) { enrolInStudy(studyId: $s) { version } }",
        json!({"s": study}),
    )
    .await;
    // The forum: the user posts under a pseudonym, staff reply, a moderator
    // hides the reply and silences its author, a concern is raised.
    let moderator = server.client(Some(token(Uuid::new_v4(), Role::Moderator, org)));
    u.data(
        &format!("mutation {{ chooseForumName(name: \"{MARK} Sunflower\") {{ name }} }}"),
        json!({}),
    )
    .await;
    moderator
        .data(
            "mutation { chooseForumName(name: \"Moderator Ann\") { name } }",
            json!({}),
        )
        .await;
    let opened = u
        .data(
            &format!("mutation {{ openTopic(category: \"sleep\", title: \"{MARK} title\", body: \"{MARK} post\") {{ post {{ id uuid topicId }} }} }}"),
            json!({}),
        )
        .await["openTopic"]["post"]
        .clone();
    let (post, post_node, topic_node) = (
        opened["uuid"].as_str().unwrap().to_string(),
        opened["id"].as_str().unwrap().to_string(),
        opened["topicId"].as_str().unwrap().to_string(),
    );
    let topic = u
        .data(
            "query($t: ID!) { forum { topic(id: $t) { uuid } } }",
            json!({"t": topic_node}),
        )
        .await["forum"]["topic"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = provider
        .client
        .data(
            &format!("mutation($t: ID!) {{ replyToTopic(topicId: $t, body: \"{MARK} reply\") {{ post {{ id }} }} }}"),
            json!({"t": topic}),
        )
        .await["replyToTopic"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    moderator
        .data(
            "mutation($p: ID!) { hidePost(postId: $p, reason: \"SECRET-A reason\") { post { hidden } } }",
            json!({"p": reply}),
        )
        .await;
    let silence = moderator
        .data(
            "mutation($p: ID!) { silenceMember(postId: $p, days: 1, reason: \"SECRET-A silence\") { id } }",
            json!({"p": reply}),
        )
        .await["silenceMember"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    provider
        .client
        .data(
            &format!("mutation($p: ID!) {{ raiseConcern(postId: $p, note: \"{MARK} worry\") {{ post {{ id }} }} }}"),
            json!({"p": post}),
        )
        .await;
    let concern_node = moderator
        .data("{ moderationQueue { concerns { id } } }", json!({}))
        .await["moderationQueue"]["concerns"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let nodes = json!({
        "topicNode": topic_node, "postNode": post_node, "concernNode": concern_node,
        "panelNode": panel, "goalNode": goal_node, "activityNode": activity_node,
        "medNode": med_node, "personNode": person_node, "planNode": plan_node,
        "profileNode": profile_node, "relNode": rel_node, "agreementNode": agreement_node,
        "convNode": conv_node, "msgNode": msg_node, "studyNode": study_node,
    });
    let all_nodes: Vec<Value> = nodes.as_object().unwrap().values().cloned().collect();
    let mut ids = json!({
        "portal": user.id, "goal": goal, "activity": activity, "med": med,
        "person": person, "entry": entry, "rel": rel, "conv": conv, "msg": msg, "study": study,
        "provider": provider.id, "researcher": researcher, "admin": admin_id, "auditor": auditor,
        "allNodes": all_nodes, "topic": topic, "post": post, "concern": concern_node,
        "silence": silence,
    });
    ids.as_object_mut()
        .unwrap()
        .extend(nodes.as_object().unwrap().clone());
    let globals = json!({
        "portal": nodes["panelNode"], "goal": nodes["goalNode"], "activity": nodes["activityNode"],
        "med": nodes["medNode"], "person": nodes["personNode"], "provider": nodes["profileNode"],
        "rel": nodes["relNode"], "conv": nodes["convNode"], "msg": nodes["msgNode"],
        "study": nodes["studyNode"], "topic": nodes["topicNode"], "post": nodes["postNode"],
    });
    let secrets = ids
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    OrgA {
        user,
        provider,
        admin,
        moderator,
        ids,
        globals,
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

/// The same variables with A's global ids in place of its uuids, where the
/// query takes an `ID`; None when there is none to replace.
fn global_variables(query: &str, ids: &Value, globals: &Value) -> Option<Value> {
    let mut vars = variables(query, ids);
    let mut replaced = false;
    for (name, value) in vars.as_object_mut().unwrap() {
        if query.contains(&format!("${name}: ID")) {
            if let Some(global) = globals.get(name.as_str()) {
                *value = global.clone();
                replaced = true;
            }
        }
    }
    replaced.then_some(vars)
}

/// Decodes unpadded base64url, as global ids are made (None for other text).
fn base64url(text: &str) -> Option<String> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = alphabet.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What B sent: the variables and the subject of its token, and what the
/// global ids among the variables name.
fn sent_text(vars: &Value, subject: Uuid) -> String {
    let mut sent = format!("{vars} {subject}");
    let mut strings = Vec::new();
    for value in vars.as_object().unwrap().values() {
        match value {
            Value::String(s) => strings.push(s.clone()),
            Value::Array(a) => {
                strings.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)))
            }
            _ => {}
        }
    }
    for s in strings {
        if let Some(decoded) = base64url(&s) {
            sent.push(' ');
            sent.push_str(&decoded);
        }
    }
    sent
}

/// What A's own people see of A, to compare before and after B's attempts.
async fn snapshot(a: &OrgA) -> Vec<Value> {
    let ids = &a.ids;
    vec![
        a.user.client.data(CONTROL_PANEL, json!({})).await,
        a.user
            .client
            .data(
                "query($c: ID!) { conversation(conversationId: $c) { subject participants { personId read } messages { nodes { body } } } }",
                json!({"c": ids["conv"]}),
            )
            .await,
        a.user
            .client
            .data(
                "{ careRelationships(includeClosed: true) { nodes { uuid status grants { section } } } medications { name dose state } network { displayName } crisisPlan { revision } exerciseLog { entries { nodes { reflection } } } }",
                json!({}),
            )
            .await,
        a.provider
            .client
            .data(
                "query($r: ID!) { agreement(relationshipId: $r) { pending { version } } providers { nodes { displayName } } }",
                json!({"r": ids["rel"]}),
            )
            .await,
        a.admin
            .data("{ studies { nodes { uuid title enrolledNow } } exerciseCatalogue { key } }", json!({}))
            .await,
        a.user
            .client
            .data(
                "query($t: ID!) { forum { me { name silencedUntil } categories { key retired topicCount } topic(id: $t) { title closed following unread posts { nodes { body hidden hiddenReason withdrawn supportCount edited } } } } }",
                json!({"t": ids["topic"]}),
            )
            .await,
        a.moderator
            .data(
                "{ moderationQueue { concerns { note openedAt resolvedAt } flagged { post { uuid } } } moderationLog { nodes { action reason reverted } } forumNameHistory { name } }",
                json!({}),
            )
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
        // Each request with A's uuids, then again with A's global ids (which
        // name A's portal by themselves) wherever the field takes an `ID`.
        let requests = OPERATIONS
            .iter()
            .map(|(name, query)| (*name, *query, variables(query, ids)))
            .chain(OPERATIONS.iter().filter_map(|(name, query)| {
                global_variables(query, ids, &a.globals).map(|vars| (*name, *query, vars))
            }))
            .collect::<Vec<_>>();
        for (name, query, vars) in requests {
            let response = client.gql(query, vars.clone()).await;
            let text = response.to_string();
            assert!(
                !text.contains(MARK),
                "{role:?} of clinic-b read A's data through {name} ({vars}): {text}"
            );
            let sent = sent_text(&vars, subject);
            for secret in &a.secrets {
                assert!(
                    sent.contains(secret.as_str()) || !text.contains(secret.as_str()),
                    "{role:?} of clinic-b learnt A's id {secret} through {name} ({vars}): {text}"
                );
            }
            // A refusal must come from the resolver (an error with a path),
            // not from a mistake in this test's query.
            for error in response["errors"].as_array().into_iter().flatten() {
                assert!(error.get("path").is_some(), "{name}: {error}");
            }
            // A's objects by their global ids: refused, each one.
            if name == "node" {
                assert!(
                    response["data"].is_null(),
                    "{role:?}: {name} ({vars}): {text}"
                );
                let code = response["errors"][0]["extensions"]["code"].as_str();
                assert!(
                    matches!(code, Some("NOT_FOUND" | "FORBIDDEN")),
                    "{role:?}: {name} ({vars}): {text}"
                );
            }
            if name == "nodes" {
                let asked = vars["allNodes"].as_array().unwrap().len();
                assert_eq!(
                    response["data"]["nodes"],
                    json!(vec![Value::Null; asked]),
                    "{role:?}: {name}: {text}"
                );
                let errors = response["errors"].as_array().unwrap();
                assert_eq!(errors.len(), asked, "{role:?}: {name}: {text}");
                for (i, error) in errors.iter().enumerate() {
                    assert_eq!(error["path"], json!(["nodes", i]), "{role:?}: {text}");
                    assert!(
                        matches!(
                            error["extensions"]["code"].as_str(),
                            Some("NOT_FOUND" | "FORBIDDEN")
                        ),
                        "{role:?}: {name}: {error}"
                    );
                }
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
            &format!("mutation($c: ID!) {{ postMessage(conversationId: $c, body: \"{MARK} live\") {{ version }} }}"),
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
        "subscription { liveUpdates { kind conversationId relationshipId messageId byId body read change version } }" } });
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
