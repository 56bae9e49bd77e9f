"""The db under test: a real SQLite file, and (when installed) a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from db.queries import Engine, make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same queries against SQLite and (when installed) a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sub' / 't.db'}"
    else:
        url = request.getfixturevalue("postgres_db")
    engine = make_engine(url)
    yield engine
    engine.dispose()
