"""A client developer's scenario through every area of the API with Python's
gql, which validates every document against the schema it introspects
first: the toolbox, working together, reads through `node`, paging with
cursors, messages live over graphql-transport-ws, agreements, the access
trail, and research. Arguments: the server's base URL and a JSON object of
tokens and person ids by role. Prints "scenario ok"."""
import asyncio
import json
import sys

from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport

base, people = sys.argv[1], json.loads(sys.argv[2])


def client(role):
    return Client(
        transport=RequestsHTTPTransport(
            url=f"{base}/graphql",
            headers={"Authorization": f"Bearer {people[role]['token']}"},
            retries=0,
            timeout=30,
        ),
        fetch_schema_from_transport=True,
    )


def run(session, document, **variables):
    return session.execute(gql(document), variable_values=variables)


def refused(session, document, **variables):
    """The error code a document is refused with."""
    try:
        run(session, document, **variables)
    except TransportQueryError as error:
        return error.errors[0]["extensions"]["code"]
    raise AssertionError(f"not refused: {document}")


def every_page(session, document, path, **variables):
    """Every node of a connection, page by page with its cursors."""
    nodes, after, pages = [], None, 0
    while True:
        result = run(session, document, after=after, **variables)
        connection = result
        for key in path:
            connection = connection[key]
        nodes += connection["nodes"]
        pages += 1
        info = connection["pageInfo"]
        if not info["hasNextPage"]:
            return nodes, pages
        after = info["endCursor"]


user, provider = client("user"), client("provider")
auditor, admin, researcher = client("auditor"), client("admin"), client("researcher")
user_id, provider_id = people["user"]["id"], people["provider"]["id"]

# The toolbox: every mutation returns the object it changed.
with user as u:
    panel = run(u, "mutation { openPortal { controlPanel { id domains { key } } version } }")
    assert len(panel["openPortal"]["controlPanel"]["domains"]) == 8, panel
    goal = run(
        u,
        'mutation { setGoal(domain: "housing", title: "Find a flat") { goal { id uuid state } } }',
    )["setGoal"]["goal"]
    activity = run(
        u,
        'mutation($g: ID!) { planActivity(goalId: $g, title: "Call the office") { activity { id state } } }',
        g=goal["id"],
    )["planActivity"]["activity"]
    done = run(
        u,
        "mutation($a: ID!) { completeActivity(activityId: $a) { activity { state } } }",
        a=activity["id"],
    )
    assert done["completeActivity"]["activity"]["state"] == "DONE", done
    medication = run(
        u,
        'mutation { addMedication(name: "Sertraline", dose: "50 mg", schedule: "mornings") { medication { id name } } }',
    )["addMedication"]["medication"]
    run(u, 'mutation { addPerson(displayName: "Mum", relation: FAMILY, closeness: 5) { person { id } } }')
    plan = run(
        u,
        'mutation { reviseCrisisPlan(plan: { warningSigns: ["Not sleeping"] }) { crisisPlan { id revision } } }',
    )
    assert plan["reviseCrisisPlan"]["crisisPlan"]["revision"] == 1, plan
    entry = run(
        u, 'mutation { startExercise(exercise: "mindfulness") { entry { uuid title } } }'
    )["startExercise"]["entry"]
    run(
        u,
        "mutation($e: ID!) { completeExercise(entryId: $e, rating: 4) { entry { completedAt rating } } }",
        e=entry["uuid"],
    )
    # A history, one entry a page: every change once, in order.
    history, pages = every_page(
        u,
        "query($g: ID!, $after: String) { goalHistory(goalId: $g, first: 1, after: $after) "
        "{ nodes { eventType sequence } pageInfo { hasNextPage endCursor } } }",
        ["goalHistory"],
        g=goal["id"],
    )
    assert [h["eventType"] for h in history] == ["GOAL_SET", "ACTIVITY_PLANNED", "ACTIVITY_COMPLETED"], history
    assert pages == 3, pages
    assert refused(u, "{ controlPanel { recentChanges(first: 0) { nodes { at } } } }") == "BAD_USER_INPUT"
    # The same goal again, by its global id.
    node = run(u, "query($id: ID!) { node(id: $id) { __typename ... on Goal { uuid } } }", id=goal["id"])
    assert node["node"] == {"__typename": "Goal", "uuid": goal["uuid"]}, node

# Working together: a provider registers, the user invites them by their
# profile's global id, they accept, the core section is granted.
with provider as p:
    profile = run(
        p, 'mutation { saveProviderProfile(displayName: "Kari", profession: NURSE) { providerProfile { id personId } } }'
    )["saveProviderProfile"]["providerProfile"]
    assert profile["personId"] == provider_id, profile
with user as u:
    providers = run(u, "{ providers(first: 10) { totalCount nodes { id displayName } } }")["providers"]
    assert profile["id"] in [n["id"] for n in providers["nodes"]], providers
    relationship = run(
        u, "mutation($p: ID!) { inviteToCare(personId: $p) { relationship { id status } } }", p=profile["id"]
    )["inviteToCare"]["relationship"]
    assert relationship["status"] == "INVITED", relationship
with provider as p:
    accepted = run(
        p,
        "mutation($r: ID!) { acceptCareInvitation(relationshipId: $r) { relationship { status } } }",
        r=relationship["id"],
    )
    assert accepted["acceptCareInvitation"]["relationship"]["status"] == "ACTIVE", accepted
