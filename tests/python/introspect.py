"""Introspects the service with Python's gql client, as a client developer's
tooling would: gql sends graphql-core's standard introspection query, builds
the schema from the answer, and validates a query against it locally."""
import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport

url = sys.argv[1]

# The newest introspection query GraphiQL sends asks for everything.
everything = dict(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
full = Client(
    transport=RequestsHTTPTransport(url=url, retries=0, timeout=30),
    fetch_schema_from_transport=True,
    introspection_args=everything,
)
with full:
    assert full.schema is not None and full.schema.query_type is not None

client = Client(
    transport=RequestsHTTPTransport(url=url, retries=0, timeout=30),
    fetch_schema_from_transport=True,
)
with client as session:
    schema = client.schema
    assert schema is not None and schema.query_type is not None
    assert schema.mutation_type is not None and schema.subscription_type is not None
    client.validate(gql("{ me { personId role organisation } controlPanel { version } }"))
    try:
        client.validate(gql("{ noSuchField }"))
        raise SystemExit("a query with an unknown field validated")
    except Exception as error:  # graphql-core's GraphQLError
        assert "noSuchField" in str(error), error
    print(f"schema ok: {len(schema.type_map)} types")
