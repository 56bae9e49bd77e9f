"""TensorFlow's thread pools sized to the CPUs a model server really gets: the pure rules, then
real servers that report what TensorFlow was set to."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args
from pools.model_server.threads import (
    available_cpus,
    cgroup_cpu_quota,
    parse_cfs,
    parse_cpu_max,
    pool_sizes,
)

POOLS = re.compile(r"TensorFlow thread pools: intra_op=(\d+) inter_op=(\d+) \(([\d.]+) CPUs")


def test_pool_sizes_follow_the_granted_cpus() -> None:
    assert pool_sizes(0.25) == (1, 2)
    assert pool_sizes(1.0) == (1, 2)
    assert pool_sizes(1.5) == (2, 2)
    assert pool_sizes(4) == (4, 4)
    assert pool_sizes(1.0000001) == (1, 2)  # float noise from a quota is not one more CPU


def test_cgroup_quota_formats() -> None:
    assert parse_cpu_max("max 100000\n") is None
    assert parse_cpu_max("150000 100000\n") == 1.5
    assert parse_cfs("-1\n", "100000\n") is None
    assert parse_cfs("50000\n", "100000\n") == 0.5


def test_cgroup_quota_read_from_a_v2_or_v1_tree(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 2.0
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == 1.0
    assert cgroup_cpu_quota(tmp_path / "none") is None


def reported_pools(tmp_path: Path, *flags: str, cpus: set[int] | None = None) -> tuple:
    """Start an empty model server (pinned to `cpus`), return what it reports TF uses."""
    rest = free_port()
    cmd = tierserve_command("model-server", *model_server_args(
        port=free_port(), rest_api_port=rest, extra=flags))
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *cmd]
    log = tmp_path / f"ms-{rest}.log"
    with ServerProcess(cmd, f"http://127.0.0.1:{rest}/v1/models/none", log_path=log) as proc:
        proc.wait_ready(timeout=180, expect=(404,))
        match = POOLS.search(log.read_text())
        assert match, proc.log_tail()
        return int(match[1]), int(match[2]), float(match[3])


@pytest.mark.slow
def test_explicit_flags_are_what_tensorflow_uses(tmp_path: Path) -> None:
    intra, inter, _ = reported_pools(tmp_path, "--tensorflow_intra_op_parallelism=1",
                                     "--tensorflow_inter_op_parallelism=3")
    assert (intra, inter) == (1, 3)


@pytest.mark.slow
def test_auto_sizes_to_the_cpu_affinity(tmp_path: Path) -> None:
    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        pytest.skip("needs two CPUs to tell one from all")
    assert reported_pools(tmp_path, cpus={min(mine)}) == (1, 2, 1.0)
    # Unpinned: what this process may use too (the same cgroup).
    assert reported_pools(tmp_path)[:2] == pool_sizes(available_cpus())
