"""The compose deployment brought up for real on the local engine with `docker-compose`.

Images come from compose/build-images.sh (no registry); moto's S3 server stands in for MinIO.
Traffic goes to the router's published port: a cold model is answered by the cold pool, a
pinned model by the hot container the orchestrator starts through the Docker socket.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.queries import make_engine
from db.schema import SCHEMA_VERSION
from testkit import stores as testing
from tests.compose import prometheus
from tests.compose import stack as st
from tests.compose.test_monitoring_config import dashboard_queries
from tierserve import toy_models

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# One tag per checkout: runs from two worktrees on one engine never swap each other's image.
IMAGE = st.checkout_image_tag()
MODELS = {"cold-m": {1: 2.0}, "hot-m": {1: 3.0, 2: 5.0}, "other": {4: -1.5}}
HOT = "hot-m"
WAIT_S = 240.0


def policy_text(pinned: list[str]) -> str:
    text = (st.REPO / "compose" / "policy" / "policy.yaml").read_text()
    text = text.replace("image: tierserve:latest", f"image: {IMAGE}")
    text = text.replace("pinned: []", f"pinned: [{', '.join(pinned)}]")
    text = text.replace("interval: 5s", "interval: 2s")
    assert IMAGE in text and all(model in text for model in pinned)
    return text


def write_policy(stack: st.Stack, pinned: list[str]) -> None:
    """Save the policy as editors do: a new file renamed over the old one."""
    tmp = stack.policy_file.with_name(".policy.yaml.tmp")
    tmp.write_text(policy_text(pinned))
    tmp.rename(stack.policy_file)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, log_dir: Path,
          toy_template: Path) -> Iterator[st.Stack]:
    if st.compose_binary() is None:
        pytest.skip("docker-compose not installed (scripts/install-system-test-deps.sh)")
    reason = st.ensure_engine()
    if reason is not None:
        pytest.skip(f"no Docker engine: {reason}")
    try:
        st.build_image(IMAGE)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"compose/build-images.sh failed:\n{exc.stdout}\n{exc.stderr}")
    tmp = tmp_path_factory.mktemp("compose")
    (tmp / "policy").mkdir()
    st.remove_stale_stacks()
    stack = st.Stack(f"{st.PREFIX}{os.getpid()}", IMAGE, tmp / "policy", log_dir)
    write_policy(stack, [HOT])
    try:
        stack.up("minio-init")  # the store and its bucket first, then the models into it
        stack.wait_exit("minio-init")
        client = boto3.client("s3", endpoint_url=stack.url("s3"), region_name="us-east-1",
                              aws_access_key_id=st.S3_USER, aws_secret_access_key=st.S3_SECRET)
        store = testing.make_local_store(tmp / "store", MODELS)
        assert testing.upload_tree(client, st.BUCKET, "models", store) > 0
        stack.up("router", "pool", "orchestrator")
        stack.prometheus = prometheus.ensure_image(tmp)
        if stack.prometheus is not None:
            stack.env["PROMETHEUS_IMAGE"] = stack.prometheus
            stack.up("prometheus")
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def router(stack: st.Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("router"), timeout=60.0) as client:
        yield client


def predict(router: httpx.Client, model: str, xs: list[float]) -> httpx.Response:
    return router.post(f"/v1/models/{model}:predict", json={"instances": xs})


def test_cold_models_answer_through_the_router(router: httpx.Client) -> None:
    for model, versions in (("cold-m", MODELS["cold-m"]), ("other", MODELS["other"])):
        a = versions[max(versions)]
        response = predict(router, model, [1.0, 2.5])
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": toy_models.expected(a, 0.0, [1.0, 2.5])}
        assert response.headers["x-tierserve-pool"] == "cold"
    columnar = router.post("/v1/models/cold-m:predict", json={"inputs": {"x": [3.0]}})
    assert columnar.json() == {"outputs": [6.0]}


def wait_until_hot(router: httpx.Client, stack: st.Stack, model: str) -> None:
    """Send requests until the router answers `model` from a hot container; all must succeed."""
    versions = MODELS[model]
    expected = {"predictions": toy_models.expected(versions[max(versions)], 0.0, [2.0])}
    deadline = time.monotonic() + WAIT_S
    pool = ""
    while time.monotonic() < deadline:
        response = predict(router, model, [2.0])
        assert response.status_code == 200, response.text  # answered while it moves too
        assert response.json() == expected
        pool = response.headers["x-tierserve-pool"]
        if pool == "hot":
            return
        time.sleep(1.0)
    assert pool == "hot", f"{model} never routed hot; logs:\n{stack.logs()[-4000:]}"


def hot_container_facts(stack: st.Stack) -> list[list[str]]:
    """[running, model, network] of every hot container of this stack, by model."""
    facts = []
    for container in stack.hot_containers():
        facts.append(subprocess.run(
            ["docker", "inspect", "-f",
             '{{.State.Running}} {{index .Config.Labels "tierserve.model"}} '
             "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", container],
            capture_output=True, text=True, check=True).stdout.split())
    return sorted(facts, key=lambda fact: fact[1])


def test_pinned_model_is_served_by_a_hot_container(router: httpx.Client,
                                                    stack: st.Stack) -> None:
    wait_until_hot(router, stack, HOT)
    assert hot_container_facts(stack) == [["true", HOT, stack.network]]


def test_grpc_through_the_router_cold_and_hot(router: httpx.Client, stack: st.Stack) -> None:
    """TF Serving's gRPC API on the router's published gRPC port: a cold model through the
    pool's gRPC front, the pinned one from its hot container, reached by name on the stack's
    network at its gRPC port."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    wait_until_hot(router, stack, HOT)
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports['router_grpc']}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for model, pool in (("cold-m", "cold"), (HOT, "hot")):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0], dtype=tf.float32))
            answer, call = stub.Predict.with_call(request, timeout=120)
            versions = MODELS[model]
            assert list(answer.outputs["y"].float_val) == toy_models.expected(
                versions[max(versions)], 0.0, [2.0])
            assert answer.model_spec.version.value == max(versions)
            assert dict(call.trailing_metadata())["x-tierserve-pool"] == pool


