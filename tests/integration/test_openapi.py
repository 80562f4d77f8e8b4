"""/api/openapi.json is a valid OpenAPI 3 document and the live server's answers match it."""

from __future__ import annotations

import orjson
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from dashboard_fixtures import get, monitored_cluster, step
from raftctl import DashboardServer

SEED = 99


@pytest.fixture(scope="module")
def live_server():
    cluster, collector = monitored_cluster(SEED, warmup=5)
    # Lose quorum then recover, so the documents carry firing and resolved alerts too.
    for node_id in cluster.node_ids[:3]:
        cluster.crash(node_id)
    for _ in range(4):
        step(cluster, collector)
    for node_id in cluster.node_ids[:3]:
        cluster.restart(node_id)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=20.0), f"seed={SEED}"
    step(cluster, collector)
    with DashboardServer(collector, port=0) as server:
        yield server


@pytest.fixture(scope="module")
def spec(live_server):
    status, headers, body = get(live_server.url, "/api/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    return orjson.loads(body)


def test_document_validates_as_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_endpoint_is_described_with_its_parameters_and_errors(spec):
    assert set(spec["paths"]) == {
        "/api/health",
        "/api/summary",
        "/api/metrics/history",
        "/api/node",
        "/api/alerts",
        "/api/events",
        "/metrics",
        "/api/openapi.json",
        "/",
        "/static/{file}",
    }
    node = spec["paths"]["/api/node"]["get"]
    assert {p["name"]: p["required"] for p in node["parameters"]} == {"node_id": True, "duration": False}
    assert {"200", "400", "404"} <= set(node["responses"])
    assert {"200", "503"} <= set(spec["paths"]["/api/health"]["get"]["responses"])
    assert spec["paths"]["/api/metrics/history"]["get"]["parameters"][0]["schema"]["maximum"] == 3600


PATHS = [
    "/api/health",
    "/api/summary",
    "/api/metrics/history",
    "/api/node",
    "/api/alerts",
    "/api/events",
    "/metrics",
    "/api/openapi.json",
    "/",
    "/static/{file}",
]
# Negative cases (values outside the schema) only exist for the query parameters; a free-form
# path string has no invalid value.
CASES = [(path, GenerationMode.POSITIVE) for path in PATHS] + [
    ("/api/metrics/history", GenerationMode.NEGATIVE),
    ("/api/node", GenerationMode.NEGATIVE),
    ("/api/events", GenerationMode.NEGATIVE),
]


@pytest.fixture(scope="module")
def api_schema(live_server):
    return schemathesis.openapi.from_url(live_server.url + "/api/openapi.json")


# schemathesis' own pytest loader (from_fixture) does not work with pytest 9, so the cases are
# drawn from each operation's Hypothesis strategy here, positive and negative.
@pytest.mark.parametrize("path,mode", CASES, ids=[f"GET {path} {mode}" for path, mode in CASES])
def test_server_answers_match_the_document(api_schema, live_server, path, mode):
    operation = api_schema[path]["GET"]
    checked = []

    # derandomize: the same examples on every run, so a failure reproduces exactly.
    @settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(base_url=live_server.url)
        checked.append(case)

    run()
    assert checked, path
