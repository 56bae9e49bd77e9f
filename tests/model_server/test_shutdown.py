"""SIGTERM: stop accepting, finish in-flight requests, exit 0."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx

from tests.model_server.helpers import metric, start_model_server, wait_for
from tierserve import toy_models

SIZE = 150_000


def test_sigterm_lets_in_flight_requests_finish_and_exits_0(
        log_dir: Path, tmp_path: Path, toy_template: Path) -> None:
    toy_models.write_model(tmp_path, "m", {1: 2.0})
    server = start_model_server(log_dir, "--model_name", "m", "--model_base_path",
                                str(tmp_path / "m"), name="ms-term")
    # A large request keeps the server busy for a while (decode, run, encode).
    body = {"instances": [float(i % 100) for i in range(SIZE)]}
    results: list[httpx.Response | Exception] = []
    started = threading.Event()

    def call() -> None:
        try:
            with httpx.Client(timeout=60) as client:
                started.set()
                results.append(client.post(f"{server.rest}/v1/models/m:predict", json=body))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    try:
        started.wait()
        wait_for(lambda: metric(server, "tierserve_model_server_requests_in_flight",
                                'api="rest"') >= 1 or bool(results), what="predict in flight")
        assert not results, "the predict finished before the signal: make it bigger"
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.proc.proc.wait(60) == 0
    finally:
        thread.join(60)
        server.stop()
    (result,) = results
    assert isinstance(result, httpx.Response) and result.status_code == 200
    predictions = result.json()["predictions"]
    assert len(predictions) == SIZE and predictions[:3] == [0.0, 2.0, 4.0]
