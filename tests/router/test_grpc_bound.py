"""The gRPC front in process: the in-flight bound it shares with REST, and its answers when
the cold pool cannot be reached (no model server needed)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc import aio
from tensorflow_serving.apis import model_pb2

from base.procs import free_port
from db.queries import make_engine
from router.app import create_app
from router.config import RouterConfig

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def predict_bytes(name: str) -> bytes:
    spec = model_pb2.ModelSpec(name=name).SerializeToString()
    return b"\x0a" + bytes([len(spec)]) + spec


async def test_bound_shared_with_rest_and_cold_pool_unreachable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'router.db'}")
    config = RouterConfig(cold_url="http://127.0.0.1:9", cold_grpc=f"127.0.0.1:{free_port()}",
                          max_in_flight=2, flush_interval=60.0, grpc_port=0)
    app = create_app(config, engine)
    async with app.router.lifespan_context(app):
        state = app.state.router
        async with aio.insecure_channel(f"127.0.0.1:{state.grpc_port}") as channel:
            call = channel.unary_unary(PREDICT)
            app.frontend.in_flight = 2  # two REST requests being answered
            with pytest.raises(aio.AioRpcError) as caught:
                await call(predict_bytes("m"), timeout=10)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "router overloaded: 2 requests in flight" in (caught.value.details() or "")
            assert state.metrics.registry.get_sample_value(
                "tierserve_router_shed_requests_total") == 1
            app.frontend.in_flight = 0
            with pytest.raises(aio.AioRpcError) as caught:
                await call(predict_bytes("m"), timeout=10)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "cold pool unreachable" in (caught.value.details() or "")
            assert app.frontend.in_flight == 0
            # Counted as a failed request of its model, as REST counts a 503.
            assert state.counter.pending_requests() == 1
            unknown = channel.unary_unary("/tensorflow.serving.PredictionService/Nope")
            with pytest.raises(aio.AioRpcError) as caught:
                await unknown(b"", timeout=10)
            assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
