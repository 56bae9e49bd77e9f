"""The model store: listing and download times, local folder vs moto's S3 server over HTTP.

    .venv/bin/python bench/store.py            # 200 toy models
    tierserve bench store --models 1000

Prints p50/p99 of `download` (one toy SavedModel version into a fresh folder, atomic rename
included), the time of `list_models` and `list_versions`, and how long an unreachable S3
endpoint takes to answer Unavailable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.errors import Unavailable
from base.procs import free_port
from pools.store import ModelStore, open_store
from testkit import stores as testing


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(label: str, store: ModelStore, names: list[str], downloads: int, work: Path) -> None:
    listing = timed(store.list_models)
    versions = statistics.median(timed(lambda n=n: store.list_versions(n)) for n in names[:20])
    times = [timed(lambda i=i: store.download(names[i % len(names)], 1, work / label / str(i)))
             for i in range(downloads)]
    print(f"{label:6} list_models ({len(names)} models) {listing * 1e3:7.1f} ms | "
          f"list_versions p50 {versions * 1e3:5.2f} ms | download p50 "
          f"{quantile(times, 0.5) * 1e3:6.1f} ms p99 {quantile(times, 0.99) * 1e3:6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--downloads", type=int, default=50)
    args = parser.parse_args()
    os.environ.update(testing.S3_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = [f"m{i:05d}" for i in range(args.models)]
        root = testing.make_local_store(work / "store", {n: {1: 1.0} for n in names})
        size = open_store(str(root)).version_size(names[0], 1)
        print(f"toy model version: {size} bytes")
        measure("local", open_store(str(root)), names, args.downloads, work)
        moto, endpoint = testing.start_moto(work)
        try:
            client = testing.s3_client(endpoint)
            client.create_bucket(Bucket="bench")
            testing.upload_tree(client, "bench", "models", root)
            measure("s3", open_store("s3://bench/models", endpoint_url=endpoint), names,
                    args.downloads, work)
        finally:
            moto.stop()
        dead = open_store("s3://bench/models", endpoint_url=f"http://127.0.0.1:{free_port()}")
        start = time.perf_counter()
        try:
            dead.list_models()
        except Unavailable:
            print(f"unreachable endpoint -> Unavailable after "
                  f"{(time.perf_counter() - start) * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
