"""Cold pool benchmark: 1,000 tiny models in S3 (moto), a Zipf(s=1.0) request stream.

Starts moto's S3 server, uploads the models, starts `tierserve pool` (with its
own model server) at `--memory-models 50`, replays the trace with a few
concurrent clients and prints: hit ratio, p50/p99 latency of hits and of
misses, peak RSS of the pool and its model server, and the hit ratios of
Belady's optimal eviction and of the pool's policy simulated offline on the
same trace (the gap between the simulated and the live pool is what
concurrency and in-flight pinning cost).

    tierserve bench cold_pool [--requests 20000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from base.admin_auth import TOKEN_ENV, bearer_headers
from base.procs import ServerProcess, free_port, tierserve_command
from pools.eviction import DEFAULT_POLICY, make_policy
from pools.eviction.belady import BeladyOracle
from pools.eviction.simulate import simulate
from pools.eviction.traces import model_names, zipf
from testkit import stores as testing
from tierserve import toy_models

XS = [1.0, 2.0]
# The admin calls carry an exported TIERSERVE_ADMIN_TOKEN, which the started parts inherit.
ADMIN = bearer_headers(os.environ.get(TOKEN_ENV))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--zipf-s", type=float, default=1.0)
    p.add_argument("--memory-models", type=int, default=50)
    p.add_argument("--disk-models", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16, help="clients replaying the trace")
    p.add_argument("--max-parallel-loads", type=int, default=16)
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--probe", action="store_true",
                   help="one more client asks for the most popular model throughout: "
                        "its hits' latency while loads run")
    p.add_argument("--model-servers", type=int, default=None,
                   help="the pool's model-server processes (default: the pool's)")
    p.add_argument("--model-server-nice", type=int, default=None,
                   help="their nice increment (default: the pool's; 0 on a shared machine "
                        "keeps other people's processes from skewing the figures)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and cache here")
    return p.parse_args()


def a_of(name: str) -> float:
    return float(int(name[1:]) % 97 + 1)  # each model answers differently: y = a*x


def upload_models(names: list[str], endpoint: str, bucket: str, work: Path) -> None:
    client = testing.s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    toy_models.template_dir()  # build once, before the threads copy it

    def one(name: str) -> None:
        folder = toy_models.write_version(work / "upload" / name, a_of(name))
        # saved_model.pb last: a listing never shows a version that cannot load
        files = sorted((p for p in folder.rglob("*") if p.is_file()),
                       key=lambda p: (p.name == "saved_model.pb", str(p)))
        for path in files:
            client.upload_file(str(path), bucket,
                               f"models/{name}/1/{path.relative_to(folder).as_posix()}")
        shutil.rmtree(folder)

    with ThreadPoolExecutor(8) as workers:  # boto3 keeps 10 connections
        list(workers.map(one, names))


def peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) of a process and its children, in MB."""
    out: dict[str, float] = {}
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        role = "model-server" if b"model-server" in cmd else "pool"
        for line in status.splitlines():
            if line.startswith("VmHWM:"):  # summed over the pool's model servers
                out[role] = out.get(role, 0.0) + int(line.split()[1]) / 1024
    return out