def test_traffic_mix_all_answered(router: httpx.Client) -> None:
    expected = {m: toy_models.expected(v[max(v)], 0.0, [1.0]) for m, v in MODELS.items()}
    names = list(MODELS)
    for i in range(60):
        model = names[i % len(names)]
        response = predict(router, model, [1.0])
        assert response.status_code == 200, (model, response.text)
        assert response.json()["predictions"] == expected[model]


def test_tf_serving_errors(router: httpx.Client) -> None:
    missing = predict(router, "no-such-model", [1.0])
    assert missing.status_code == 404 and "error" in missing.json()
    bad = router.post("/v1/models/cold-m:predict", content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()
    status = router.get("/v1/models/cold-m")
    assert status.status_code == 200
    assert status.json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_metrics_for_prometheus(stack: st.Stack, router: httpx.Client) -> None:
    predict(router, "cold-m", [1.0])
    router_metrics = httpx.get(f"{stack.url('router')}/metrics").text
    assert 'tierserve_router_requests_total{code="200",model="cold-m",pool="cold"}' \
        in router_metrics
    pool_metrics = httpx.get(f"{stack.url('pool')}/metrics").text
    assert "tierserve_pool_loads_total" in pool_metrics
    orch = httpx.get(f"{stack.url('orchestrator')}/metrics", follow_redirects=True).text
    assert "tierserve_hot_models" in orch


def prometheus_query(stack: st.Stack, expr: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{stack.url('prometheus')}/api/v1/query", params={"query": expr}).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def test_prometheus_scrapes_every_part(stack: st.Stack, router: httpx.Client) -> None:
    if stack.prometheus is None:
        pytest.skip("no local Prometheus image (Debian's prometheus package out of reach)")
    wait_until_hot(router, stack, HOT)
    jobs = {"router", "cold-pool", "orchestrator", "hot-pool"}
    deadline = time.monotonic() + WAIT_S
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        predict(router, "cold-m", [1.0])
        try:
            targets = httpx.get(f"{stack.url('prometheus')}/api/v1/targets").json()
        except httpx.HTTPError:
            time.sleep(1.0)
            continue
        health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
        if all(health.get(job) == "up" for job in jobs):
            break
        time.sleep(1.0)
    assert all(health.get(job) == "up" for job in jobs), health
    hot = prometheus_query(stack, 'up{job="hot-pool"}')
    assert [r["metric"]["model"] for r in hot] == [HOT]  # type: ignore[index]
    assert prometheus_query(stack, 'tierserve_router_requests_total{model="cold-m"}')
    for _title, expr in dashboard_queries():  # every dashboard query runs on real data
        prometheus_query(stack, expr)


def test_policy_edit_is_picked_up_live(router: httpx.Client, stack: st.Stack) -> None:
    write_policy(stack, [HOT, "other"])
    wait_until_hot(router, stack, "other")
    assert hot_container_facts(stack) == [["true", HOT, stack.network],
                                          ["true", "other", stack.network]]


def test_the_image_runs_unprivileged_and_opens_postgresql_as_compose_does(
        stack: st.Stack, postgres_db: str) -> None:
    """The stack above runs on SQLite (no PostgreSQL image here); this runs the image's own
    driver against the tests' real PostgreSQL, connecting as compose does: the URL names no
    user or password, libpq reads PGUSER/PGPASSWORD from the environment (postgres.env).
    The server listens on 127.0.0.1 only, so this one container shares the host's network."""
    url = make_url(postgres_db)
    bare = url.set(username=None, password=None).render_as_string(hide_password=False)
    script = ("import os; from db import queries; "
              f"engine = queries.make_engine({bare!r}); "
              "print('uid', os.getuid(), 'routing version', queries.routing_version(engine))")
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "-e", f"PGUSER={url.username}",
         "-e", "PGPASSWORD=unused-under-trust", IMAGE, "python", "-c", script],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uid 10001 routing version 0" in result.stdout
    # The tables it created, read from here: a real schema in that db.
    engine = make_engine(postgres_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == \
            SCHEMA_VERSION
    engine.dispose()
