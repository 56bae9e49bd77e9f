"""`tierserve demo` end to end: every request answered right, the rising model promoted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tierserve.demo_traffic import Picker, model_names, phase_at, phases
from tierserve.procs import tierserve_command


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


def test_demo_runs_and_promotes_the_rising_model(tmp_path: Path, toy_template: Path) -> None:
    done = subprocess.run(
        tierserve_command("demo", "--models", "30", "--duration", "75", "--rate", "20",
                          "--plain", "--var", str(tmp_path / "demo")),
        capture_output=True, text=True, timeout=400, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    summary = out[out.index("tierserve demo summary"):]
    star = Picker(model_names(30)).star
    assert " 0 failed, 0 wrong answers" in summary
    assert f"the rising model {star} was promoted: yes" in summary
