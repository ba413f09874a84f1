"""A client developer's short scenario with Python's gql: a query and a
mutation over HTTP, then a live subscription over WebSocket with gql's
graphql-transport-ws transport, authenticated the way gql sends it
(connection_init payload {"authorization": "Bearer ..."}). Prints "live ok"."""
import asyncio
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from gql.transport.websockets import WebsocketsTransport

base, token = sys.argv[1], sys.argv[2]

http = Client(
    transport=RequestsHTTPTransport(
        url=f"{base}/graphql",
        headers={"Authorization": f"Bearer {token}"},
        retries=0,
        timeout=30,
    ),
    fetch_schema_from_transport=True,
)
with http as session:
    me = session.execute(gql("{ me { personId role } }"))
    assert me["me"]["role"] == "SERVICE_USER", me
    rated = session.execute(
        gql('mutation { rateStatus(domain: "housing", score: 7) { version } }')
    )
    # version is a BigInt: a decimal string.
    assert int(rated["rateStatus"]["version"]) >= 1, rated


async def live():
    transport = WebsocketsTransport(
        url=base.replace("http://", "ws://") + "/graphql/ws",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as session:
        subscription = gql("subscription { liveUpdates { kind at } }")
        async for update in session.subscribe(subscription):
            assert update["liveUpdates"]["kind"] == "SUBSCRIBED", update
            return


asyncio.run(asyncio.wait_for(live(), timeout=20))
print("live ok")
