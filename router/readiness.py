"""/readyz: can this router serve? The cold pool and the db, checked at most once a second.

Probes come from every load balancer and orchestrator, often many at once: the
answer is cached for `cache_s` and concurrent probes share one check, so a probe
storm costs one cold pool request and one tiny db query per second. The answer
names what is down, never an address; the details go to the log (on changes only).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from base.errors import TierserveError
from db import queries
from db.queries import Engine

log = logging.getLogger(__name__)

READY_CACHE_S = 1.0
CHECK_TIMEOUT_S = 2.0

# None when the dependency answers, else what went wrong (for the log).
Check = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class Verdict:
    down: tuple[str, ...] = ()  # names of the checks that failed

    @property
    def ready(self) -> bool:
        return not self.down

    def error(self) -> str:
        return "not ready: " + ", ".join(f"{name} unreachable" for name in self.down)


class Readiness:
    def __init__(self, checks: Mapping[str, Check], cache_s: float = READY_CACHE_S,
                 timeout_s: float = CHECK_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._checks = dict(checks)
        self._cache_s = cache_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._verdict = Verdict()
        self._checked_at = -math.inf
        self._running: asyncio.Future[Verdict] | None = None

    async def verdict(self) -> Verdict:
        if self._clock() - self._checked_at < self._cache_s:
            return self._verdict
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a probe that gives up must not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _check(self) -> Verdict:
        try:
            results = await asyncio.gather(
                *(asyncio.wait_for(check(), self._timeout_s) for check in self._checks.values()),
                return_exceptions=True)
            details: dict[str, str] = {}
            for name, result in zip(self._checks, results, strict=True):
                if isinstance(result, TimeoutError):
                    details[name] = f"no answer within {self._timeout_s} s"
                elif isinstance(result, BaseException):
                    details[name] = f"check failed: {result!r}"
                elif result is not None:
                    details[name] = result
            verdict = Verdict(tuple(details))
            if verdict != self._verdict:
                if details:
                    log.warning("not ready: %s",
                                "; ".join(f"{name}: {why}" for name, why in details.items()))
                else:
                    log.info("ready again")
            self._verdict, self._checked_at = verdict, self._clock()
            return verdict
        finally:
            self._running = None


def cold_pool_check(client: Callable[[], httpx.AsyncClient], cold_url: str,
                    timeout_s: float = CHECK_TIMEOUT_S) -> Check:
    """The cold pool answers HTTP: any status below 500 (a model server standing in for
    the pool has no /healthz and answers 404: still a server that serves)."""
    async def check() -> str | None:
        try:
            answer = await client().get(cold_url + "/healthz", timeout=timeout_s)
        except httpx.HTTPError as exc:
            return f"{cold_url}: {type(exc).__name__}: {exc}"
        return None if answer.status_code < 500 else f"{cold_url}/healthz: {answer.status_code}"
    return check


class DbCheck:
    """The routing version query, from a thread; never a second thread while one hangs
    (a blackholed db server could otherwise fill the default executor, one per second)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: asyncio.Future[int] | None = None

    async def __call__(self) -> str | None:
        if self._pending is None or self._pending.done():
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(None, queries.routing_version, self.engine)
            # Its error is read here, or by nobody after a timeout: never "never retrieved".
            self._pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            # Shielded: a timeout gives up waiting; the query's thread runs on regardless.
            await asyncio.shield(self._pending)
        except TierserveError as exc:
            return str(exc)
        return None
