"""`tierserve demo`: tiny models, the whole system, and traffic that changes, shown live.

It creates N tiny models in a local store, writes a policy with short windows so
things happen within minutes, starts cold pool, router and orchestrator, and
drives a Zipf mix in which one rare model turns popular and later goes quiet.
The terminal shows requests per second, the cold pool's hit ratio, the hot
models, promotions and demotions as they happen, and latency per pool. It ends
by itself with a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from base.admin_auth import TOKEN_ENV, bearer_headers
from base.durations import duration_arg
from tierserve.demo_events import moves
from tierserve.demo_traffic import Picker, model_names, phase_at, phases
from tierserve.demo_view import ms, plain_line, render
from tierserve.native_logs import native_output_to
from tierserve.stack import Stack, StackConfig

DEMO_POLICY = """\
# Written by `tierserve demo`: short windows so promotions happen within a minute.
store: {store}
interval: 1s
hot:
  max_models: {hot_models}
  promote: {{min_rate: {promote}, window: 10s}}
  demote: {{max_rate: {demote}, window: 15s}}
  cooldown: 15s
  drain: 1s
  pinned: []
cold:
  max_models: {slots}
  load_wait: {load_wait}s
{eviction}"""


def demo_policy(store: Path, rate: float, slots: int = 30, hot_models: int = 3,
                load_wait: float = 30.0, eviction: str | None = None) -> str:
    """The demo's policy text; `tierserve bench tiering` writes the same one.

    Promote what gets about a tenth of the traffic; demote what falls far below.
    """
    return DEMO_POLICY.format(store=store.resolve(), hot_models=hot_models,
                              promote=round(rate / 10, 2), demote=round(rate / 60, 2),
                              slots=slots, load_wait=f"{load_wait:g}",
                              eviction=f"  eviction: {eviction}\n" if eviction else "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=int, default=200, help="how many tiny models")
    parser.add_argument("--duration", type=duration_arg, default=150.0,
                        help="how long traffic runs: seconds or e.g. 90s, 2m30s, 1h30m")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--var", type=Path, default=Path("var/demo"),
                        help="folder for models, db, cache and logs")
    parser.add_argument("--port", type=int, default=0, help="router port (0: any free)")
    parser.add_argument("--plain", action="store_true",
                        help="print a line every few seconds instead of the live view")


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    wrong: int = 0
    by_pool: dict[str, list[float]] = field(default_factory=lambda: {"hot": [], "cold": []})
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=4000))
    errors: Counter[str] = field(default_factory=Counter)

    def rate(self, now: float, span: float = 5.0) -> float:
        return sum(1 for t in self.recent if t > now - span) / span


def prepare(var: Path, count: int, rate: float) -> Path:
    from tierserve.toy_models import write_model

    store = var / "models"
    names = model_names(count)
    store.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        if not (store / name).exists():
            write_model(store, name, {1: float(index + 1)})
    policy = var / "policy.yaml"
    policy.write_text(demo_policy(store, rate))
    return policy


async def _one(client: httpx.AsyncClient, picker: Picker, phase: Any, tally: Tally) -> None:
    name = picker.pick(phase)
    started = time.monotonic()
    tally.sent += 1
    try:
        answer = await client.post(f"/v1/models/{name}:predict", json={"instances": [2.0]})
    except httpx.HTTPError as exc:
        tally.failed += 1
        tally.errors[type(exc).__name__] += 1
        return
    elapsed = time.monotonic() - started
    tally.recent.append(time.monotonic())
    if answer.status_code != 200:
        tally.failed += 1
        tally.errors[f"HTTP {answer.status_code}: {answer.text[:120]}"] += 1
        return
    if answer.json().get("predictions") != [2.0 * picker.value(name)]:
        tally.wrong += 1
    pool = answer.headers.get("x-tierserve-pool", "?")
    cache = answer.headers.get("x-tierserve-cache")  # hit / miss, when the router passes it on
    key = f"{pool} {cache}" if pool == "cold" and cache else pool
    tally.by_pool.setdefault(key, []).append(elapsed)


async def drive(router: str, duration: float, rate: float, picker: Picker, tally: Tally,
                on_tick: Any) -> None:
    """Open-loop traffic for `duration` s; about once a second `on_tick(client, phase, start)`
    (`start`: the traffic's time.monotonic() origin)."""
    plan = phases(duration)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=router, timeout=60, limits=limits) as client:
        start = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        sent_at = 0
        next_tick = start
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * rate)
            phase = phase_at(plan, elapsed)
            for _ in range(due - sent_at):
                task = asyncio.create_task(_one(client, picker, phase, tally))
                pending.add(task)
                task.add_done_callback(pending.discard)
            sent_at = due
            if time.monotonic() >= next_tick:
                await on_tick(client, phase, start)
                # From now, not from the last due time: a slow poll must not cause a burst.
                next_tick = time.monotonic() + 1.0
            await asyncio.sleep(0.01)
        if pending:
            await asyncio.wait(pending, timeout=60)


