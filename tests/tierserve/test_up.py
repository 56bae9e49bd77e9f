"""`tierserve up` as a user runs it: one command, answers through the router, Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from base.procs import free_port, tierserve_command
from testkit import stores as testing
from tests.tierserve.proctree import alive, descendants
from tierserve import toy_models


def start_up(cwd: Path, *args: str, env: dict[str, str] | None = None
             ) -> tuple[subprocess.Popen[str], list[str]]:
    """`tierserve up ARGS` on free ports; returns once its banner is out, with the lines so far
    (the user's cue: printed once every part answers)."""
    proc = subprocess.Popen(
        tierserve_command("up", *args, "--grpc-port", str(free_port()),
                          "--pool-port", str(free_port()), "--pool-grpc-port", str(free_port()),
                          "--status-port", str(free_port())),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            return proc, lines
    proc.wait(timeout=30)
    raise AssertionError("".join(lines))


def test_up_serves_and_stops_cleanly(tmp_path: Path, toy_template: Path) -> None:
    var = tmp_path / "var"
    port = free_port()
    proc, lines = start_up(tmp_path, "--var", str(var), "--port", str(port))
    router = f"http://127.0.0.1:{port}"
    try:
        console = "".join(lines)
        # TensorFlow's native start-up lines went to the logs, one line per stage came here.
        for noise in ("oneDNN", "cuda", "absl", "I0000", "E0000"):
            assert noise.lower() not in console.lower(), console
        for stage in ("creating example models", "cold pool ready", "router ready",
                      "orchestrator ready", "tierserve is up"):
            assert stage in console, console
        assert (var / "logs" / "setup.log").exists()
        with httpx.Client(base_url=router, timeout=60) as client:
            answer = client.post("/v1/models/example-b:predict", json={"instances": [1.0, 2.0]})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": toy_models.expected(4.0, 0.0, [1.0, 2.0])}
            assert answer.headers["x-tierserve-pool"] == "cold"
            # The banner's hint names a model of this store, and it answers as printed.
            assert f"{router}/v1/models/example-a:predict" in console
            hinted = client.post("/v1/models/example-a:predict", json={"instances": [1.0, 2.0]})
            assert hinted.status_code == 200, hinted.text
            page = client.get("/ui")  # served from the package, whatever the working folder
            assert page.status_code == 200 and "<title>tierserve</title>" in page.text
            missing = client.post("/v1/models/nope:predict", json={"instances": [1.0]})
            assert missing.status_code == 404 and "error" in missing.json()
        # TF Serving's gRPC API at the address the banner prints, with TF Serving's stubs.
        [grpc_address] = [line.split()[-1] for line in lines if "(TF Serving gRPC)" in line]
        assert _grpc_predict(grpc_address, "example-b", [1.0, 2.0]) == \
            toy_models.expected(4.0, 0.0, [1.0, 2.0])
        children = descendants(proc.pid)
        assert len(children) >= 4  # pool, its model server, router, orchestrator
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    assert f"{router}/ui" in "".join(lines)
    router_log = (var / "logs" / "router.log").read_text()
    # uvicorn's access line shows the path as the client sent it (some httpx versions
    # percent-encode the ':' of ':predict', others do not), and its start-up line
    assert re.search(r'"POST /v1/models/example-b(:|%3A)predict HTTP/1.1" 200', router_log), \
        router_log
    assert "Uvicorn running on" in router_log
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]
    assert (var / "tierserve.db").exists() and (var / "policy.yaml").exists()


def _grpc_predict(address: str, model: str, xs: list[float]) -> list[float]:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(xs, dtype=tf.float32))
    with grpc.insecure_channel(address) as channel:
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 60)
    assert answer.model_spec.name == model
    return list(answer.outputs["y"].float_val)


def test_pool_flags_pass_the_cold_model_servers_nice_only_when_set() -> None:
    from policies.loader import parse_policy
    from tierserve.stack import pool_flags

    text = "store: /m\nhot: {max_models: 1, promote: {min_rate: 2}, demote: {max_rate: 1}}\n"
    assert "--model-server-nice" not in pool_flags(parse_policy(text).policy)
    flags = pool_flags(parse_policy(text + "cold: {model_server_nice: 9}\n").policy)
    assert flags[flags.index("--model-server-nice") + 1] == "9"


def test_up_on_an_s3_store_without_credentials_hints_what_to_set(
        tmp_path: Path, toy_template: Path, moto_s3: str, s3_bucket: str) -> None:
    """The reported first hour: an S3 policy, no credentials. The banner says what is wrong
    instead of a hint that fails, and a request answers 503 with what to set."""
    testing.upload_tree(testing.s3_client(moto_s3), s3_bucket, "prod",
                        toy_models.write_model(tmp_path / "src", "example-a", {1: 2.0}).parent)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"store: s3://{s3_bucket}/prod\ninterval: 2s\n"
                      "hot: {max_models: 1, promote: {min_rate: 50}, demote: {max_rate: 1}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=moto_s3, AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"))
    port = free_port()
    proc, lines = start_up(tmp_path, "--policy", str(policy), "--var", str(tmp_path / "var"),
                           "--port", str(port), env=env)
    try:
        console = "".join(lines)
        assert "Try: curl" not in console, console
        assert "cannot be read" in console and "AWS_ACCESS_KEY_ID" in console, console
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/example-a:predict",
                            json={"instances": [1.0]}, timeout=60)
        assert answer.status_code == 503, answer.text
        message = answer.json()["error"]
        assert "AWS_ACCESS_KEY_ID" in message and "AWS_ENDPOINT_URL" in message
        assert moto_s3 not in message and s3_bucket not in message
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=90)


def test_hint_fits_the_store() -> None:
    from tierserve.up_hint import hint

    url = "http://127.0.0.1:1"
    text = hint("/m", url, ["example-b", "example-a"], None)
    assert f"Try: curl -d '{{\"instances\": [1.0, 2.0]}}' {url}/v1/models/example-a:predict" \
        in text
    text = hint("s3://b/p", url, [f"m{i}" for i in range(8)], None)
    assert f"{url}/v1/models/m0:predict" in text and "and 3 more" in text
    text = hint("s3://b/p", url, [], None)
    assert "holds no models yet" in text and "Try: curl" not in text
    text = hint("s3://b/p", url, None, "the model store has no credentials: set X")
    assert "cannot be read" in text and "set X" in text and "Try: curl" not in text