async def replay(url: str, trace: list[str], concurrency: int, error_samples: list[str],
                 probe: list[float] | None = None) -> list[tuple[str, int, float]]:
    """(cache: hit/miss/error, status, seconds) per request, in trace order.

    With `probe`: one more client asks for the trace's most popular model over and over
    while the trace runs, and `probe` gets the seconds of its hits: hits while loads run.
    """
    results: list[tuple[str, int, float]] = [("error", 0, 0.0)] * len(trace)
    position = 0
    popular = max(set(trace), key=trace.count)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal position
            while position < len(trace):
                i, position = position, position + 1
                name = trace[i]
                started = time.perf_counter()
                r = await client.post(f"/v1/models/{name}:predict", json={"instances": XS})
                seconds = time.perf_counter() - started
                ok = r.status_code == 200 and r.json()["predictions"] == toy_models.expected(
                    a_of(name), 0.0, XS)
                results[i] = (r.headers.get("X-Tierserve-Cache", "error") if ok else "error",
                              r.status_code, seconds)
                if not ok and len(error_samples) < 5:
                    error_samples.append(f"#{i} {name} {r.status_code} after {seconds:.1f} s: "
                                         f"{r.text[:300]}")
                if (i + 1) % 1000 == 0:
                    print(f"  {i + 1} requests", flush=True)

        async def prober(times: list[float]) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=120) as own:
                while position < len(trace):
                    started = time.perf_counter()
                    r = await own.post(f"/v1/models/{popular}:predict", json={"instances": XS})
                    if r.headers.get("X-Tierserve-Cache") == "hit":
                        times.append(time.perf_counter() - started)
                    await asyncio.sleep(0.02)

        probing = [] if probe is None else [prober(probe)]
        await asyncio.gather(*(worker() for _ in range(concurrency)), *probing)
    return results


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def offline(trace: list[str], slots: int, policy: str) -> dict[str, float]:
    return {
        "belady": simulate(BeladyOracle(trace), trace, slots).hit_ratio,
        policy: simulate(make_policy(policy, slots), trace, slots).hit_ratio,
        "lru": simulate(make_policy("lru", slots), trace, slots).hit_ratio,
    }


def _mean_ms(listing: dict[str, Any], field: str) -> float | None:
    """The pool's own last-measured download or load time per model version, averaged."""
    values = [m[field] for m in listing["models"] if m.get(field) is not None]
    return round(statistics.fmean(values) * 1000, 1) if values else None


