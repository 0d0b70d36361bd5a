#!/usr/bin/env python3
"""Check Portcullis' GraphQL schema with a client no one on the project wrote: graphql-core
(PyPI), the reference implementation's Python port.

usage:
  check_graphql_schema.py --introspection-query
      print graphql-core's standard introspection query (what clients send)
  check_graphql_schema.py --queries
      print the real operations below as JSON [{"name", "query"}], so the test can also
      run them against the server
  check_graphql_schema.py INTROSPECTION_RESULT_JSON
      rebuild the schema from the server's answer to that query with
      `build_client_schema`, check its root fields, validate every real operation below
      against it (none may have an error) and every wrong one (each must be refused)

Exits non-zero with every problem listed.
"""

import json
import sys

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    build_client_schema,
    get_introspection_query,
    parse,
    print_schema,
    validate,
)

# Real operations a client of Portcullis sends (the admin panel, scripts, the tests).
QUERIES = {
    "Catalogue": """
        query Catalogue($org: ID!, $after: String) {
          org(id: $org) { id name createdAt }
          connectors(org: $org, first: 20, after: $after,
                     filter: {status: ENABLED, category: SIEM, search: "feed"}) {
            edges {
              cursor
              node {
                id name enabled status schedule grants revision
                credentials { slot credential }
                health { state reasons since }
                lastTest { at by ok latencyMs stages { name ok message latencyMs } }
                plugin {
                  id version category
                  manifest { name description configSchema hosts acceptsPush }
                  capabilities { hosts acceptsPush imports credentialSlots { name kinds required } }
                }
              }
            }
            pageInfo { hasNextPage endCursor }
          }
        }
    """,
    "Connector": """
        query Connector($org: ID!, $id: ID!) {
          connector(org: $org, id: $id) {
            id name pluginId pluginVersion config updatedAt updatedBy
            revisions { revision author at change spec { name pluginVersion config grants schedule credentials { slot credential } } }
          }
        }
    """,
    "Plugins": """
        query Plugins {
          me { tokenId name org role platformAdmin }
          plugins { id version name sha256 size apiVersion bundled installedAt
                    capabilities { hosts credentialSlots { name description kinds required } acceptsPush imports } }
          plugin(id: "rest-generic") { id version manifest { id category configSchema } }
        }
    """,
    "Audit": """
        query Audit($org: ID!) {
          orgs { id name }
          audit(org: $org, limit: 20) { id at actor org action target outcome detail }
        }
    """,
    "Toggle": """
        mutation Toggle($org: ID!, $id: ID!, $on: Boolean!) {
          setConnectorEnabled(org: $org, id: $id, enabled: $on) { id enabled health { state } }
        }
    """,
    "Test": """
        mutation Test($org: ID!, $id: ID!) {
          testConnector(org: $org, id: $id) {
            ok latencyMs
            stages { name ok message latencyMs }
            sample { id time kind severityId severity title source observables { type value } attributes raw }
          }
        }
    """,
    "Create": """
        mutation Create($org: ID!, $input: CreateConnectorInput!) {
          createConnector(org: $org, input: $input) { id name revision }
        }
    """,
    "Update": """
        mutation Update($org: ID!, $id: ID!) {
          updateConnector(org: $org, id: $id,
                          input: {schedule: "PT2M", grants: ["https://api.example.com"],
                                  credentials: [{slot: "api", credential: "example-token"}]}) {
            connector { id revision schedule }
            capabilityDiff
          }
        }
    """,
    "Delete": """
        mutation Delete($org: ID!, $id: ID!) { deleteConnector(org: $org, id: $id) }
    """,
}

# Operations the schema must refuse.
WRONG = {
    "unknown field": "query { connectors(org: \"a\") { edges { node { password } } } }",
    "wrong argument type": "query { connectors(org: \"a\", first: \"ten\") { edges { cursor } } }",
    "missing required argument": "query { connector(id: \"x\") { id } }",
    "unknown enum value": "query { connectors(org: \"a\", filter: {status: MAYBE}) { edges { cursor } } }",
    "selection on a scalar": "query { orgs { id { value } } }",
    "mutation as a query": "query { setConnectorEnabled(org: \"a\", id: \"b\", enabled: true) { id } }",
    "missing input field": "mutation { createConnector(org: \"a\", input: {plugin: \"p\"}) { id } }",
}

EXPECTED_QUERY_FIELDS = {"orgs", "org", "connectors", "connector", "plugins", "plugin", "audit"}
EXPECTED_MUTATIONS = {
    "createConnector",
    "updateConnector",
    "deleteConnector",
    "setConnectorEnabled",
    "testConnector",
}


def main() -> int:
    if sys.argv[1:] == ["--introspection-query"]:
        print(get_introspection_query(descriptions=True))
        return 0
    if sys.argv[1:] == ["--queries"]:
        print(json.dumps([{"name": k, "query": v} for k, v in QUERIES.items()]))
        return 0

    with open(sys.argv[1], encoding="utf-8") as f:
        answer = json.load(f)
    problems = []
    if answer.get("errors"):
        problems.append(f"the introspection answer has errors: {answer['errors']}")
    schema = build_client_schema(answer["data"])

    query_fields = set(schema.query_type.fields) if schema.query_type else set()
    mutation_fields = set(schema.mutation_type.fields) if schema.mutation_type else set()
    for name in sorted(EXPECTED_QUERY_FIELDS - query_fields):
        problems.append(f"Query.{name} is missing")
    for name in sorted(EXPECTED_MUTATIONS - mutation_fields):
        problems.append(f"Mutation.{name} is missing")
    enabled = schema.mutation_type.fields.get("setConnectorEnabled") if schema.mutation_type else None
    if enabled is not None and not isinstance(enabled.args["enabled"].type, GraphQLNonNull):
        problems.append("setConnectorEnabled(enabled:) should be Boolean!")
    health = schema.get_type("HealthState")
    if not isinstance(health, GraphQLEnumType) or "DISABLED" not in health.values:
        problems.append("enum HealthState with DISABLED is missing")

    for name, query in QUERIES.items():
        errors = validate(schema, parse(query))
        for e in errors:
            problems.append(f"valid operation {name} refused: {e.message}")
    for name, query in WRONG.items():
        if not validate(schema, parse(query)):
            problems.append(f"wrong operation ({name}) accepted: {query}")

    if problems:
        print(f"{len(problems)} problem(s):")
        for p in problems:
            print(" -", p)
        return 1
    sdl = print_schema(schema)
    print(
        f"ok: schema rebuilt by graphql-core ({len(schema.type_map)} types, "
        f"{len(sdl.splitlines())} SDL lines); {len(QUERIES)} real operations valid, "
        f"{len(WRONG)} wrong ones refused"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
