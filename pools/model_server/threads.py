"""How many TensorFlow threads a model server gets: as many as the CPUs it really has.

TensorFlow sizes its pools to the machine's cores by default, so several servers on two
cores each run two or more threads per op and oversubscribe the CPUs. A server limited by a
CPU affinity or a cgroup quota (a container's `cpus`) should size its pools to that instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def pool_sizes(cpus: float) -> tuple[int, int]:
    """(intra-op, inter-op) threads for a server granted `cpus` CPUs: one intra-op thread per
    CPU (a fraction counts as one), inter-op at least 2 (with one, an op that waits on
    another can hang)."""
    intra = max(1, math.ceil(round(cpus, 6)))
    return intra, max(2, intra)


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("max 100000" or "150000 100000") -> CPUs, None when unlimited."""
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def parse_cfs(quota_us: str, period_us: str) -> float | None:
    """cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` -> CPUs, None when unlimited (-1)."""
    quota = int(quota_us)
    return None if quota <= 0 else quota / int(period_us)


def _own_cgroup_dirs(root: Path) -> list[Path]:
    """Where this process's cpu controller files may be: its own cgroup (from
    /proc/self/cgroup), else the mount's root (a container sees its own cgroup there)."""
    dirs: list[Path] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":
            dirs.append(root / rel)
        elif "cpu" in controllers.split(","):
            dirs += [root / controllers / rel, root / "cpu" / rel, root / "cpu,cpuacct" / rel]
    return [*dirs, root, root / "cpu", root / "cpu,cpuacct"]


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup (v2 or v1), None when there is none."""
    for folder in _own_cgroup_dirs(root):
        try:
            if (folder / "cpu.max").exists():
                return parse_cpu_max((folder / "cpu.max").read_text())
            if (folder / "cpu.cfs_quota_us").exists():
                return parse_cfs((folder / "cpu.cfs_quota_us").read_text(),
                                 (folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
    return None


def available_cpus() -> float:
    """The CPUs this process may use: its affinity, capped by its cgroup's quota."""
    affinity = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota()
    return min(float(affinity), quota) if quota else float(affinity)
