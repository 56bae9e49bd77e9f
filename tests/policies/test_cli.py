"""`tierserve policy check FILE` as a user runs it: exit code and printed errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from base.procs import tierserve_command
from db.counts import RECENT_MINUTES
from db.schema import BUCKET_S

from .test_loader import EXAMPLE


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierserve_command("policy", "check", *args), capture_output=True,
                          text=True, timeout=60)


def test_check_accepts_the_example() -> None:
    result = run(str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_prints_each_error_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: /m\nhot:\n  max_models: -1\n  promote: {min_rate: 0}\n"
                   "  demote: {max_rate: 1}\n")
    result = run(str(bad))
    assert result.returncode == 1
    assert "hot.max_models: line 3:" in result.stderr
    assert "hot.promote.min_rate: line 4:" in result.stderr
    assert "2 error(s)" in result.stderr


def test_fields_lists_every_field_with_its_meaning() -> None:
    result = subprocess.run(tierserve_command("policy", "fields"), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "required" in lines["hot.promote.min_rate"]
    assert "default: 600.0" in lines["hot.cooldown"]
    assert "experiments[].variants[].weight" in lines
    assert all(len(line.split(maxsplit=2)) == 3 for line in lines.values()
               if not line.startswith("experiments")), "every policy field is documented"
    # Operators learn which windows are honoured: the resolution the db really stores.
    window = lines["hot.promote.window"]
    assert f"per {BUCKET_S} s for the last {RECENT_MINUTES} minutes" in window
    assert f"up to {RECENT_MINUTES}m is honoured to within {BUCKET_S} s" in window
    assert "admin API" in lines["hot.pinned"]