class Observer:
    """Polls the router and the cold pool for the live view, and keeps every event it saw."""

    def __init__(self, stack: Stack, since: float) -> None:
        self.stack = stack
        self.since = since  # wall-clock start of this run: a reused db holds older events
        self.hot: list[str] = []
        self.events: deque[str] = deque(maxlen=8)
        self.new_events: list[str] = []  # seen since the last `take_new_events`
        self.seen: dict[int, dict[str, Any]] = {}
        self.hit_ratio: float | None = None
        # A token exported for the admin API reaches the stack's processes too: send it.
        self.headers = bearer_headers(os.environ.get(TOKEN_ENV))

    @property
    def promoted(self) -> list[str]:
        return moves(self.seen.values(), self.since)[0]

    @property
    def demoted(self) -> list[str]:
        return moves(self.seen.values(), self.since)[1]

    def take_new_events(self) -> list[str]:
        taken, self.new_events = self.new_events, []
        return taken

    async def poll(self, client: httpx.AsyncClient, limit: int = 50) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            routing = (await client.get("/admin/routing", headers=self.headers)).json()
            self.hot = sorted(p["model"] for p in routing["placements"] if p["pool"] == "hot")
            events = (await client.get("/admin/events", params={"limit": limit},
                                       headers=self.headers)).json()
            for event in reversed(events["events"]):
                if event["id"] in self.seen or event["ts"] < self.since:
                    continue
                self.seen[event["id"]] = event
                stamp = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
                line = f"{stamp} {event['action']} {event['model']}: {event['outcome']}"
                self.events.append(line)
                self.new_events.append(line)
            pool = (await client.get(f"{self.stack.pool_url}/admin/models",
                                     headers=self.headers)).json()["totals"]
            total = pool["hits"] + pool["misses"]
            self.hit_ratio = pool["hits"] / total if total else None


def summary(tally: Tally, observer: Observer, star: str) -> str:
    lines = ["", "tierserve demo summary",
             f"  requests: {tally.sent} sent, {tally.failed} failed, {tally.wrong} wrong answers",
             "  cold pool hit ratio: "
             + ("-" if observer.hit_ratio is None else f"{100 * observer.hit_ratio:.1f} %"),
             f"  promoted: {', '.join(observer.promoted) or '(none)'}",
             f"  demoted: {', '.join(observer.demoted) or '(none)'}",
             f"  the rising model {star} was promoted: "
             + ("yes" if star in observer.promoted else "no")
             + ", then demoted: " + ("yes" if star in observer.demoted else "no"),
             f"  hot at the end: {', '.join(observer.hot) or '(none)'}"]
    for pool, values in tally.by_pool.items():
        if values:
            mean = 1000 * statistics.mean(values)
            lines.append(f"  {pool}: {len(values)} answers, p50 {ms(values, 0.5)} ms, "
                         f"p99 {ms(values, 0.99)} ms, mean {mean:.1f} ms")
    if tally.errors:
        lines.append(f"  errors: {dict(tally.errors)}")
    return "\n".join(lines + targets(tally, observer.promoted, observer.demoted, star))


