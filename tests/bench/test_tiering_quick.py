"""`tierserve bench tiering --quick` end to end, as a user runs it: every set-up answers,
and the open-loop generator sent the whole trace to each."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from base.procs import tierserve_command
from testkit.trace import make_trace


def test_quick_mode_reports_every_setup(tmp_path: Path, toy_template: Path) -> None:
    report = tmp_path / "tiering.json"
    done = subprocess.run(
        # --quick, with each phase cut to a few seconds more (flags given win over its
        # defaults): every set-up, phase and figure is still there, on 30 requests a turn.
        tierserve_command("bench", "tiering", "--quick", "--duration", "3", "--warmup", "1",
                          "--isolation", "2", "--json", str(report),
                          "--workdir", str(tmp_path / "work")),
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    figures = json.loads(report.read_text())
    trace_len = figures["params"]["trace_len"]
    assert trace_len == len(make_trace(30, 10.0, 3.0, 7)) == 30
    main = {r["setup"]: r for r in figures["runs"] if r["phase"] == "main"}
    assert sorted(main) == ["a", "b", "c"]
    for setup, run in main.items():
        assert run["sent"] == run["planned"] == trace_len, setup
        assert run["groups"]["all"]["count"] == trace_len, setup
        assert run["groups"]["popular"]["count"] > 0 and run["groups"]["rest"]["count"] > 0
        assert run["cpu_s_per_1000"]["pool"] > 0 and run["peak_rss_mb"]["pool"] > 0
        assert any(role.endswith("model-server") for role in run["cpu_s_per_1000"]), setup
    assert {"router", "orchestrator"} <= set(main["c"]["cpu_s_per_1000"])
    for setup in "abc":
        phases = {r["phase"]: r for r in figures["runs"] if r["setup"] == setup}
        assert phases["alone"]["groups"]["popular"]["count"] > 0
        assert phases["churn"]["groups"]["rest"]["count"] > 0
    assert "main trace" in done.stdout and "isolation" in done.stdout
