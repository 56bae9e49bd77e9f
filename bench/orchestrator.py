"""Orchestrator figures: decide() cost for many models, and time to hot / to recover per runtime.

    tierserve bench orchestrator [--models 10000] [--runtimes process,docker] [--skip-real]

Prints: decide() time for N models with rates; for each runtime, the seconds from the pass that
starts an instance to the hot placement (model AVAILABLE), and from a kill of the instance to
its traffic routed cold and to a new instance routed hot. Uses a toy model in a local store,
a SQLite db in a temporary folder and counts written as the router flushes them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml


def bench_decide(n_models: int, repeats: int = 5) -> None:
    from policies.decide import HotModel, Rates, decide
    from policies.schema import HotPool

    rng = random.Random(7)
    pool = HotPool.model_validate({"max_models": 50, "promote": {"min_rate": 5},
                                   "demote": {"max_rate": 1}, "cooldown": 60,
                                   "pinned": [f"m{i}" for i in range(5)]})
    rates = {f"m{i}": rng.expovariate(0.5) for i in range(n_models)}
    hot = {f"m{i}": HotModel(since=rng.uniform(0, 200)) for i in range(0, n_models, n_models // 40)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        actions = decide(Rates(rates, rates), hot, pool, now=200.0)
        times.append(time.perf_counter() - start)
    print(f"decide(): {n_models} models with traffic, {len(hot)} hot -> {len(actions)} actions "
          f"in {statistics.median(times) * 1000:.1f} ms (median of {repeats})")


def bench_runtime(kind: str, root: Path) -> None:
    from db import queries
    from db.queries import CountDelta, make_engine
    from orchestrator.loop import Orchestrator
    from policies.watch import PolicyWatcher
    from testkit import docker_image as testimage
    from testkit import stores as testing

    store = testing.make_local_store(root / "store", {"bench": {1: 2.0}})
    if kind == "docker":
        from orchestrator.docker_runtime import DockerRuntime

        runtime = DockerRuntime(root / "state", "bench")
        testimage.ensure_test_image(runtime)
        container = testimage.container_settings().model_dump(mode="json")
    else:
        from orchestrator.process_runtime import ProcessRuntime

        runtime = ProcessRuntime(root / "state", "bench")
        container = {}
    policy = {"store": str(store), "interval": "200ms", "hot": {
        "max_models": 1, "promote": {"min_rate": 1, "window": "10s"},
        "demote": {"max_rate": 0.5, "window": "20s"}, "cooldown": "1h", "drain": "1s",
        "restart_backoff": {"initial": "1s", "max": "5s"}, "container": container}}
    (root / "policy.yaml").write_text(yaml.safe_dump(policy))
    engine = make_engine(f"sqlite:///{root / 'db.sqlite'}")
    orch = Orchestrator(engine, PolicyWatcher(root / "policy.yaml"), runtime)
    stop = threading.Event()
    loop = threading.Thread(target=orch.run_forever, args=(stop, 0.1), daemon=True)

    def hot_endpoint() -> str | None:
        rows = [p for p in queries.list_placements(engine)
                if p.model == "bench" and p.pool == "hot"]
        return rows[0].endpoint if rows else None

    def wait(cond: object, timeout: float = 300.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if cond():  # type: ignore[operator]
                return time.monotonic() - start
            time.sleep(0.05)
        raise TimeoutError("bench step timed out")

    try:
        queries.add_counts(engine, [CountDelta("bench", int(time.time() // 60), count=5000)])
        loop.start()
        to_hot = wait(hot_endpoint)
        (inst,) = runtime.list_instances()
        killed_at = time.monotonic()
        runtime.kill(inst)  # type: ignore[attr-defined]
        wait(lambda: hot_endpoint() != inst.endpoint)
        to_cold = time.monotonic() - killed_at  # the kill call itself included
        back = wait(lambda: hot_endpoint() is not None)
        print(f"{kind:8s} runtime: promote -> hot {to_hot:.1f} s; kill -> routed cold "
              f"{to_cold:.2f} s; -> hot again {to_cold + back:.1f} s")
    finally:
        stop.set()
        loop.join(timeout=10)
        for inst in runtime.list_instances():
            runtime.stop(inst, timeout=5)
        orch.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10000)
    parser.add_argument("--runtimes", default="process,docker")
    parser.add_argument("--skip-real", action="store_true", help="only the decide() figure")
    args = parser.parse_args()
    bench_decide(args.models)
    if args.skip_real:
        return
    for kind in args.runtimes.split(","):
        if kind == "docker":
            from orchestrator.docker_runtime import docker_available

            reason = docker_available()
            if reason:
                print(f"docker   runtime: skipped, no engine ({reason})")
                continue
        with tempfile.TemporaryDirectory(prefix=f"bench-orch-{kind}-") as tmp:
            bench_runtime(kind, Path(tmp))


if __name__ == "__main__":
    main()