with user as u:
    run(u, "mutation($r: ID!) { grantAccess(relationshipId: $r, section: CORE) { relationship { grants { section } } } }", r=relationship["id"])

# The provider reads through `node`: the granted goal, not the medication.
with provider as p:
    seen = run(p, "query($id: ID!) { node(id: $id) { ... on Goal { state } } }", id=goal["id"])
    assert seen["node"]["state"] == "ACTIVE", seen
    assert refused(p, "query($id: ID!) { node(id: $id) { id } }", id=medication["id"]) == "FORBIDDEN"
    caseload = run(p, "{ caseload { totalCount nodes { relationship { id } changedSinceLastLook { section } } } }")
    assert caseload["caseload"]["nodes"][0]["relationship"]["id"] == relationship["id"], caseload


# Messages, live: the provider listens; the user writes.
async def messages():
    transport = WebsocketsTransport(
        url=base.replace("http://", "ws://") + "/graphql/ws",
        init_payload={"authorization": f"Bearer {people['provider']['token']}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as live:
        updates = live.subscribe(gql("subscription { liveUpdates { kind conversationId messageId body } }"))
        first = await updates.__anext__()
        assert first["liveUpdates"]["kind"] == "SUBSCRIBED", first
        with user as u:
            thread = run(
                u,
                'mutation($p: [ID!]!) { startConversation(subject: "Us", body: "Hello", providerIds: $p) { conversation { id } } }',
                p=[profile["personId"]],
            )["startConversation"]["conversation"]
        update = await updates.__anext__()
        assert update["liveUpdates"]["kind"] == "MESSAGE", update
        assert update["liveUpdates"]["conversationId"] == thread["id"], update
        return thread, update["liveUpdates"]["messageId"]


thread, message_id = asyncio.run(asyncio.wait_for(messages(), timeout=30))
with provider as p:
    read = run(
        p,
        "mutation($c: ID!, $m: ID!) { markRead(conversationId: $c, upTo: $m) { conversation { unread messages(last: 1) { nodes { id body } } } } }",
        c=thread["id"],
        m=message_id,
    )["markRead"]["conversation"]
    assert read["unread"] == 0 and read["messages"]["nodes"][0]["id"] == message_id, read
    # Agreements: the provider proposes, the user accepts.
    terms = {
        "initiative": "BOTH",
        "providerLooksInDays": 7,
        "userRepliesWithin": {"value": 2, "unit": "WORKING_DAYS"},
        "providerRepliesWithin": {"value": 24, "unit": "HOURS"},
        "openedTogether": True,
    }
    proposed = run(
        p,
        "mutation($r: ID!, $t: AgreementTermsInput!) { proposeAgreement(relationshipId: $r, terms: $t) { agreement { pending { version } } } }",
        r=relationship["id"],
        t=terms,
    )
    assert proposed["proposeAgreement"]["agreement"]["pending"]["version"] == 1, proposed
with user as u:
    accepted = run(
        u,
        "mutation($r: ID!) { acceptAgreement(relationshipId: $r) { agreement { inForce { version } } } }",
        r=relationship["id"],
    )
    assert accepted["acceptAgreement"]["agreement"]["inForce"]["version"] == 1, accepted
    threads = run(u, "{ conversations { unreadTotal conversations(first: 5) { totalCount nodes { id } } } }")
    assert threads["conversations"]["conversations"]["nodes"][0]["id"] == thread["id"], threads
    log = run(u, "{ myAccessLog { entries(first: 50) { nodes { section basis readerId } } } }")
    looks = [(e["section"], e["basis"]) for e in log["myAccessLog"]["entries"]["nodes"] if e["readerId"] == provider_id]
    assert ("CORE", "GRANT") in looks and ("MEDICATIONS", "REFUSED") in looks, looks

# The auditor pages through the user's trail, two records at a time.
with auditor as a:
    trail, pages = every_page(
        a,
        "query($s: ID!, $after: String) { accessTrail(subjectId: $s, first: 2, after: $after) "
        "{ nodes { position section basis } pageInfo { hasNextPage endCursor } } }",
        ["accessTrail"],
        s=user_id,
    )
    positions = [int(t["position"]) for t in trail]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(positions), positions
    assert pages >= 2, pages

# Research: an admin registers a study, the user enrols, its researcher reads it.
with admin as ad:
    study = run(
        ad,
        'mutation($r: [ID!]!) { registerStudy(title: "Engagement", protocolId: "P-1", startsOn: "2026-01-01", endsOn: "2030-12-31", researcherIds: $r) { study { id } } }',
        r=[people["researcher"]["id"]],
    )["registerStudy"]["study"]
with user as u:
    enrolled = run(u, "mutation($s: ID!) { enrolInStudy(studyId: $s) { study { meEnrolled } } }", s=study["id"])
    assert enrolled["enrolInStudy"]["study"]["meEnrolled"] is True, enrolled
with researcher as r:
    mine = run(r, "{ studies(first: 10) { totalCount nodes { id } } }")
    assert [n["id"] for n in mine["studies"]["nodes"]] == [study["id"]], mine
    measures = run(r, "query($s: ID!) { studyMeasures(studyId: $s) { studyId participants } }", s=study["id"])
    assert measures["studyMeasures"]["studyId"] == study["id"], measures

print("scenario ok")
