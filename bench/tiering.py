"""Tiering: the seed's design, a frequency-aware pool and tierserve in full, open-loop, in one run.

    tierserve bench tiering [--models 200] [--cold-slots 30] [--rate 40] [--duration 90]
                            [--setups a,b,c] [--sweep 20,40,60|auto] [--quick] [--json FILE]

Writes N tiny models to a local folder and starts the set-ups side by side:
(a) one pool with LRU and no hot tier (the seed's design), (b) one pool with
tinylfu and no hot tier, (c) tierserve in full. Each replays the same seeded
trace (the demo's: Zipf, plus a model that rises and falls) from an open-loop
generator, in interleaved turns. Reports p50/p99/p99.9 for the popular models
and the rest, failed and 503 counts, CPU seconds per 1,000 requests and peak
RSS of every process, and the load average; then hot latency alone and under
a cold-miss stream (isolation); with --sweep, each set-up's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # last: bench/router.py is no package

from _tiering_report import (
    Run,
    detail,
    isolation_table,
    runs_table,
    statuses,
    sweep_table,
    to_json,
)
from _tiering_setups import LABELS, Running, start_all

from testkit.latency import SLO_S, auto_rates, groups, holds
from testkit.loadgen import open_loop
from testkit.procstat import Sampler, tree
from testkit.trace import (
    Planned,
    Trace,
    isolation_trace,
    make_trace,
    model_value,
    steady,
    zipf_shares,
)
from tierserve.demo_traffic import model_names

STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"  [{time.monotonic() - STARTED:5.0f} s] {text}", flush=True)


def expect(model: str) -> list[float]:
    return [2.0 * model_value(model)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--cold-slots", type=int, default=30, help="models the pool keeps loaded")
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (main run)")
    p.add_argument("--duration", type=float, default=90.0,
                   help="seconds of the main trace (the rising model rises for 30 %% of it; "
                        "the policy promotes it after its 10 s window, counted in 5 s buckets)")
    p.add_argument("--rounds", type=int, default=1, help="main-run turns per set-up")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--arrivals", choices=("uniform", "poisson"), default="uniform")
    p.add_argument("--setups", default="a,b,c")
    p.add_argument("--sweep", default="", help="rates to sweep (20,40,60) or 'auto'")
    p.add_argument("--sweep-duration", type=float, default=30.0)
    p.add_argument("--isolation", type=float, default=15.0,
                   help="seconds of hot traffic alone, then with cold churn (0: skip)")
    p.add_argument("--timeout", type=float, default=30.0, help="client timeout per request")
    p.add_argument("--warmup", type=float, default=20.0,
                   help="seconds of unmeasured steady traffic before each measured turn "
                        "(set-up c: until its top model is hot, up to 60 s more)")
    p.add_argument("--quick", action="store_true",
                   help="smoke mode: 30 models, 5 slots, 10 req/s, a few seconds each")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--workdir", type=Path, help="keep models, logs and caches here")
    if p.parse_known_args(argv)[0].quick:  # smaller defaults; flags given still win
        p.set_defaults(models=30, cold_slots=5, rate=10.0, duration=6.0, isolation=3.0,
                       timeout=15.0, sweep_duration=6.0, warmup=2.0)
    args = p.parse_args(argv)
    return args


def settle(setup: Running, limit_s: float = 30.0) -> None:
    """Wait until the set-up's processes are nearly idle: a backlog left by one set-up
    (loads still running) must not eat the CPU of the next one's turn."""
    deadline = time.monotonic() + limit_s
    before = sum(s.cpu_s for s in tree(setup.roots).values())
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = sum(s.cpu_s for s in tree(setup.roots).values())
        if now - before < 0.15:
            return
        before = now


def warm(setup: Running, args: argparse.Namespace, rate: float) -> str:
    """Unmeasured steady traffic before a turn: the caches filled and, in set-up c, the top
    model on its hot server again (between its turns the traffic stopped and the hot tier
    drained). A note when the top model is still not hot."""
    if args.warmup <= 0:
        return ""
    top, chunk, spent = model_names(args.models)[0], min(args.warmup, 5.0), 0.0
    # Wait for the promotion only when the top model's rate reaches the policy's threshold
    # (a tenth of --rate, as in the demo): at low sweep rates it never will.
    promotable = zipf_shares(args.models)[0] * rate >= 1.1 * args.rate / 10
    wait_hot = setup.stack is not None and promotable and not args.quick
    limit = args.warmup + (60.0 if wait_hot else 0.0)
    while spent < limit:
        asyncio.run(open_loop(setup.url, steady(args.models, rate, chunk, args.seed), expect,
                              timeout_s=args.timeout))
        spent += chunk
        if spent >= args.warmup and (not wait_hot or top in setup.hot_models()):
            break
    settle(setup)
    if wait_hot and top not in setup.hot_models():
        return f"{top} not hot after {spent:.0f} s of warm-up"
    return ""


def measure(setup: Running, requests: list[Planned], phase: str, rate: float, round_: int,
            timeout: float, star: str = "", note: str = "") -> Run:
    sampler = Sampler(setup.roots, interval_s=1.0)
    load0, since = os.getloadavg()[0], time.time()
    sampler.start()
    try:
        result = asyncio.run(open_loop(setup.url, requests, expect, timeout_s=timeout))
    finally:
        procs = sampler.stop()
    load1 = os.getloadavg()[0]
    setup.check()
    run = Run(setup.name, phase, rate,
              round_, len(requests), result.sent, groups(requests, result.outcomes), procs,
              (load0, load1), result.max_lag_s, result.client_cpu_s,
              statuses(result.outcomes),
              setup.star_moves(star, since) if star else {}, note)
    settle(setup)
    return run


