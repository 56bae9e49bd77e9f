"""Router overhead: the same load against the model server directly, through the router,
and through nginx as a plain reverse proxy (reference); then gRPC Predict calls straight to
the model server's gRPC port, through the router's gRPC front and through two bare
pass-through gRPC proxies (bench/_grpc_proxies.py: the floor of any grpc-python front),
side by side.

    tierserve bench router [--generator wrk|httpx] [--rounds 5] [--seconds 3]
                           [--concurrency 1,32] [--grpc-requests 1000] [--protocols rest,grpc]

Starts a real model server (toy SavedModel y = 2x), the router (routing the model to
that server as its cold pool) and nginx (Debian's /usr/sbin/nginx, generated config,
127.0.0.1, keep-alive upstream). Each target gets the same load from the same
generator (wrk from Debian's package when installed, else an asyncio httpx client),
in interleaved rounds; prints p50/p99 latency (median over rounds), throughput, the
router's and nginx's added latency and throughput ratio against the direct calls,
and the CPU each proxy process spent per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from bench._router_grpc import grpc_load, predict_bytes
from pools.model_server.command import model_server_args
from tierserve import toy_models

MODEL = "bench"
BODY = {"instances": [1.0, 2.0, 3.0, 4.0]}
NGINX = "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parents[1]
WRK = "wrk"


def start_model_server(work: Path) -> tuple[ServerProcess, str, str]:
    store = work / "store"
    toy_models.write_model(store, MODEL, {1: 2.0})
    rest, grpc = free_port(), free_port()
    proc = ServerProcess(tierserve_command("model-server", *model_server_args(
        port=grpc, rest_api_port=rest, model_name=MODEL, model_base_path=str(store / MODEL))),
        ready_url=f"http://127.0.0.1:{rest}/v1/models/{MODEL}",
        log_path=work / "model-server.log")
    return proc.wait_ready(timeout=180), f"http://127.0.0.1:{rest}", f"127.0.0.1:{grpc}"


def start_router(work: Path, backend: str, backend_grpc: str) -> tuple[ServerProcess, str, str]:
    port, grpc = free_port(), free_port()
    proc = ServerProcess(tierserve_command(
        "router", "--db-url", f"sqlite:///{work / 'bench.db'}", "--cold-url", backend,
        "--cold-grpc", backend_grpc, "--port", str(port), "--grpc-port", str(grpc)),
        ready_url=f"http://127.0.0.1:{port}/healthz", log_path=work / "router.log")
    return proc.wait_ready(timeout=60), f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc}"


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    upstream backend {{ server {backend_hostport}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_bare_proxies(work: Path, backend_grpc: str) -> dict[str, tuple[ServerProcess, str]]:
    """The reference gRPC proxies (bench._grpc_proxies), ready, by name."""
    import grpc

    proxies = {}
    for kind in ("aio", "threads"):
        port = free_port()
        target = f"127.0.0.1:{port}"
        proc = ServerProcess([sys.executable, "-m", "bench._grpc_proxies", kind, str(port),
                              backend_grpc],
                             log_path=work / f"proxy-{kind}.log", cwd=str(REPO))
        proxies[f"bare-{kind}"] = (proc, target)
    for _proc, target in proxies.values():
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
    return proxies


def start_nginx(work: Path, backend: str) -> tuple[ServerProcess, str] | None:
    if not Path(NGINX).exists() and shutil.which("nginx") is None:
        return None
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port,
                                      backend_hostport=backend.removeprefix("http://")))
    proc = ServerProcess([NGINX if Path(NGINX).exists() else "nginx", "-c", str(conf),
                          "-p", str(work)], ready_url=f"http://127.0.0.1:{port}/v1/models/{MODEL}",
                         log_path=work / "nginx.log")
    return proc.wait_ready(timeout=30), f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Round:
    p50_s: float
    p99_s: float
    requests: int
    seconds: float


async def _httpx_load(url: str, requests: int, concurrency: int) -> Round:
    latencies: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 trust_env=False) as client:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                r = await client.post(f"/v1/models/{MODEL}:predict", json=BODY)
                latencies.append(time.perf_counter() - start)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Round(pct(latencies, 50), pct(latencies, 99), len(latencies),
                     time.perf_counter() - started)


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", latency:percentile(50),
    latency:percentile(99), summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def _wrk_load(work: Path, url: str, seconds: float, concurrency: int) -> Round:
    script = work / "predict.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT % json.dumps(BODY))
    out = subprocess.run(
        [WRK, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
         "-s", str(script), f"{url}/v1/models/{MODEL}:predict"],
        check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    p50_us, p99_us, requests, duration_us, errors = (int(v) for v in line.split()[1:])
    if errors:
        raise RuntimeError(f"{url}: {errors} failed requests under wrk")
    return Round(p50_us / 1e6, p99_us / 1e6, requests, duration_us / 1e6)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in a process group (nginx: master + worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
            total += int(fields[11]) + int(fields[12])
    return total / tick


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


Runner = Callable[[str, int], Round]


def measure(targets: dict[str, str], pgroups: dict[str, ServerProcess], levels: list[int],
            rounds_per_target: int, one_round: Runner, warm_up: Runner) -> None:
    """Interleaved rounds over `targets` at each concurrency; prints the table against
    `direct`."""
    rounds: dict[tuple[str, int], list[Round]] = {}
    cpu: dict[tuple[str, int], float] = {}
    for concurrency in levels:
        for url in targets.values():  # warm up connections and code paths
            warm_up(url, min(concurrency, 8))
        # Interleaved rounds: a burst of load from elsewhere on the machine hits
        # every target alike instead of skewing whichever ran at that moment.
        for _ in range(rounds_per_target):
            for name, url in targets.items():
                before = {n: group_cpu_seconds(p.pid) for n, p in pgroups.items()}
                rounds.setdefault((name, concurrency), []).append(one_round(url, concurrency))
                # The proxy's own CPU: unlike latency, barely moved by other load.
                if name in pgroups:
                    cpu[name, concurrency] = cpu.get((name, concurrency), 0.0) + (
                        group_cpu_seconds(pgroups[name].pid) - before[name])
    print(f"\n{'target':12} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
          f"{'+p50 ms':>8} {'+p99 ms':>8} {'tput x':>7} {'cpu ms/req':>10}")
    for concurrency in levels:
        summary = {}
        for name in targets:
            runs = rounds[name, concurrency]
            # Medians over rounds: robust to a round hit by a burst of other load.
            summary[name] = (statistics.median(r.p50_s for r in runs) * 1000,
                             statistics.median(r.p99_s for r in runs) * 1000,
                             sum(r.requests for r in runs) / sum(r.seconds for r in runs),
                             sum(r.requests for r in runs))
        base = summary["direct"]
        for name, (p50, p99, rps, total) in summary.items():
            extra = ("" if name == "direct" else
                     f" {p50 - base[0]:8.2f} {p99 - base[1]:8.2f} {rps / base[2]:7.2f}"
                     f" {cpu[name, concurrency] * 1000 / total:10.3f}")
            print(f"{name:12} {concurrency:4d} {p50:8.2f} {p99:8.2f} {rps:8.0f}{extra}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; latency "
          "on a shared machine is noisy; cpu ms/req is the proxy's own cost)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=("wrk", "httpx"),
                        default="wrk" if shutil.which(WRK) else "httpx",
                        help="REST load generator (wrk when installed: lighter than Python)")
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk: seconds per round")
    parser.add_argument("--requests", type=int, default=400, help="httpx: requests per round")
    parser.add_argument("--grpc-requests", type=int, default=1000,
                        help="gRPC: requests per round (one grpc.aio client)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per target")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--protocols", default="rest,grpc", help="rest, grpc or both")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    protocols = {p.strip() for p in args.protocols.split(",")}
    work = Path(tempfile.mkdtemp(prefix="tierserve-bench-router-"))
    procs: list[ServerProcess] = []

    def one_round(url: str, concurrency: int) -> Round:
        if args.generator == "wrk":
            return _wrk_load(work, url, args.seconds, concurrency)
        return asyncio.run(_httpx_load(url, args.requests, concurrency))

    try:
        model_server, direct, direct_grpc = start_model_server(work)
        procs.append(model_server)
        router, via_router, router_grpc = start_router(work, direct, direct_grpc)
        procs.append(router)
        if "rest" in protocols:
            targets = {"direct": direct, "router": via_router}
            pgroups = {"router": router}
            nginx = start_nginx(work, direct)
            if nginx is not None:
                procs.append(nginx[0])
                targets["nginx"] = nginx[1]
                pgroups["nginx"] = nginx[0]
            print(f"REST: model server {direct}, router {via_router}, nginx "
                  f"{targets.get('nginx', 'not found')}; generator {args.generator}, "
                  f"{args.rounds} interleaved rounds per target")
            measure(targets, pgroups, levels, args.rounds, one_round,
                    lambda url, c: asyncio.run(_httpx_load(url, 50, c)))
        if "grpc" in protocols:
            body = predict_bytes(MODEL, BODY["instances"])

            def grpc_round(target: str, concurrency: int, requests: int) -> Round:
                latencies, seconds = grpc_load(target, body, requests, concurrency)
                return Round(pct(latencies, 50), pct(latencies, 99), len(latencies), seconds)

            targets = {"direct": direct_grpc, "router": router_grpc}
            pgroups = {"router": router}
            for name, (proc, target) in start_bare_proxies(work, direct_grpc).items():
                procs.append(proc)
                targets[name], pgroups[name] = target, proc
            print(f"\ngRPC Predict: model server {direct_grpc}, router {router_grpc}; "
                  "references: bare pass-through proxies (bench/_grpc_proxies.py: grpc.aio, "
                  f"and grpc's thread pool); one grpc.aio client, {args.grpc_requests} "
                  f"requests a round, {args.rounds} interleaved rounds per target")
            measure(targets, pgroups, levels,
                    args.rounds, lambda t, c: grpc_round(t, c, args.grpc_requests),
                    lambda t, c: grpc_round(t, c, 100))
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