def pool_options(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    if args.model_servers is not None:
        out += ["--model-servers", str(args.model_servers)]
    if args.model_server_nice is not None:
        out += ["--model-server-nice", str(args.model_server_nice)]
    return out


def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {series: value} (labels kept in the name)."""
    out: dict[str, float] = {}
    for line in httpx.get(url, timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def miss_breakdown(url: str, listing: dict[str, Any]) -> dict[str, Any]:
    """Mean ms and count per phase of a miss (the pool's histogram), and TF's own load
    time inside the model servers."""
    series = scrape(f"{url}/metrics")
    phases: dict[str, Any] = {}
    for name, value in series.items():
        if name.startswith("tierserve_pool_miss_phase_seconds_sum"):
            phase = name.split('phase="')[1].split('"')[0]
            count = series[name.replace("_sum", "_count")]
            if count:
                phases[phase] = {"mean_ms": round(value / count * 1000, 1), "count": int(count)}
    total = count = 0.0
    for server in listing.get("model_servers", [listing["model_server"]]):
        ms = scrape(f"{server['rest']}/monitoring/prometheus/metrics")
        total += ms.get("tierserve_model_server_model_load_seconds_sum", 0.0)
        count += ms.get("tierserve_model_server_model_load_seconds_count", 0.0)
    if count:
        phases["tf_load_in_server"] = {"mean_ms": round(total / count * 1000, 1),
                                       "count": int(count)}
    return phases


def hit_overhead(url: str, listing: dict[str, Any], model: str, n: int = 300) -> dict[str, float]:
    """p50/p99 of `n` sequential predicts of one loaded model, through the pool and
    straight to the model server holding it, interleaved (no loads running)."""
    servers = listing.get("model_servers", [listing["model_server"]])
    entry = next(m for m in listing["models"] if m["model"] == model and m["loaded"])
    direct_url = servers[entry.get("server") or 0]["rest"]
    body = {"instances": XS}
    times: dict[str, list[float]] = {"pool": [], "direct": []}
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            for kind, base in (("pool", url), ("direct", direct_url)):
                started = time.perf_counter()
                client.post(f"{base}/v1/models/{model}:predict", json=body).raise_for_status()
                times[kind].append(time.perf_counter() - started)
    return {f"{kind}_{q}_ms": round(pct(values, level) * 1000, 2)
            for kind, values in times.items() for q, level in (("p50", 0.5), ("p99", 0.99))}


def main() -> None:
    args = parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tierserve-bench-cold-"))
    work.mkdir(parents=True, exist_ok=True)
    trace = list(zipf(args.zipf_s, args.models, args.requests, args.seed).requests)
    names = model_names(args.models)
    print(f"trace: {len(trace)} requests over {len(set(trace))} of {args.models} models "
          f"(Zipf s={args.zipf_s}), memory_models={args.memory_models}, policy={args.policy}")
    sims = offline(trace, args.memory_models, args.policy)

    moto, endpoint = testing.start_moto(work, free_port())
    pool = None
    try:
        started = time.monotonic()
        upload_models(names, endpoint, "bench", work)
        print(f"uploaded {len(names)} models in {time.monotonic() - started:.0f} s")
        port = free_port()
        env = {**testing.S3_ENV, "AWS_ENDPOINT_URL": endpoint, "TF_CPP_MIN_LOG_LEVEL": "2"}
        pool = ServerProcess(
            tierserve_command("pool", "--store", "s3://bench/models",
                              "--cache-dir", str(work / "cache"), "--port", str(port),
                              "--grpc-port", str(free_port()),
                              "--memory-models", str(args.memory_models),
                              "--disk-models", str(args.disk_models),
                              "--max-parallel-loads", str(args.max_parallel_loads),
                              "--eviction-policy", args.policy, "--log-level", "warning",
                              *pool_options(args)),
            f"http://127.0.0.1:{port}/healthz", log_path=work / "pool.log", env=env)
        pool.wait_ready(timeout=180)
        url = f"http://127.0.0.1:{port}"
        load_start = os.getloadavg()
        started = time.monotonic()
        error_samples: list[str] = []
        probe: list[float] | None = [] if args.probe else None
        results = asyncio.run(replay(url, trace, args.concurrency, error_samples, probe))
        elapsed = time.monotonic() - started
        load_end = os.getloadavg()
        listing = httpx.get(f"{url}/admin/models", headers=ADMIN, timeout=60).json()
        breakdown = miss_breakdown(url, listing)
        popular = max(set(trace), key=trace.count)
        overhead = hit_overhead(url, listing, popular)
        rss = peak_rss_mb(pool.pid)
    finally:
        if pool is not None:
            pool.stop()
        moto.stop()

    hits = [s for kind, _, s in results if kind == "hit"]
    misses = [s for kind, _, s in results if kind == "miss"]
    errors = [code for kind, code, _ in results if kind == "error"]
    figures: dict[str, Any] = {
        "requests": len(results), "seconds": round(elapsed, 1),
        "throughput_rps": round(len(results) / elapsed, 1),
        "hit_ratio": round(len(hits) / len(results), 4),
        "errors": len(errors), "error_statuses": sorted(set(errors)),
        "hit_p50_ms": round(pct(hits, 0.50) * 1000, 2),
        "hit_p99_ms": round(pct(hits, 0.99) * 1000, 2),
        "miss_p50_ms": round(pct(misses, 0.50) * 1000, 1),
        "miss_p99_ms": round(pct(misses, 0.99) * 1000, 1),
        "hit_mean_ms": round(statistics.fmean(hits) * 1000, 2) if hits else None,
        "peak_rss_mb": {k: round(v) for k, v in rss.items()},
        "offline_hit_ratio": {k: round(v, 4) for k, v in sims.items()},
        "pool_mean_download_ms": _mean_ms(listing, "download_time_s"),
        "pool_mean_load_ms": _mean_ms(listing, "load_time_s"),
        "pool_totals": listing["totals"],
        "miss_phases": breakdown,
        "hit_overhead_no_loads": overhead,
        "probe_hits_while_loading": None if probe is None else {
            "count": len(probe), "p50_ms": round(pct(probe, 0.5) * 1000, 2),
            "p99_ms": round(pct(probe, 0.99) * 1000, 2)},
        "load_average_start_end": [round(load_start[0], 2), round(load_end[0], 2)],
        "concurrency": args.concurrency,
        "model_servers": len(listing.get("model_servers", [None])),
        "error_samples": error_samples,
    }
    print(json.dumps(figures, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    random.seed(0)
    main()