# Issue 14's targets on the demo's default workload (quiet 2-core machine): p99 ceilings in ms.
TARGETS_MS = {"hot": 50.0, "cold hit": 50.0, "cold miss": 1500.0}


def _p99_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def targets(tally: Tally, promoted: list[str], demoted: list[str], star: str) -> list[str]:
    """Each target, the figure measured and whether it was met."""
    lines = ["  targets (quiet 2-core machine, default workload):"]
    for key, ceiling in TARGETS_MS.items():
        values = tally.by_pool.get(key, [])
        if values:
            p99 = _p99_ms(values)
            lines.append(f"    {key} p99 {p99:.1f} ms (target <= {ceiling:.0f} ms): "
                         + ("met" if p99 <= ceiling else "NOT met"))
        elif key.startswith("cold") and tally.by_pool.get("cold"):
            lines.append(f"    {key} p99: not told apart (no X-Tierserve-Cache header on "
                         "the router's answers)")
        else:
            lines.append(f"    {key} p99: no answers")
    lines.append(f"    failed {tally.failed} (target 0): "
                 + ("met" if tally.failed == 0 else "NOT met"))
    moved = star in promoted and star in demoted
    lines.append("    rising model promoted, then demoted: " + ("met" if moved else "NOT met"))
    return lines


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


PLAIN_EVERY_S = 5.0


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    # SIGTERM ends the demo like Ctrl-C: the stack's processes are stopped, not orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console()
    # A live view redraws in place; into a file or pipe it would leave a single frame.
    plain = args.plain or not console.is_terminal
    setup_log = args.var / "logs" / "setup.log"
    print(f"creating {args.models} tiny models in {args.var / 'models'} "
          f"(TensorFlow's start-up lines go to {setup_log}) ...", flush=True)
    with native_output_to(setup_log):
        policy = prepare(args.var, args.models, args.rate)
    stack = Stack(StackConfig(policy_path=policy, var_dir=args.var, router_port=args.port,
                              router_grpc_port=0, pool_port=0, pool_grpc_port=0,
                              status_port=0, scope="demo", flush_interval=0.5))
    print(f"starting the cold pool, the router and the orchestrator (logs in "
          f"{args.var / 'logs'}) ...", flush=True)
    observer = Observer(stack, since=time.time())
    stack.start(progress=lambda line: print(f"  {line}", flush=True))
    picker = Picker(model_names(args.models))
    tally = Tally()
    print(f"router {stack.router_url}  dashboard {stack.router_url}/ui", flush=True)
    live = None if plain else Live(console=console, refresh_per_second=2)
    next_line = 0.0

    async def tick(client: httpx.AsyncClient, phase: Any, start: float) -> None:
        nonlocal next_line
        await observer.poll(client)
        stack.check()
        elapsed = time.monotonic() - start  # now, after the poll: the real time into the run
        if live is not None:
            observer.take_new_events()  # the live view shows the latest in its table
            live.update(render(tally, observer, phase, elapsed, args.duration, picker.star))
            return
        for event in observer.take_new_events():
            print(f"  event {event}", flush=True)
        if elapsed >= next_line:
            print(plain_line(tally, observer, phase, elapsed, args.duration), flush=True)
            next_line = elapsed + PLAIN_EVERY_S

    async def final_poll() -> None:
        # Every event of the run, not only the last few the live view polled.
        async with httpx.AsyncClient(base_url=stack.router_url, timeout=10) as client:
            await observer.poll(client, limit=10000)

    try:
        with live if live is not None else contextlib.nullcontext():
            asyncio.run(drive(stack.router_url, args.duration, args.rate, picker, tally, tick))
        asyncio.run(final_poll())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        stack.stop()
    print(summary(tally, observer, picker.star), flush=True)
    return 0 if tally.sent and not tally.failed and not tally.wrong else 1
