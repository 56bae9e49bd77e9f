"""An open-loop load generator: each request leaves at its scheduled time, whatever the answers do.

Closed-loop clients (N workers, each waiting for its answer) slow down with
the server and so hide its queue. Here every request of the trace is sent at
`start + at_s` by one scheduler on one shared client, and its latency is
counted from that scheduled time, so time spent queued anywhere (the server,
the client's connection pool, a late scheduler) shows. The run is bounded by
the trace and by a per-request timeout: it stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from base import http1
from testkit.trace import Planned

BODY = b'{"instances": [2.0]}'
JSON = ((b"content-type", b"application/json"),)


@dataclass(frozen=True)
class Outcome:
    index: int  # position in the trace
    latency_s: float  # from the scheduled send time to the whole answer
    status: int  # HTTP status; 0 when no answer came (connection error, timeout)
    ok: bool  # 200 and the expected prediction
    pool: str = ""  # X-Tierserve-Pool: hot / cold, when the server says
    cache: str = ""  # X-Tierserve-Cache: hit / miss, when the server says
    error: str = ""


@dataclass(frozen=True)
class RunResult:
    outcomes: list[Outcome]
    sent: int
    max_lag_s: float  # the latest the scheduler sent a request past its time
    wall_s: float
    client_cpu_s: float  # this process's CPU during the run (the generator's own cost)


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"the generator only sends to 127.0.0.1, not {host!r}")


Expect = Callable[[str], list[float]]


async def _one(client: http1.Client, base_url: str, index: int, req: Planned, due: float,
               expect: Expect, loop: asyncio.AbstractEventLoop) -> Outcome:
    try:
        answer = await client.request("POST", base_url, f"/v1/models/{req.model}:predict",
                                      BODY, JSON)
    except (http1.HttpFailure, OSError) as exc:
        return Outcome(index, loop.time() - due, 0, False, error=type(exc).__name__)
    latency = loop.time() - due
    headers = dict(answer.headers)
    pool = headers.get(b"x-tierserve-pool", b"").decode("latin-1")
    cache = headers.get(b"x-tierserve-cache", b"").decode("latin-1")
    if answer.status != 200:
        return Outcome(index, latency, answer.status, False, pool, cache,
                       answer.body[:120].decode(errors="replace"))
    try:
        right = json.loads(answer.body).get("predictions") == expect(req.model)
    except (ValueError, AttributeError):
        right = False
    return Outcome(index, latency, 200, right, pool, cache, "" if right else "wrong answer")


async def open_loop(url: str, requests: Sequence[Planned], expect: Expect,
                    timeout_s: float = 30.0, max_connections: int = 256) -> RunResult:
    """Send `requests` to `url` on schedule; one Outcome per request, in trace order."""
    check_loopback(url)
    loop = asyncio.get_running_loop()
    # The router's own client (base.http1): a fraction of httpx's CPU per request, which
    # matters when the generator shares the two cores it measures.
    client = http1.Client(connect_timeout=timeout_s, request_timeout=timeout_s,
                          max_connections_per_backend=max_connections, keepalive_expiry=2.0)
    base_url = url.rstrip("/")
    tasks: list[asyncio.Task[Outcome]] = []
    max_lag = 0.0
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        start = loop.time() + 0.05
        for index, req in enumerate(requests):
            due = start + req.at_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, loop.time() - due)
            tasks.append(asyncio.create_task(
                _one(client, base_url, index, req, due, expect, loop)))
        # Every request is bounded by its timeout; this only guards against a bug.
        done, pending = await asyncio.wait(tasks, timeout=timeout_s + 10) if tasks \
            else (set(), set())
        for task in pending:
            task.cancel()
    finally:
        await client.aclose()
    outcomes = [t.result() if t in done and t.exception() is None
                else Outcome(i, timeout_s, 0, False, error="not finished")
                for i, t in enumerate(tasks)]
    return RunResult(outcomes, len(tasks), max_lag, time.monotonic() - wall0,
                     time.process_time() - cpu0)
