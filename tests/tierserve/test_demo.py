"""`tierserve demo` end to end: every request answered right, the rising model promoted."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from base.procs import tierserve_command
from db.engine import make_engine
from db.events import list_events
from tests.tierserve.proctree import alive, cmdline, descendants
from tierserve.demo import Observer
from tierserve.demo_traffic import Picker, model_names, phase_at, phases


def test_traffic_plan_moves_the_star() -> None:
    picker = Picker(model_names(40))
    plan = phases(100.0)
    assert [p.name for p in plan][1] == "a rare model turns popular"
    counts = {phase.name: sum(picker.pick(phase) == picker.star for _ in range(2000))
              for phase in plan}
    assert counts[plan[1].name] > 500  # about 30 % of the traffic
    assert counts[plan[0].name] < 40 and counts[plan[2].name] < 40
    assert phase_at(plan, 0.0) is plan[0] and phase_at(plan, 99.0) is plan[2]
    assert picker.value("model-0003") == 4.0


def _listed(summary: str, label: str) -> list[str]:
    line = next(x for x in summary.splitlines() if x.strip().startswith(f"{label}:"))
    names = line.split(":", 1)[1].strip()
    return [] if names == "(none)" else names.split(", ")


# Long enough for the rising model's phase (30 % to 60 % of the run, 13.5 s) to outlast the
# policy's promotion: its rate crosses min_rate within ~4 s, and the promotion is recorded
# when the hot server is started, not when it answers.
DEMO_S = 45


def test_demo_runs_and_promotes_the_rising_model(tmp_path: Path, toy_template: Path) -> None:
    # No --plain: its output is a pipe, which alone must give plain lines, not one live frame.
    done = subprocess.run(
        tierserve_command("demo", "--models", "30", "--duration", str(DEMO_S), "--rate", "20",
                          "--var", str(tmp_path / "demo")),
        capture_output=True, text=True, timeout=400, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    summary = out[out.index("tierserve demo summary"):]
    star = Picker(model_names(30)).star
    assert " 0 failed, 0 wrong answers" in summary
    assert f"the rising model {star} was promoted: yes" in summary
    assert "oneDNN" not in out and "cuda" not in out.lower()  # in var/demo/logs/setup.log
    # Plain progress lines every few seconds, their counter going up with the run.
    progress = [line for line in out.splitlines() if " req/s, sent " in line]
    seconds = [int(line.split("/")[0]) for line in progress]
    assert 3 <= len(progress) <= DEMO_S // 5 + 2, out[-3000:]
    assert seconds == sorted(set(seconds)) and seconds[-1] >= DEMO_S - 10
    assert "tierserve demo —" not in out  # no rich frame
    # The summary agrees with the orchestrator's events in the db, each model once.
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'tierserve.db'}", create=False)
    events = list_events(engine, limit=10000)
    promoted = {e.model for e in events
                if e.action == "promote" and e.outcome.startswith("started")}
    demoted = {e.model for e in events
               if e.action == "demote" and e.outcome.startswith("routed cold")}
    listed_promoted, listed_demoted = _listed(summary, "promoted"), _listed(summary, "demoted")
    assert star in promoted
    assert sorted(listed_promoted) == sorted(promoted)
    assert sorted(listed_demoted) == sorted(demoted)


def test_summary_moves_count_events_by_action() -> None:
    from tierserve.demo_events import moves

    def event(i: int, model: str, action: str, outcome: str, ts: float = 100.0) -> dict:
        return {"id": i, "ts": ts + i, "model": model, "action": action, "outcome": outcome}

    events = [
        event(1, "old", "promote", "started abc; routed hot once AVAILABLE", ts=0.0),
        event(2, "m1", "promote", "started abc; routed hot once AVAILABLE"),
        event(3, "m1", "route_hot", "ok"),
        event(4, "m1", "route_hot", "ok"),  # after a restart: no second promotion
        event(5, "m2", "promote", "failed: no room"),
        event(6, "m1", "demote", "routed cold; stopping after 1s drain"),
        event(7, "m1", "demote", "stopped"),
        event(8, "m3", "promote", "started def; routed hot once AVAILABLE"),
        event(9, "m3", "demote", "routed cold"),
        event(10, "m1", "promote", "started ghi; routed hot once AVAILABLE"),
    ]
    promoted, demoted = moves(reversed(events), since=50.0)
    assert promoted == ["m1", "m3"]
    assert demoted == ["m1", "m3"]


def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path: Path,
                                                          toy_template: Path) -> None:
    proc = subprocess.Popen(
        tierserve_command("demo", "--models", "10", "--duration", "600", "--rate", "5",
                          "--plain", "--var", str(tmp_path / "demo")),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the demo prints the router's address once all parts answer
        lines.append(line)
        if "dashboard" in line:
            break
    else:
        raise AssertionError("".join(lines))

    def hot_servers() -> list[int]:
        return [pid for pid in descendants(proc.pid)
                if b"--model_name" in cmdline(pid)]

    # Stop only once a model has been promoted: its server must not outlive the demo either.
    deadline = time.monotonic() + 120
    while not hot_servers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hot_servers(), "no model was promoted"
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]


def test_the_summary_states_each_target_and_whether_it_was_met() -> None:
    from tierserve.demo import Tally, targets

    tally = Tally()
    tally.by_pool = {"hot": [0.01] * 99 + [0.2], "cold hit": [0.01] * 200,
                     "cold miss": [0.5] * 10}
    lines = "\n".join(targets(tally, ["m"], ["m"], "m"))
    assert "hot p99 200.0 ms (target <= 50 ms): NOT met" in lines
    assert "cold hit p99 10.0 ms (target <= 50 ms): met" in lines
    assert "cold miss p99 500.0 ms (target <= 1500 ms): met" in lines
    assert "failed 0 (target 0): met" in lines
    assert "promoted, then demoted: met" in lines
    tally.by_pool, tally.failed = {"cold": [0.01]}, 2
    lines = "\n".join(targets(tally, ["m"], [], "m"))
    assert "cold miss p99: not told apart" in lines and "hot p99: no answers" in lines
    assert "failed 2 (target 0): NOT met" in lines and "demoted: NOT met" in lines


async def test_the_live_view_sends_an_exported_admin_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A token exported for the admin API reaches the stack's router and pool (they inherit
    the environment), so the demo's own polls must carry it, or its view stays empty."""
    monkeypatch.setenv("TIERSERVE_ADMIN_TOKEN", "tok")
    seen: dict[str, str | None] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.headers.get("authorization")
        bodies = {"/admin/routing": {"placements": [{"model": "m", "pool": "hot"}]},
                  "/admin/events": {"events": []},
                  "/admin/models": {"totals": {"hits": 3, "misses": 1}}}
        return httpx.Response(200, json=bodies[request.url.path])

    stack = type("FakeStack", (), {"pool_url": "http://pool"})()
    observer = Observer(stack, since=0.0)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer),
                                 base_url="http://router") as client:
        await observer.poll(client)
    assert seen == {"/admin/routing": "Bearer tok", "/admin/events": "Bearer tok",
                    "/admin/models": "Bearer tok"}
    assert observer.hot == ["m"] and observer.hit_ratio == 0.75
