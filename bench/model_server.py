"""Model server figures: load time, predict latency (REST, gRPC), RSS by models loaded.

    tierserve bench model_server [--models 1,50,200] [--requests 1000]

Builds tiny toy SavedModels (y = a*x), starts `tierserve model-server` empty as a
real process on 127.0.0.1 and drives it as the cold pool does, through
HandleReloadConfigRequest (the list grows by one model per call). Prints:
- load time of one tiny model, p50 over 50: in this process (`Servable(path)`) and
  through the server (one reload RPC adding one model, until it is AVAILABLE);
- predict latency at one client, p50/p99, over REST (httpx, keep-alive) and gRPC
  (official stubs);
- the server's RSS with 1, 50 and 200 models loaded, and after unloading them all.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args
from tierserve import toy_models


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1e3:7.2f} ms   p99 {pct(values, 0.99) * 1e3:7.2f} ms"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reload_request(store: Path, names: list[str]) -> Any:
    from tensorflow_serving.apis import model_management_pb2

    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.SetInParent()
    for name in names:
        request.config.model_config_list.config.add(
            name=name, base_path=str(store / name), model_platform="tensorflow")
    return request


def in_process_load(store: Path, count: int) -> list[float]:
    from pools.model_server.servable import Servable

    times = []
    for i in range(count):
        started = time.perf_counter()
        Servable(store / f"m{i}" / "1")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="1,50,200", help="RSS checkpoints (model counts)")
    parser.add_argument("--loads", type=int, default=50, help="loads timed for the p50")
    parser.add_argument("--requests", type=int, default=1000, help="predict calls per API")
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.models.split(","))
    total = max(checkpoints[-1], args.loads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    work = Path(tempfile.mkdtemp(prefix="tierserve-bench-ms-"))
    store = work / "store"
    started = time.perf_counter()
    for i in range(total):
        toy_models.write_model(store, f"m{i}", {1: float(i + 1)})
    print(f"built {total} toy models in {time.perf_counter() - started:.2f} s")

    local = in_process_load(store, args.loads)
    rest_port, grpc_port = free_port(), free_port()
    proc = ServerProcess(tierserve_command("model-server", *model_server_args(
        port=grpc_port, rest_api_port=rest_port, extra=["--file_system_poll_wait_seconds=0"])),
        ready_url=f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics",
        log_path=work / "model-server.log").wait_ready(timeout=180)
    rest = f"http://127.0.0.1:{rest_port}"
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    rss = {0: rss_mib(proc.pid)}
    try:
        reload_times = []
        loaded: list[str] = []
        # The list grows by one model per reload: each call loads exactly one model.
        for i in range(args.loads):
            loaded.append(f"m{i}")
            started = time.perf_counter()
            models.HandleReloadConfigRequest(reload_request(store, loaded), timeout=300)
            reload_times.append(time.perf_counter() - started)
            if len(loaded) in checkpoints:
                rss[len(loaded)] = rss_mib(proc.pid)

        body = {"instances": [1.0, 2.0, 3.0, 4.0]}
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m0"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([1, 2, 3, 4], np.float32)))
        rest_times, grpc_times = [], []
        with httpx.Client(base_url=rest, timeout=30) as client:
            for i in range(args.requests + 50):
                started = time.perf_counter()
                response = client.post("/v1/models/m0:predict", json=body)
                if i >= 50:
                    rest_times.append(time.perf_counter() - started)
                response.raise_for_status()
        for i in range(args.requests + 50):
            started = time.perf_counter()
            predictions.Predict(request, timeout=30)
            if i >= 50:
                grpc_times.append(time.perf_counter() - started)

        big = [c for c in checkpoints if c > len(loaded)]
        bulk_time = None
        for count in big:
            names = [f"m{i}" for i in range(count)]
            started = time.perf_counter()
            models.HandleReloadConfigRequest(reload_request(store, names), timeout=600)
            bulk_time = (count - len(loaded), time.perf_counter() - started)
            loaded = names
            rss[count] = rss_mib(proc.pid)
        # The cold pool's eviction: the same list less one model, ten times.
        evict_times = []
        for _ in range(10):
            loaded = loaded[1:]
            started = time.perf_counter()
            models.HandleReloadConfigRequest(reload_request(store, loaded), timeout=300)
            evict_times.append(time.perf_counter() - started)
        models.HandleReloadConfigRequest(reload_request(store, []), timeout=300)
        time.sleep(12)  # the background memory release runs at most every 10 s
        after_unload = rss_mib(proc.pid)
    finally:
        channel.close()
        proc.stop()

    print()
    print(f"load one tiny model, in process (Servable)   p50 {pct(local, 0.5) * 1e3:7.2f} ms "
          f"over {len(local)}")
    print(f"load one tiny model, reload RPC -> AVAILABLE p50 {pct(reload_times, 0.5) * 1e3:7.2f} "
          f"ms over {len(reload_times)} (p99 {pct(reload_times, 0.99) * 1e3:.2f} ms)")
    if bulk_time:
        print(f"one reload adding {bulk_time[0]} models (parallel loads): {bulk_time[1]:.2f} s")
    print(f"reload unloading one of {len(loaded) + 1} models: p50 "
          f"{pct(evict_times, 0.5) * 1e3:.1f} ms over {len(evict_times)}")
    print(f"predict REST, one client ({len(rest_times)} calls)  {ms(rest_times)}")
    print(f"predict gRPC, one client ({len(grpc_times)} calls)  {ms(grpc_times)}")
    for count, value in sorted(rss.items()):
        print(f"server RSS with {count:4d} models loaded: {value:8.1f} MiB")
    print(f"server RSS after unloading them all:  {after_unload:8.1f} MiB")
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
