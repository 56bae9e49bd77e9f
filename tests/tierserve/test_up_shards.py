"""`tierserve up --cold-shards 2`: two cold pools registered in the db as shards; every model
is served by, and cached on, the shard rendezvous hashing gives it; a stopped shard's models
go to the other; Ctrl-C leaves both rows marked stopped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from base.procs import free_port
from db import queries
from router.sharding import owner
from tests.tierserve.test_up import start_up
from tierserve import toy_models
from tierserve.up import EXAMPLE_MODELS

SHARDS = ["cold-0", "cold-1"]


def wait_for(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def loaded(client: httpx.Client, pool_url: str) -> set[str]:
    listing = client.get(f"{pool_url}/admin/models").json()
    return {m["model"] for m in listing["models"] if m["loaded"]}


def test_up_with_two_cold_shards_serves_each_model_from_its_shard(
        tmp_path: Path, toy_template: Path) -> None:
    var = tmp_path / "var"
    port, pool_port = free_port(), free_port()
    while free_port() == pool_port + 1:  # the second shard takes the next port
        pass
    # One model server per shard: the machine has 2 cores.
    env = {**os.environ, "TIERSERVE_POOL_MODEL_SERVERS": "1"}
    proc, lines = start_up(tmp_path, "--var", str(var), "--port", str(port),
                           "--cold-shards", "2", env=env)
    router = f"http://127.0.0.1:{port}"
    pools: dict[str, str] = {}
    engine = queries.make_engine(f"sqlite:///{(var / 'tierserve.db').resolve()}")
    try:
        console = "".join(lines)
        assert "starting 2 cold shards" in console, console
        for name in SHARDS:
            assert f"cold shard {name} ready" in console, console
        with httpx.Client(timeout=60) as client:
            wait_for("the router to see both shards",
                     lambda: client.get(f"{router}/healthz").json()["cold_shards"] == SHARDS)
            rows = {s.name: s for s in queries.list_shards(engine)}
            assert sorted(rows) == SHARDS and all(s.healthy for s in rows.values())
            pools = {name: rows[name].url for name in SHARDS}
            for name, url in pools.items():
                assert f"cold shard {name}:" in console and url in console, console
            owners = {m: owner(m, SHARDS) for m in EXAMPLE_MODELS}
            for model, versions in EXAMPLE_MODELS.items():
                answer = client.post(f"{router}/v1/models/{model}:predict",
                                     json={"instances": [1.0, 2.0]})
                assert answer.status_code == 200, answer.text
                a = versions[max(versions)]
                assert answer.json() == {"predictions": toy_models.expected(a, 0.0, [1.0, 2.0])}
                assert answer.headers["x-tierserve-pool"] == "cold"
            # Each model was loaded by its own shard, and only there.
            for name, url in pools.items():
                assert loaded(client, url) == {m for m, o in owners.items() if o == name}
            routing = client.get(f"{router}/admin/routing").json()
            assert [(s["name"], s["live"]) for s in routing["cold_shards"]] == \
                [(n, True) for n in SHARDS]
            # The dashboard's cold cache is both shards', each model on its own.
            cache = client.get(f"{router}/ui/api/overview").json()["cold_cache"]
            assert cache["shards"] == SHARDS and cache["shard_errors"] == {}
            assert {m["model"]: m["shard"] for m in cache["models"] if m["loaded"]} == owners
            assert cache["usage"]["memory_models"] == len(EXAMPLE_MODELS)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    # A clean stop marks each shard stopped at once (routers need not wait for staleness).
    assert [(s.name, s.healthy) for s in queries.list_shards(engine)] == \
        [(n, False) for n in SHARDS]
    engine.dispose()


def test_shard_flags_are_checked_before_anything_starts(tmp_path: Path) -> None:
    import subprocess

    from base.procs import tierserve_command

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(tierserve_command(*args), capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)

    no_db = run("pool", "--store", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                "--shard-name", "cold-0")
    assert no_db.returncode == 2 and "--shard-name needs --db-url" in no_db.stderr
    bad = run("pool", "--store", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
              "--shard-name", "../x", "--db-url", f"sqlite:///{tmp_path / 'd.db'}")
    assert bad.returncode == 2 and "invalid --shard-name" in bad.stderr
    zero = run("up", "--var", str(tmp_path / "var"), "--cold-shards", "0")
    assert zero.returncode == 2 and "--cold-shards must be at least 1" in zero.stderr
