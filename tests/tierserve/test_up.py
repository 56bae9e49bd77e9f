"""`tierserve up` as a user runs it: one command, answers through the router, Ctrl-C stops all."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from base.procs import free_port, tierserve_command
from tests.tierserve.proctree import alive, descendants
from tierserve import toy_models


def test_up_serves_and_stops_cleanly(tmp_path: Path, toy_template: Path) -> None:
    var = tmp_path / "var"
    port = free_port()
    proc = subprocess.Popen(
        tierserve_command("up", "--var", str(var), "--port", str(port),
                          "--pool-port", str(free_port()), "--status-port", str(free_port())),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    router = f"http://127.0.0.1:{port}"
    try:
        # The user's cue: the banner with the addresses, printed once every part answers.
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        else:
            raise AssertionError("".join(lines))
        with httpx.Client(base_url=router, timeout=60) as client:
            answer = client.post("/v1/models/example-b:predict", json={"instances": [1.0, 2.0]})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": toy_models.expected(4.0, 0.0, [1.0, 2.0])}
            assert answer.headers["x-tierserve-pool"] == "cold"
            page = client.get("/ui")  # served from the package, whatever the working folder
            assert page.status_code == 200 and "<title>tierserve</title>" in page.text
            missing = client.post("/v1/models/nope:predict", json={"instances": [1.0]})
            assert missing.status_code == 404 and "error" in missing.json()
        children = descendants(proc.pid)
        assert len(children) >= 4  # pool, its model server, router, orchestrator
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    assert f"{router}/ui" in "".join(lines)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]
    assert (var / "tierserve.db").exists() and (var / "policy.yaml").exists()


def test_pool_flags_pass_the_cold_model_servers_nice_only_when_set() -> None:
    from policies.loader import parse_policy
    from tierserve.stack import pool_flags

    text = "store: /m\nhot: {max_models: 1, promote: {min_rate: 2}, demote: {max_rate: 1}}\n"
    assert "--model-server-nice" not in pool_flags(parse_policy(text).policy)
    flags = pool_flags(parse_policy(text + "cold: {model_server_nice: 9}\n").policy)
    assert flags[flags.index("--model-server-nice") + 1] == "9"
