"""CPU seconds and peak RSS of every process of a set-up, read from /proc (Linux).

A set-up is a few root processes (pool, router, orchestrator) and whatever
they start (the pool's model server, hot model servers that come and go). A
sampler thread walks their process trees every interval, so a hot server that
is started and stopped within a run is still counted up to its last sample.
Parsing is pure; the thread only reads /proc.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) from the text of /proc/PID/stat."""
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def parse_hwm_mb(status: str) -> float:
    """VmHWM (peak resident set) in MB from /proc/PID/status; 0 for a zombie."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def role_of(argv: Sequence[str], parent_role: str | None) -> str:
    """A readable name for a process of ours from its command line."""
    if "tierserve.cli" in argv:
        rest = list(argv[argv.index("tierserve.cli") + 1:])
        command = rest[0] if rest else "tierserve"
        if command == "model-server":
            for arg in rest:
                if arg.startswith("--model_name="):
                    return f"hot:{arg.split('=', 1)[1]}"
            if "--model_name" in rest and rest.index("--model_name") + 1 < len(rest):
                return f"hot:{rest[rest.index('--model_name') + 1]}"
            return f"{parent_role} model-server" if parent_role else "model-server"
        return command
    if not argv:
        return ""  # a zombie (or gone): nothing to tell it by
    name = Path(argv[0]).name
    return f"{parent_role} {name}" if parent_role else name


@dataclass
class Seen:
    role: str
    cpu_s: float
    hwm_mb: float


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def _details(pid: int) -> tuple[float, list[str]]:
    """Peak RSS and argv; read only for the processes of the tree (there may be hundreds)."""
    try:
        hwm = parse_hwm_mb(Path(f"/proc/{pid}/status").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return 0.0, []
    return hwm, [a for a in argv if a]


def tree(roots: Mapping[str, int]) -> dict[int, Seen]:
    """Every live process under the roots (roots included), with its role."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (read := _stat(int(entry))) is not None:
            stats[int(entry)] = read
    out: dict[int, Seen] = {}
    frontier = {pid: role for role, pid in roots.items() if pid in stats}
    while frontier:
        nxt: dict[int, str] = {}
        for pid, role in frontier.items():
            out[pid] = Seen(role, stats[pid][1], _details(pid)[0])
        for child, (parent, _) in stats.items():
            if parent in frontier and child not in out:
                nxt[child] = role_of(_details(child)[1], frontier[parent]) or "?"
        frontier = nxt
    return out


class Sampler:
    """Samples process trees in a thread; `window()` gives CPU and peak RSS per role."""

    def __init__(self, roots: Mapping[str, int], interval_s: float = 0.5) -> None:
        self.roots = dict(roots)
        self.interval_s = interval_s
        self.seen: dict[int, Seen] = {}
        self._base: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        now = tree(self.roots)
        with self._lock:
            for pid, seen in now.items():
                old = self.seen.get(pid)
                if old is not None:
                    seen.hwm_mb = max(seen.hwm_mb, old.hwm_mb)
                    if seen.role == "?":  # exited, not yet reaped: it keeps its name
                        seen.role = old.role
                self.seen[pid] = seen

    def seen_roles(self) -> set[str]:
        with self._lock:
            return {s.role for s in self.seen.values()}

    def start(self) -> None:
        """Begin a window: CPU counts from now."""
        self.sample()
        with self._lock:
            self._base = {pid: s.cpu_s for pid, s in self.seen.items()}
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> dict[str, tuple[float, float]]:
        """End the window: {role: (CPU seconds in the window, peak RSS MB so far)}."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        out: dict[str, tuple[float, float]] = {}
        with self._lock:
            for pid, seen in self.seen.items():
                cpu = seen.cpu_s - self._base.get(pid, 0.0)
                old_cpu, old_hwm = out.get(seen.role, (0.0, 0.0))
                out[seen.role] = (old_cpu + cpu, max(old_hwm, seen.hwm_mb))
        return out
