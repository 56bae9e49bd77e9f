"""db.queries is the one entry point: no other part imports db's inner modules or
SQLAlchemy (its errors would leak through the caller's `except` otherwise)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CALLERS = ("router", "orchestrator", "policies", "pools", "tierserve", "bench", "base")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_callers_import_only_db_queries() -> None:
    wrong = []
    for part in CALLERS:
        for path in sorted((REPO / part).rglob("*.py")):
            for name in _imports(path):
                top = name.split(".")[0]
                if top == "sqlalchemy" or (top == "db" and not name.startswith("db.queries")):
                    wrong.append(f"{path.relative_to(REPO)}: {name}")
    assert wrong == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("from db.counts import CountDelta\nfrom db import queries\n"
                      "import sqlalchemy.exc\n")
    assert _imports(sample) == ["db.counts.CountDelta", "db.queries", "sqlalchemy.exc"]
