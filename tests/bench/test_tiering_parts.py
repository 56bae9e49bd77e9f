"""The pure parts of `bench tiering`: trace, schedule, percentiles, capacity, /proc parsing;
and the open-loop generator against a small loopback server."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from testkit.latency import Group, auto_rates, capacity, groups, holds, percentile
from testkit.loadgen import Outcome, RunResult, open_loop
from testkit.procstat import Sampler, parse_hwm_mb, parse_stat, role_of
from testkit.trace import (
    MAX_REQUESTS,
    Planned,
    isolation_trace,
    make_trace,
    model_value,
    schedule,
)
from tierserve.demo_traffic import model_names, phase_at, phases


def test_the_trace_is_seeded_and_as_long_as_rate_times_duration() -> None:
    a, b = make_trace(30, 10, 8), make_trace(30, 10, 8)
    assert a == b and len(a) == 80
    assert [r.at_s for r in a.requests] == [i / 10 for i in range(80)]
    assert make_trace(30, 10, 8, seed=8).requests != a.requests
    assert {r.model for r in a.requests} <= set(a.models)


def test_popular_means_the_top_model_and_the_star_while_it_rises() -> None:
    trace = make_trace(200, 40, 60)
    plan = phases(60)
    rise = plan[1].name
    star = [(phase_at(plan, r.at_s).name, r.popular) for r in trace.requests
            if r.model == trace.star]
    assert star and all(popular == (name == rise) for name, popular in star)
    assert sum(name == rise for name, _ in star) > 100  # 30 % of 720 requests
    assert all(r.popular for r in trace.requests if r.model == "model-0000")
    assert not any(r.popular for r in trace.requests
                   if r.model not in ("model-0000", trace.star))


def test_the_isolation_trace_churns_more_models_than_the_pool_holds() -> None:
    names = model_names(30)
    alone = isolation_trace(names, 5, 10, 5, 4, churn=False)
    assert len(alone) == 40 and {r.model for r in alone} == {names[0]}
    assert all(r.popular for r in alone)
    mixed = isolation_trace(names, 5, 10, 5, 4, churn=True)
    cold = [r.model for r in mixed if not r.popular]
    assert len(mixed) == 60 and len(cold) == 20 and names[0] not in cold
    assert [r.at_s for r in mixed] == sorted(r.at_s for r in mixed)
    for i, model in enumerate(cold):  # reused only after more than `slots` others: a miss
        if model in cold[:i]:
            last = max(j for j in range(i) if cold[j] == model)
            assert len(set(cold[last + 1:i])) > 5
    # A catalogue barely larger than the pool still churns over every other model.
    assert {r.model for r in isolation_trace(names[:8], 5, 2, 2, 4, True) if not r.popular} \
        == set(names[1:8])


def test_poisson_arrivals_are_seeded_sorted_and_bounded() -> None:
    times = schedule(50, 10, "poisson", seed=3)
    assert times == schedule(50, 10, "poisson", seed=3) != schedule(50, 10, "poisson", seed=4)
    assert times == sorted(times) and times[-1] < 10 and 350 < len(times) <= 500
    with pytest.raises(ValueError):
        schedule(MAX_REQUESTS, 2)
    with pytest.raises(ValueError):
        schedule(10, 1, "bursty")
    with pytest.raises(ValueError):
        schedule(0, 1)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 99.9)) == (
        50.0, 99.0, 100.0)
    assert percentile([3.0], 99.9) == 3.0
    assert math.isnan(percentile([], 50))


def _outcome(index: int, latency: float, status: int = 200) -> Outcome:
    return Outcome(index, latency, status, status == 200, "cold", "hit" if status == 200 else "")


def test_groups_split_popular_and_count_failures_in_latency() -> None:
    reqs = [Planned(0, "m", True), Planned(1, "m", True), Planned(2, "n", False)]
    outs = [_outcome(0, 0.01), _outcome(1, 0.02, 503), _outcome(2, 5.0)]
    figures = groups(reqs, outs)
    assert figures["popular"] == Group(2, 0.01, 0.02, 0.02, 1, 1)
    assert figures["rest"].count == 1 and figures["rest"].failed == 0
    assert figures["cache=hit"].count == 2 and figures["pool=cold"].count == 3
    assert not holds(figures)  # one failure
    ok = groups(reqs[:1], outs[:1])
    assert holds(ok) and not holds(ok, slo_s=0.005)


def test_capacity_is_the_top_of_the_unbroken_run_of_held_rates() -> None:
    assert capacity({10: True, 20: True, 40: False, 80: True}) == 20
    assert capacity({40: True, 10: True, 20: True}) == 40
    assert capacity({10: False, 20: True}) is None
    assert capacity({}) is None
    rates = auto_rates()
    assert rates[0] == 10 and rates == sorted(set(rates)) and rates[-1] <= 400


def test_proc_parsing() -> None:
    stat = "42 (tier serve) x) S 7 42 42 0 -1 4194560 1 0 0 0 250 150 0 0 20 0 1 0 5"
    ppid, cpu = parse_stat(stat)
    assert ppid == 7 and cpu == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))
    assert parse_hwm_mb("Name:\tx\nVmHWM:\t  2048 kB\n") == 2.0
    assert parse_hwm_mb("Name:\tzombie\n") == 0.0
    cli = [sys.executable, "-m", "tierserve.cli"]
    assert role_of([*cli, "model-server", "--port", "1"], "pool") == "pool model-server"
    assert role_of([*cli, "model-server", "--model_name=m7"], "orchestrator") == "hot:m7"
    assert role_of([*cli, "model-server", "--model_name", "m8"], "orchestrator") == "hot:m8"
    assert role_of([*cli, "router", "--port", "1"], None) == "router"
    assert role_of(["/usr/bin/python3", "x.py"], "pool") == "pool python3"
    assert role_of([], "orchestrator") == ""  # a zombie's command line is empty


CHILD = "sum(range(30_000_000)); import time; time.sleep(0.5)"
PARENT = ("import subprocess, sys; sys.stdin.readline(); "
          f"subprocess.run([sys.executable, '-c', {CHILD!r}]); sys.stdin.readline()")


def test_the_sampler_counts_a_child_that_came_and_went_within_the_window() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, text=True)
    assert parent.stdin is not None
    try:
        sampler = Sampler({"parent": parent.pid}, interval_s=0.05)
        sampler.start()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        deadline = 600
        while deadline and not any(r.startswith("parent ") for r in sampler.seen_roles()):
            deadline -= 1
            time.sleep(0.05)
        parent.stdin.write("end\n")
        parent.stdin.flush()
        parent.wait(60)
        figures = sampler.stop()
    finally:
        parent.kill()
    child = [cpu for role, (cpu, _) in figures.items() if role.startswith("parent ")]
    assert child and child[0] > 0.05  # the CPU it burned, not a timing
    assert figures["parent"][1] > 0  # peak RSS seen


class _Server:
    """HTTP/1.1 on 127.0.0.1. /v1/models/ok-N answers 2*(N+1); busy-N: 503; chunked-N: the
    answer chunked; close-N: with Connection: close; drop-N: closes without saying so."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        while line := await reader.readline():
            path = line.split()[1].decode()
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            await reader.readexactly(length)
            self.requests += 1
            model = path.split("/")[3].split(":")[0]
            kind = model.split("-")[0]
            status, body = ((503, b'{"error": "busy"}') if kind == "busy" else
                            (200, b'{"predictions": [%.1f]}' % (2 * model_value(model))))
            head = (b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                    b"x-tierserve-pool: cold\r\n" % status)
            if kind == "chunked":
                half = len(body) // 2
                writer.write(head + b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s"
                             b"\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:]))
            else:
                close = b"connection: close\r\n" if kind == "close" else b""
                writer.write(head + close + b"content-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            if kind in ("close", "drop"):
                break
        writer.close()


async def _serve(server: _Server) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        for writer in server.writers:
            writer.close()
        await asyncio.sleep(0.05)  # let the handlers see their connections end


def _run(reqs: list[Planned]) -> tuple[RunResult, _Server]:
    async def go() -> tuple[RunResult, _Server]:
        server = _Server()
        async for url in _serve(server):
            return await open_loop(url, reqs, lambda m: [2 * model_value(m)],
                                   timeout_s=10), server
        raise AssertionError("no server")

    return asyncio.run(go())


def test_the_generator_sends_every_request_and_reports_each() -> None:
    reqs = [Planned(i * 0.01, f"{'busy' if i % 5 == 4 else 'ok'}-{i % 3}", False)
            for i in range(40)]
    result, server = _run(reqs)
    assert result.sent == server.requests == 40
    assert [o.index for o in result.outcomes] == list(range(40))
    assert [o.status for o in result.outcomes] == [503 if i % 5 == 4 else 200
                                                  for i in range(40)]
    assert all(o.ok == (o.status == 200) and o.pool == "cold" for o in result.outcomes)
    assert server.connections < 40  # kept alive and reused


def test_the_client_reads_chunked_and_closing_answers_and_survives_dropped_connections(
        ) -> None:
    kinds = ["chunked", "close", "drop", "ok"]
    reqs = [Planned(i * 0.005, f"{kinds[i % 4]}-{i % 7}", False) for i in range(80)]
    result, server = _run(reqs)
    bad = [o for o in result.outcomes if not o.ok]
    assert not bad, bad[:3]
    assert server.requests == 80


def test_the_generator_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        asyncio.run(open_loop("http://10.0.0.1:8500", [], lambda m: []))
