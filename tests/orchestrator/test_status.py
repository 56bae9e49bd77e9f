"""The orchestrator's /status and /metrics server: what Prometheus and an operator see."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from orchestrator.status import Metrics, StatusServer


def client_for(instances: list[dict[str, Any]]) -> tuple[TestClient, Metrics]:
    metrics = Metrics()
    server = StatusServer(lambda: {"instances": instances}, metrics)
    return TestClient(server.config.app, follow_redirects=False), metrics


def gauge_lines(text: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith("tierserve_hot_instances{")}


def test_hot_instances_by_state_include_serving() -> None:
    instances: list[dict[str, Any]] = [
        {"model": "a", "state": "serving"}, {"model": "b", "state": "serving"},
        {"model": "c", "state": "starting"}, {"error": "docker engine gone"}]
    client, metrics = client_for(instances)
    metrics.instances.labels("dead").set(3)  # an older pass's figure: the scrape is newer
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert gauge_lines(response.text) == {
        'tierserve_hot_instances{state="serving"}': 2.0,
        'tierserve_hot_instances{state="starting"}': 1.0,
        'tierserve_hot_instances{state="draining"}': 0.0,
        'tierserve_hot_instances{state="dead"}': 0.0}
    instances[:] = [{"model": "a", "state": "draining"}]
    lines = gauge_lines(client.get("/metrics/").text)  # the old address still answers
    assert lines['tierserve_hot_instances{state="serving"}'] == 0.0
    assert lines['tierserve_hot_instances{state="draining"}'] == 1.0


def test_metrics_answer_without_a_redirect_and_errors_in_the_projects_shape() -> None:
    client, _ = client_for([])
    assert client.get("/metrics").status_code == 200
    missing = client.get("/nosuchpage")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    wrong = client.post("/status")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error"}
    assert client.get("/status").json() == {"instances": []}
