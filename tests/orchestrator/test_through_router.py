"""End to end through the router: real router, real cold pool, real orchestrator, and hot
instances as Docker containers, Swarm services (a one-node swarm, host-mode published ports on
127.0.0.1) or local processes. Traffic is real requests to the router; the orchestrator reads
the counts the router flushes.

One world per runtime, scenarios in order: busy model promoted with no failed request; hot
instance killed, requests keep succeeding via the cold pool and it comes back (Swarm restarts
its task itself); the orchestrator restarted, adopts the instance, no failed request; traffic
stops, demoted, no failed request.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from db import queries
from tierserve.toy_models import expected

from .conftest import MODELS
from .realworld import World, hot_extras, make_runtime, policy_dict, wait_for

pytestmark = pytest.mark.slow
XS = [1.0, 2.0]


class Traffic:
    """Requests for one model through the router in a background thread, every answer kept.
    Bounded: it stops by itself after `max_requests`."""

    def __init__(self, router: str, model: str, pause: float = 0.03,
                 max_requests: int = 20000) -> None:
        self.url = f"{router}/v1/models/{model}:predict"
        self.want = expected(MODELS[model], 0.0, XS)
        self.pause, self.max_requests = pause, max_requests
        self.pools: Counter[str] = Counter()
        self.failures: list[str] = []
        self.failed_at: list[float] = []
        self.last_pool = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set():
                    return
                try:
                    resp = client.post(self.url, json={"instances": XS})
                    ok = resp.status_code == 200 and resp.json()["predictions"] == self.want
                    if not ok:
                        self.failures.append(f"{resp.status_code} {resp.text[:200]}")
                        self.failed_at.append(time.time())
                    self.last_pool = resp.headers.get("X-Tierserve-Pool", "?")
                    self.pools[self.last_pool] += 1
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    self.failed_at.append(time.time())
                time.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)


@pytest.fixture(scope="module")
def cold_pool(tmp_path_factory: pytest.TempPathFactory, toy_store: Path,
              log_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = ServerProcess(
        tierserve_command("pool", "--store", str(toy_store), "--cache-dir",
                          str(tmp_path_factory.mktemp("cold-cache")), "--port", str(port),
                          "--grpc-port", str(free_port()),
                          "--load-wait", "60"),
        ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_dir / f"cold-{port}.log")
    proc.wait_ready(timeout=120)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


# The docker and swarm stacks reach the engine through getfixturevalue: marked so they run
# with the other Docker tests (tests/conftest.py).
@pytest.fixture(scope="module", params=["process",
                                        pytest.param("docker", marks=pytest.mark.docker),
                                        pytest.param("swarm", marks=pytest.mark.docker)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          toy_store: Path, log_dir: Path, cold_pool: str) -> Iterator[tuple[World, str]]:
    kind = request.param
    root = tmp_path_factory.mktemp(f"stack-{kind}")
    scope = f"r{os.getpid()}-{kind}"
    if kind == "swarm":
        request.getfixturevalue("swarm_engine")
    if kind in ("docker", "swarm"):
        request.getfixturevalue("test_image")
    runtime, container = make_runtime(kind, root, scope, memory="1g")
    # Short windows so a stop in traffic shows within seconds (counts are per 5 s bucket).
    policy = policy_dict(toy_store, container, promote={"min_rate": 2, "window": "5s"},
                         demote={"max_rate": 0.5, "window": "5s"}, cooldown="5s",
                         **hot_extras(kind))
    w = World(root, runtime, kind, scope, policy, log_dir)
    port = free_port()
    router = ServerProcess(
        tierserve_command("router", "--db-url", w.db_url, "--cold-url", cold_pool,
                          "--port", str(port), "--grpc-port", str(free_port()),
                          "--flush-interval", "0.2", "--poll-interval", "0.2"),
        ready_url=f"http://127.0.0.1:{port}/healthz", log_path=log_dir / f"router-{scope}.log")
    router.wait_ready(timeout=60)
    w.start_orchestrator()
    try:
        yield w, f"http://127.0.0.1:{port}"
    finally:
        router.stop()
        w.close()


def test_busy_model_is_promoted_with_no_failed_request(stack: tuple[World, str]) -> None:
    w, router = stack
    traffic = Traffic(router, "alpha")
    try:
        wait_for("alpha routed hot", lambda: w.hot_endpoint("alpha"), timeout=400)
        wait_for("router serving alpha hot", lambda: traffic.last_pool == "hot", timeout=30)
        count_at_switch = sum(traffic.pools.values())
        wait_for("more hot answers", lambda: sum(traffic.pools.values()) > count_at_switch + 20)
    finally:
        traffic.stop()
    assert traffic.failures == []
    assert traffic.pools["cold"] > 0 and traffic.pools["hot"] > 0
    assert len(w.instances("alpha")) == 1
    # The placement carries the hot server's gRPC address, and TF Serving's gRPC API answers
    # there (what the router's gRPC front forwards to).
    [inst] = w.instances("alpha")
    [placement] = [p for p in queries.list_placements(w.engine) if p.model == "alpha"]
    assert placement.grpc_endpoint is not None and placement.grpc_endpoint == inst.grpc
    assert _grpc_predict(placement.grpc_endpoint, "alpha", XS) == expected(MODELS["alpha"],
                                                                          0.0, XS)


def _grpc_predict(address: str, model: str, xs: list[float]) -> list[float]:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(xs, dtype=tf.float32))
    with grpc.insecure_channel(address) as channel:
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 60)
    return list(answer.outputs["y"].float_val)


def test_killed_hot_instance_requests_keep_succeeding(stack: tuple[World, str]) -> None:
    w, router = stack
    traffic = Traffic(router, "alpha")
    try:
        wait_for("router serving alpha hot", lambda: traffic.last_pool == "hot", timeout=30)
        (old,) = w.instances("alpha")
        events_before = len(w.events("alpha"))
        w.runtime.kill(old)  # type: ignore[attr-defined]
        wait_for("served cold while down", lambda: traffic.last_pool == "cold", timeout=30)
        wait_for("a new instance routed hot",
                 lambda: ((e := w.hot_endpoint("alpha")) and e != old.endpoint) or None,
                 timeout=400)
        wait_for("router serving alpha hot again", lambda: traffic.last_pool == "hot",
                 timeout=30)
    finally:
        traffic.stop()
    # Requests the dead instance had accepted are lost mid-answer (with Docker its port proxy
    # keeps accepting until the engine tears it down); the router sends those to the cold pool
    # too (base/forwarding.py), so not one request fails.
    assert traffic.failures == []
    (new,) = w.instances("alpha")
    assert new.id != old.id and new.running
    if w.runtime_flag == "swarm":  # Swarm restarted the task: the same service, no new one
        service = old.id.split("/")[0]
        assert new.id.startswith(f"{service}/")
        assert "restart" not in [a for a, _ in w.events("alpha")[events_before:]]


def test_restarted_orchestrator_adopts_with_no_failed_request(
        stack: tuple[World, str]) -> None:
    w, router = stack
    traffic = Traffic(router, "alpha")
    try:
        wait_for("router serving alpha hot", lambda: traffic.last_pool == "hot", timeout=400)
        (before,) = w.instances("alpha")
        events_before = len(w.events("alpha"))
        w.stop_orchestrator()
        (still,) = w.instances("alpha")  # the instance outlives the orchestrator
        w.start_orchestrator()
        wait_for("adopted as serving", lambda: [i for i in w.status()["instances"]
                                                if i["state"] == "serving"], timeout=60)
        served = sum(traffic.pools.values())
        wait_for("more answers", lambda: sum(traffic.pools.values()) > served + 20)
    finally:
        traffic.stop()
    assert traffic.failures == []
    (after,) = w.instances("alpha")
    assert still.id == before.id == after.id
    assert w.hot_endpoint("alpha") == before.endpoint
    new_actions = [a for a, _ in w.events("alpha")[events_before:]]
    assert "promote" not in new_actions and "restart" not in new_actions


def test_traffic_stops_demoted_after_cooldown_with_no_failed_request(
        stack: tuple[World, str]) -> None:
    w, router = stack
    # A trickle far below the demote rate, so every request during the switch is checked.
    trickle = Traffic(router, "alpha", pause=5.0, max_requests=40)
    try:
        wait_for("alpha routed cold", lambda: w.hot_endpoint("alpha") is None, timeout=150)
        wait_for("instance removed", lambda: w.instances("alpha") == [] or None, timeout=60)
        wait_for("router serving alpha cold", lambda: trickle.last_pool == "cold", timeout=30)
    finally:
        trickle.stop()
    assert trickle.failures == []
    demotes = [o for a, o in w.events("alpha") if a == "demote"]
    assert demotes and demotes[-1] == "drained"
