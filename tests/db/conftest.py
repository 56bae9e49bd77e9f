"""A real PostgreSQL server for the db tests, when its programs are installed.

initdb and postgres refuse to run as root, so under root the cluster belongs to
`nobody`. Each test gets a database of its own.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from base.procs import free_port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


def _as_owner(uid: int | None, gid: int | None) -> Callable[[], None] | None:
    if uid is None or gid is None:
        return None

    def demote() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return demote


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """`postgresql+psycopg://...` of a throwaway server on 127.0.0.1.

    Skips only when the PostgreSQL server programs (a system package) are absent; psycopg is
    in the `test` extra, so a missing psycopg fails the run.
    """
    import psycopg  # noqa: F401

    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if initdb is None or postgres is None:
        pytest.skip("PostgreSQL server programs are not installed")
    uid = gid = None
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    root = Path(tempfile.mkdtemp(prefix="tierserve-pg-"))
    data = root / "data"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, preexec_fn=_as_owner(uid, gid))
    port = free_port()
    proc = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), "-k", str(root),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_as_owner(uid, gid), start_new_session=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        _wait_for_postgres(url)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # "smart" shutdown; then make sure
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_postgres(url: str, timeout: float = 30.0) -> None:
    import time

    from sqlalchemy import create_engine, text

    deadline = time.monotonic() + timeout
    engine = create_engine(url)
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


_db_numbers = itertools.count()


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """A fresh, empty database on the session's server."""
    from sqlalchemy import create_engine, text

    name = f"t{os.getpid()}_{next(_db_numbers)}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"
