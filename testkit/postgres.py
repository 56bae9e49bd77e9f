"""A real, throwaway PostgreSQL server for tests, when its programs are installed.

initdb and postgres refuse to run as root, so under root the cluster belongs to
`nobody`. Each test gets a database of its own (`postgres_db`); `outage` makes one
database refuse every connection for a while, as a db that went away would.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
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

    Skips only when the PostgreSQL server programs are absent.
    """
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    import psycopg  # noqa: F401  (in the test extra: a missing driver fails, never skips)
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
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + timeout
    engine = create_engine(url)
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except OperationalError:  # not accepting connections yet
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


@contextlib.contextmanager
def outage(db_url: str) -> Iterator[None]:
    """The database of `db_url` refuses new connections and loses its open ones, until
    the block ends: what its clients see when the server goes away."""
    from sqlalchemy import create_engine, text

    server, name = db_url.rsplit("/", 1)
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name"), {"name": name})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
        admin.dispose()
