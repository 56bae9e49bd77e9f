"""Sharded cold tier: two shards against one pool of the same total size, same trace.

A local store of tiny models and a Zipf(s) request stream over them. Setup `one`: one
cold pool holding `--memory-models M` with two model servers; setup `two`: two shards
(`tierserve pool --shard-name`, registered in the db) holding M/2 each with one model
server each. Each setup gets its own router, its own SQLite db and fresh caches, and the
same trace at the same open-loop rate (request i is sent at i / rate, whatever the answers
do). Prints per setup: hit ratio (the pools' X-Tierserve-Cache), p50/p99 of hits, of misses
and of all requests, errors; and the hit ratios simulated offline on the same trace (one
cache of M, and two caches of M/2 that each see only the models rendezvous hashing gives
them), so the live figures can be read against the cache arithmetic.

    tierserve bench cold_shards [--models 40] [--memory-models 12] [--requests 480]
                                [--rate 4] [--order one,two]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from pools.eviction import DEFAULT_POLICY, make_policy
from pools.eviction.simulate import simulate
from pools.eviction.traces import model_names, zipf
from router.sharding import owner
from tierserve import toy_models

XS = [1.0, 2.0]
SHARDS = ["cold-0", "cold-1"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=40)
    p.add_argument("--requests", type=int, default=480)
    p.add_argument("--rate", type=float, default=4.0, help="requests per second, open loop")
    p.add_argument("--zipf-s", type=float, default=1.0)
    p.add_argument("--memory-models", type=int, default=12,
                   help="total, split over the shards")
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and caches here")
    p.add_argument("--order", default="one,two",
                   help="setups in this order (run twice, reversed, on a busy machine)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    return p.parse_args()


def a_of(name: str) -> float:
    return float(int(name[1:]) % 97 + 1)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def offline(trace: list[str], slots: int, policy: str) -> dict[str, float]:
    """Hit ratios of one cache of `slots` and of two of slots/2 split by rendezvous."""
    one = simulate(make_policy(policy, slots), trace, slots).hit_ratio
    half = max(1, slots // 2)
    hits = 0
    for shard in SHARDS:
        mine = [m for m in trace if owner(m, SHARDS) == shard]
        if mine:
            hits += simulate(make_policy(policy, half), mine, half).hits
    return {"one": round(one, 4), "two": round(hits / len(trace), 4)}


class Setup:
    """A router over one pool or over two shards, on its own db and caches."""

    def __init__(self, kind: str, work: Path, store: Path, memory_models: int,
                 policy: str) -> None:
        self.kind, self.work = kind, work / kind
        self.work.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{self.work / 'tierserve.db'}"
        self.procs: list[ServerProcess] = []
        self.pool_urls: list[str] = []
        names = SHARDS if kind == "two" else ["pool"]
        per_pool = memory_models // len(names)
        servers = 2 // len(names)  # the same model-server processes in total
        try:
            for name in names:
                port = free_port()
                shard = (["--shard-name", name, "--db-url", self.db_url,
                          "--heartbeat-interval", "0.5"] if kind == "two" else [])
                self.pool_urls.append(f"http://127.0.0.1:{port}")
                self.procs.append(ServerProcess(
                    tierserve_command("pool", "--store", str(store), "--cache-dir",
                                      str(self.work / f"cache-{name}"), "--port", str(port),
                                      "--grpc-port", str(free_port()),
                                      "--memory-models", str(per_pool),
                                      "--model-servers", str(servers),
                                      "--eviction-policy", policy, "--load-wait", "60",
                                      "--model-server-nice", "0", "--log-level", "warning",
                                      *shard),
                    f"http://127.0.0.1:{port}/healthz", log_path=self.work / f"{name}.log"))
            for proc in self.procs:
                proc.wait_ready(timeout=240)
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            router = ServerProcess(
                tierserve_command("router", "--db-url", self.db_url, "--cold-url",
                                  self.pool_urls[0], "--port", str(port),
                                  "--grpc-port", str(free_port()),
                                  "--poll-interval", "0.5"),
                f"{self.url}/healthz", log_path=self.work / "router.log")
            self.procs.append(router.wait_ready(timeout=60))
            want = SHARDS if kind == "two" else []
            deadline = time.monotonic() + 30
            while httpx.get(f"{self.url}/healthz").json()["cold_shards"] != want:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the router never saw the shards {want}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


async def replay(url: str, trace: list[str], rate: float) -> list[tuple[str, float]]:
    """(hit | miss | error, seconds) per request; request i leaves at start + i / rate."""
    results: list[tuple[str, float]] = [("error", 0.0)] * len(trace)
    limits = httpx.Limits(max_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(i: int, name: str) -> None:
            started = time.perf_counter()
            try:
                r = await client.post(f"/v1/models/{name}:predict", json={"instances": XS})
                ok = r.status_code == 200 and r.json()["predictions"] == toy_models.expected(
                    a_of(name), 0.0, XS)
                cache = r.headers.get("X-Tierserve-Cache", "error") if ok else "error"
            except httpx.HTTPError:
                cache = "error"
            results[i] = (cache, time.perf_counter() - started)

        start = time.perf_counter()
        tasks = []
        for i, name in enumerate(trace):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, name)))
        await asyncio.gather(*tasks)
    return results


def figures(results: list[tuple[str, float]]) -> dict[str, Any]:
    def ms(values: list[float], q: float) -> float | None:
        found = pct(values, q)
        return None if found is None else round(found * 1000, 1)

    hits = [s for c, s in results if c == "hit"]
    misses = [s for c, s in results if c == "miss"]
    every = [s for _, s in results]
    served = len(hits) + len(misses)
    return {"hit_ratio": round(len(hits) / served, 4) if served else None,
            "errors": sum(1 for c, _ in results if c == "error"),
            "p50_ms": ms(every, 0.5), "p99_ms": ms(every, 0.99),
            "hit_p50_ms": ms(hits, 0.5), "hit_p99_ms": ms(hits, 0.99),
            "miss_p50_ms": ms(misses, 0.5), "miss_p99_ms": ms(misses, 0.99)}


def main() -> None:
    args = parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tierserve-bench-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    trace = list(zipf(args.zipf_s, args.models, args.requests, args.seed).requests)
    store = work / "store"
    for name in model_names(args.models):
        toy_models.write_model(store, name, {1: a_of(name)})
    split = {s: sum(1 for m in set(trace) if owner(m, SHARDS) == s) for s in SHARDS}
    print(f"trace: {len(trace)} requests over {len(set(trace))} of {args.models} models "
          f"(Zipf s={args.zipf_s}) at {args.rate:g} req/s; memory_models {args.memory_models} "
          f"in total; models per shard {split}; policy {args.policy}")
    report: dict[str, Any] = {"offline_hit_ratio": offline(trace, args.memory_models,
                                                           args.policy)}
    for kind in args.order.split(","):
        if kind not in ("one", "two"):
            raise SystemExit(f"--order: unknown setup {kind!r}; use one and two")
        setup = Setup(kind, work, store, args.memory_models, args.policy)
        try:
            print(f"{kind}: replaying ...", flush=True)
            report[kind] = figures(asyncio.run(replay(setup.url, trace, args.rate)))
        finally:
            setup.stop()
        print(f"{kind}: {report[kind]}", flush=True)
    print(f"offline (same trace, {args.policy}): {report['offline_hit_ratio']}")
    if args.json:
        print(json.dumps(report, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
