"""SQLAlchemy's errors become tierserve's at the edge of db/, so callers catch only those.

Like httpx's `map_httpcore_exceptions`: every public db function runs under
`db_errors`, and what leaves db/ is a `base.errors.TierserveError` chained to the
original (the traceback keeps the SQL and the driver's message):

- the database cannot be reached, is locked past the busy timeout, or dropped the
  connection (`OperationalError`, `InterfaceError`, `DisconnectionError`, the
  pool's `TimeoutError`) -> `Unavailable`: retry later, keep what you have;
- a concurrent writer won a race on a unique key (`IntegrityError`) -> `Unavailable`
  too: the same call succeeds when retried;
- anything else (bad SQL, a schema that does not match) -> `Internal`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from sqlalchemy import exc as sa

from base.errors import Internal, TierserveError, Unavailable

P = ParamSpec("P")
R = TypeVar("R")

_UNAVAILABLE = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError)


def _reason(exc: sa.SQLAlchemyError) -> str:
    # The driver's own message, without the SQL statement and parameters SQLAlchemy adds.
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def to_tierserve(exc: sa.SQLAlchemyError) -> TierserveError:
    """The tierserve error for one SQLAlchemy error (pure)."""
    if isinstance(exc, sa.IntegrityError):
        return Unavailable(f"db: conflicting concurrent write, retry: {_reason(exc)}")
    if isinstance(exc, _UNAVAILABLE):
        return Unavailable(f"db unavailable: {_reason(exc)}")
    return Internal(f"db error: {_reason(exc)}")


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except sa.SQLAlchemyError as exc:
        raise to_tierserve(exc) from exc


def db_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for the public db functions: SQLAlchemy errors leave as tierserve's."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mapped_errors():
            return func(*args, **kwargs)

    return wrapper
