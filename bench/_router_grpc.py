"""bench router's gRPC load: TF Serving Predict calls from one grpc.aio client, as bytes."""

from __future__ import annotations

import asyncio
import time

from grpc import aio

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def predict_bytes(model: str, xs: list[float]) -> bytes:
    """A serialized PredictRequest for the toy model (`x`: a [n] float tensor)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(xs, dtype=tf.float32))
    return request.SerializeToString()


async def _load(target: str, body: bytes, requests: int,
                concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = requests
    async with aio.insecure_channel(target) as channel:
        call = channel.unary_unary(PREDICT)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await call(body, timeout=60)  # an error status raises: the round fails
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def grpc_load(target: str, body: bytes, requests: int,
              concurrency: int) -> tuple[list[float], float]:
    """(latency of each call, seconds of the round) for `requests` Predict calls."""
    return asyncio.run(_load(target, body, requests, concurrency))
