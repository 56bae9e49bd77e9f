"""`tierserve orchestrator` as a user runs it, the process runtime's state files, and
scripts/ensure-dockerd.sh."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from base.procs import niceness, tierserve_command
from db import queries
from db.queries import make_engine
from orchestrator.process_runtime import ProcessRuntime
from orchestrator.runtime import InstanceSpec
from policies.schema import ContainerSettings

from .conftest import REPO
from .realworld import policy_dict, wait_for


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierserve_command("orchestrator", *args), capture_output=True,
                          text=True, timeout=timeout)


def test_once_with_a_bad_policy_exits_1_and_records_the_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("store: /m\nhot: {max_models: x}\n")
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = run_cli("--policy", str(policy), "--db-url", db_url, "--runtime", "process",
                     "--state-dir", str(tmp_path / "state"), "--once")
    assert result.returncode == 1
    assert "no valid policy" in result.stdout
    (event,) = queries.list_events(make_engine(db_url))
    assert event.action == "policy_reload" and event.outcome.startswith("rejected: hot.max")


def test_once_applies_policy_experiments_and_pins(tmp_path: Path) -> None:
    policy = policy_dict(tmp_path / "store", {})
    policy["hot"]["pinned"] = []
    policy["experiments"] = [{"name": "rec", "variants": [{"model": "a", "weight": 100}]}]
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = run_cli("--policy", str(tmp_path / "policy.yaml"), "--db-url", db_url,
                     "--runtime", "process", "--state-dir", str(tmp_path / "state"), "--once")
    assert result.returncode == 0, result.stderr
    assert queries.list_experiments(make_engine(db_url))[0]["name"] == "rec"


def test_process_runtime_adopts_and_stops_via_state_files(tmp_path: Path,
                                                          toy_store: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "processes", "s1")
    spec = InstanceSpec("alpha", str(toy_store), ContainerSettings(), "h1", 42.0)
    inst = runtime.start(spec)
    try:
        state = json.loads((tmp_path / "processes" / "s1" / "alpha.json").read_text())
        assert state["pid"] == int(inst.id.removeprefix("pid:"))
        # A second runtime object (a restarted orchestrator) sees it running, not its child.
        other = ProcessRuntime(tmp_path / "processes", "s1")
        (seen,) = other.list_instances()
        assert seen.running and seen.hot_since == 42.0 and seen.endpoint == inst.endpoint
        with pytest.raises(Exception, match="already has a server"):
            other.start(spec)
        assert ProcessRuntime(tmp_path / "processes", "s2").list_instances() == []
        # The CLI routes every instance of the scope cold and stops it.
        db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        engine = make_engine(db_url)
        queries.set_placement(engine, "alpha", "hot", inst.endpoint)
        result = run_cli("--runtime", "process", "--scope", "s1", "--state-dir",
                         str(tmp_path), "--db-url", db_url, "--stop-instances")
        assert result.returncode == 0, result.stderr
        assert "stopped alpha" in result.stdout
        assert queries.list_placements(engine) == []
        assert queries.list_events(engine)[0].action == "stop"
        wait_for("process gone", lambda: not runtime.list_instances() or None, timeout=30)
    finally:
        for i in runtime.list_instances():
            runtime.stop(i, timeout=2)


def test_hot_process_runs_at_the_policy_nice_with_threads_for_its_cpus(
        tmp_path: Path, toy_store: Path) -> None:
    runtime = ProcessRuntime(tmp_path, "nice")
    settings = ContainerSettings(nice=3, cpus=1)
    inst = runtime.start(InstanceSpec("alpha", str(toy_store), settings, "h", 1.0))
    try:
        pid = int(inst.id.removeprefix("pid:"))
        assert niceness(pid) == os.nice(0) + 3  # read from /proc/<pid>/stat
        log = tmp_path / "nice" / "alpha.log"
        line = wait_for("thread pools logged", lambda: next(
            (x for x in log.read_text().splitlines() if "TensorFlow thread pools" in x), None),
            timeout=180)
        assert "intra_op=1 inter_op=2" in line  # sized to the 1 CPU granted, not the machine
    finally:
        runtime.stop(inst, timeout=5)


def test_stale_state_file_with_a_reused_pid_is_not_adopted(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path, "s")
    # Our own pid is alive but is not a model server for "ghost": never treated as running.
    (tmp_path / "s" / "ghost.json").write_text(json.dumps({
        "model": "ghost", "pid": __import__("os").getpid(), "rest_port": 1, "grpc_port": 2,
        "hot_since": time.time(), "policy_hash": "x", "started_at": 0.0, "log": ""}))
    (inst,) = runtime.list_instances()
    assert not inst.running
    runtime.stop(inst)  # removes the state file, signals nothing
    assert runtime.list_instances() == []


def test_ensure_dockerd_is_idempotent(docker_engine: None) -> None:
    for _ in range(2):
        result = subprocess.run(["bash", str(REPO / "scripts" / "ensure-dockerd.sh")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_testimage_module_builds_the_image(docker_engine: None) -> None:
    result = subprocess.run([sys.executable, "-m", "testkit.docker_image"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tierserve-test:local")


def test_swarm_named_by_the_policy_is_the_runtime_unless_the_flag_says_otherwise(
        tmp_path: Path) -> None:
    from orchestrator.cli import add_arguments, policy_runtime

    policy = tmp_path / "policy.yaml"
    data = policy_dict(tmp_path, {"image": "unused"})
    policy.write_text(yaml.safe_dump({**data, "runtime": "swarm"}))
    assert policy_runtime(policy) == "swarm"
    policy.write_text("hot: nonsense\n")  # the loop reports the bad file; start on auto
    assert policy_runtime(policy) == "auto"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = os.environ.pop("TIERSERVE_RUNTIME", None)
    try:
        assert parser.parse_args([]).runtime is None  # then the policy's
        assert parser.parse_args(["--runtime", "swarm"]).runtime == "swarm"
    finally:
        if env is not None:
            os.environ["TIERSERVE_RUNTIME"] = env