def turns(names: list[str], index: int) -> list[str]:
    """Rotate the order each turn: no set-up always runs first (or right after another)."""
    k = index % len(names)
    return names[k:] + names[:k]


def isolation(setup: Running, args: argparse.Namespace) -> list[Run]:
    models = model_names(args.models)
    hot_rate, churn_rate = max(2.0, args.rate / 4), max(1.0, args.rate / 8)
    # The top model loaded (a, b) or on its hot server (c) before it is measured alone.
    warmup = isolation_trace(models, args.cold_slots, hot_rate, churn_rate,
                             min(6.0, args.isolation), False)
    # A promotion takes the policy's 10 s window and a server start: --quick does not wait.
    for _ in range(10 if setup.stack is not None and not args.quick else 1):
        asyncio.run(open_loop(setup.url, warmup, expect, timeout_s=args.timeout))
        if setup.stack is None or models[0] in setup.hot_models():
            break
    settle(setup)
    note = ("" if setup.stack is None or models[0] in setup.hot_models()
            else f"{models[0]} was not hot")
    out = []
    for phase, churn in (("alone", False), ("churn", True)):
        reqs = isolation_trace(models, args.cold_slots, hot_rate, churn_rate,
                               args.isolation, churn)
        run = measure(setup, reqs, phase, hot_rate + (churn_rate if churn else 0), 0,
                      args.timeout)
        run.note = note
        out.append(run)
    return out


def sweep(running: dict[str, Running], args: argparse.Namespace,
          runs: list[Run]) -> dict[str, dict[float, bool]]:
    rates = auto_rates() if args.sweep == "auto" else [float(r) for r in args.sweep.split(",")]
    held: dict[str, dict[float, bool]] = {name: {} for name in running}
    for index, rate in enumerate(sorted(rates)):
        live = [n for n in running if all(held[n].values())]  # a set-up stops at its first miss
        if not live:
            break
        trace = make_trace(args.models, rate, args.sweep_duration, args.seed,
                           arrivals=args.arrivals)
        for name in turns(live, index):
            note = warm(running[name], args, rate)
            run = measure(running[name], list(trace.requests), "sweep", rate, 0, args.timeout,
                          note=note)
            held[name][rate] = holds(run.groups, SLO_S)
            runs.append(run)
            say(f"sweep {name} {rate:.0f} req/s: popular p99 "
                f"{run.groups['popular'].p99_s * 1000:.1f} ms, "
                f"{run.groups['all'].failed} failed")
    return held


def write_models(store: Path, count: int) -> None:
    from tierserve.toy_models import write_model

    for index, name in enumerate(model_names(count)):
        if not (store / name).exists():
            write_model(store, name, {1: float(index + 1)})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s for s in args.setups.split(",") if s]
    unknown = [s for s in names if s not in LABELS]
    if unknown or not names:
        print(f"unknown set-ups {unknown}: choose from {', '.join(LABELS)}", file=sys.stderr)
        return 2
    trace: Trace = make_trace(args.models, args.rate, args.duration, args.seed,
                              arrivals=args.arrivals)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tierserve-bench-tiering-"))
    store = work / "models"
    store.mkdir(parents=True, exist_ok=True)
    write_models(store, args.models)
    load_start = os.getloadavg()
    print(f"trace: {len(trace)} requests at {args.rate:g} req/s for {args.duration:g} s over "
          f"{args.models} models, {args.cold_slots} cold slots, rising model {trace.star}, "
          f"{sum(r.popular for r in trace.requests)} popular; load average "
          f"{load_start[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    say(f"starting set-ups {', '.join(names)} in {work} ...")
    running = start_all(names, work, store, args.cold_slots, args.rate)
    try:
        # After the set-ups started (they must not inherit it): the generator must send on
        # time on a busy machine, as its lateness counts as latency of whichever set-up runs.
        # It is light: about 0.3 ms of CPU per request.
        os.nice(-5)
    except OSError:
        pass
    runs: list[Run] = []
    held: dict[str, dict[float, bool]] = {}
    try:
        for round_ in range(args.rounds):
            for name in turns(names, round_):
                say(f"{name}: warm-up, then the main trace, turn {round_ + 1}")
                note = warm(running[name], args, args.rate)
                runs.append(measure(running[name], list(trace.requests), "main", args.rate,
                                    round_, args.timeout, trace.star, note))
        if args.isolation > 0:
            for name in names:
                say(f"{name}: isolation")
                runs += isolation(running[name], args)
        if args.sweep:
            held = sweep(running, args, runs)
    finally:
        for setup in running.values():
            setup.stop()
    load_end = os.getloadavg()
    main_runs = [r for r in runs if r.phase == "main"]
    print("\nmain trace (latency from the scheduled send time)\n"
          + runs_table(main_runs, {n: LABELS[n] for n in names}))
    for r in main_runs:
        print(detail(r))
    iso = [r for r in runs if r.phase in ("alone", "churn")]
    if iso:
        print("\nisolation: the top model alone, then with a stream of cold misses\n"
              + isolation_table(iso))
    if held:
        print("\nsweep\n" + sweep_table(held, runs, SLO_S * 1000))
    print(f"\nload average at start {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f}, at end {load_end[0]:.2f} {load_end[1]:.2f} "
          f"{load_end[2]:.2f} ({os.cpu_count()} CPUs)")
    if args.json:
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        params.update(trace_len=len(trace), star=trace.star, load_start=load_start,
                      load_end=load_end)
        args.json.write_text(json.dumps(to_json(runs, held, params), indent=1))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
