"""`bench/eviction.py --live`: the same traces, shortened, through a real `tierserve pool`.

For each (trace, policy): a fresh `tierserve pool` (its own model server child)
over a local store of toy models, only the memory tier bounded (every model
fits on disk, as in the simulator), requests sent one at a time in trace order.
The pool's own hit and miss counters (/metrics) give its hit ratio, printed next
to the simulator's prediction for the same shortened trace and bounds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from base.procs import ServerProcess, free_port, tierserve_command
from pools.eviction import make_policy
from pools.eviction.belady import BeladyOracle
from pools.eviction.simulate import simulate
from pools.eviction.traces import Trace, model_names, standard
from testkit import stores as testing


@dataclass
class LiveRun:
    hits: int
    misses: int
    errors: int
    wrong: int
    seconds: float

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def pool_counters(client: httpx.Client) -> tuple[int, int]:
    values = {"tierserve_pool_hits": 0.0, "tierserve_pool_misses": 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name in values:
            values[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(values["tierserve_pool_hits"]), int(values["tierserve_pool_misses"])


def drive(store: Path, work: Path, trace: Trace, policy: str, slots: int, n_models: int) -> LiveRun:
    port = free_port()
    cache = work / f"cache-{trace.name.replace('/', '-')}-{policy}"
    command = tierserve_command(
        "pool", "--store", str(store), "--cache-dir", str(cache), "--port", str(port),
        "--grpc-port", str(free_port()),
        "--memory-models", str(slots), "--disk-models", str(n_models),
        "--eviction-policy", policy, "--store-poll", "3600", "--log-level", "warning",
    )  # fmt: skip
    log = work / f"pool-{port}.log"
    proc = ServerProcess(command, f"http://127.0.0.1:{port}/healthz", log_path=log)
    errors = wrong = 0
    started = time.perf_counter()
    try:
        proc.wait_ready(timeout=180)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0) as client:
            index = {name: i for i, name in enumerate(model_names(n_models))}
            for key in trace.requests:
                response = client.post(f"/v1/models/{key}:predict", json={"instances": [1.0]})
                if response.status_code != 200:
                    errors += 1
                elif response.json()["predictions"] != [float(index[key] + 1)]:
                    wrong += 1
            hits, misses = pool_counters(client)
    finally:
        proc.stop()
    return LiveRun(hits, misses, errors, wrong, time.perf_counter() - started)


def run(
    policies: list[str], n_requests: int, n_models: int, slots: int, trace_names: list[str]
) -> None:
    # "shifting-1" names "shifting-1/<phase>", whatever the phase for this length
    traces = [t for t in standard(n_requests, n_models) if t.name.split("/")[0] in trace_names]
    work = Path(tempfile.mkdtemp(prefix="tierserve-eviction-live-"))
    try:
        store = testing.make_local_store(
            work / "store",
            {name: {1: float(i + 1)} for i, name in enumerate(model_names(n_models))},
        )
        print(
            f"\nlive: a real `tierserve pool` per run, {n_models} toy models, "
            f"memory_models={slots}, {n_requests} requests per trace (one at a time)\n"
        )
        header = (
            f"{'trace':<16} {'policy':<14} {'live hit ratio':>14} {'simulated':>9} "
            f"{'Belady':>7} {'errors':>6} {'wrong':>5} {'seconds':>7}"
        )
        print(header)
        print("-" * len(header))
        for trace in traces:
            oracle = simulate(BeladyOracle(trace.requests), trace.requests, slots).hit_ratio
            for policy in policies:
                sim = simulate(make_policy(policy, slots), trace.requests, slots).hit_ratio
                live = drive(store, work, trace, policy, slots, n_models)
                print(
                    f"{trace.name:<16} {policy:<14} {live.hit_ratio:>14.4f} {sim:>9.4f} "
                    f"{oracle:>7.4f} {live.errors:>6} {live.wrong:>5} {live.seconds:>7.0f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
