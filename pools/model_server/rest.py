"""TF Serving's REST API (FastAPI): status, metadata, predict; metrics at /monitoring/...

Inference (decode, run, encode) happens in a thread pool, never in the event loop.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request, Response

from base import tfs_rest
from base.errors import InvalidArgument, TierserveError
from base.http_errors import error_response, install_error_handlers
from pools.model_server import examples, signatures, tensors
from pools.model_server.manager import ModelManager
from pools.model_server.metrics import UNKNOWN, Metrics
from pools.model_server.model import VersionState

METRICS_PATH = "/monitoring/prometheus/metrics"



def _json(body: Any, status: int = 200) -> Response:
    return Response(tensors.dumps(body), status_code=status, media_type="application/json")


def _status_json(states: list[VersionState]) -> dict[str, Any]:
    return tfs_rest.status_json(
        tfs_rest.VersionStatus(s.version, s.state, s.error.code_name if s.error else "OK",
                               s.error.message if s.error else "")
        for s in states)


class RestApi:
    def __init__(self, manager: ModelManager, metrics: Metrics, workers: int = 8,
                 metrics_path: str = METRICS_PATH) -> None:
        self.manager = manager
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infer")
        # --monitoring_config_file's path; the default one stays (readiness probes use it).
        self.metrics_paths = sorted({METRICS_PATH, metrics_path})

    def app(self) -> FastAPI:
        app = FastAPI(title="tierserve model server", docs_url=None, redoc_url=None,
                      openapi_url=None)
        install_error_handlers(app)
        for path in self.metrics_paths:
            app.add_api_route(path, self.prometheus, methods=["GET"])
        # Without it Starlette would answer /v1/models with a redirect to /v1/models/.
        app.add_api_route("/v1/models", self.no_name, methods=["GET", "POST"])
        app.add_api_route("/v1/models/{rest:path}", self.models, methods=["GET", "POST"])
        return app

    async def no_name(self, request: Request) -> Response:
        # TF Serving's answers: a status request needs a name; anything else is malformed.
        if request.method == "GET":
            return error_response(InvalidArgument("Missing model name in request."))
        return error_response(InvalidArgument(
            f"Malformed request: {request.method} {request.url.path}"))

    async def prometheus(self) -> Response:
        loaded_models, loaded_versions = self.manager.counts()
        self.metrics.loaded_models.set(loaded_models)
        self.metrics.loaded.set(loaded_versions)
        return Response(self.metrics.exposition(), media_type="text/plain; version=0.0.4")

    async def models(self, request: Request) -> Response:
        try:
            # Names come from this server's config: an unknown one is simply not found.
            call = tfs_rest.parse(request.method, request.url.path, check_names=False)
        except InvalidArgument as exc:
            return error_response(exc)
        name, version, label = call.name, call.version, call.label
        started = time.monotonic()
        code = "OK"
        in_flight = self.metrics.in_flight.labels("rest")
        in_flight.inc()
        try:
            if call.kind == "metadata":
                return _json(self._metadata(name, version, label))
            if call.kind == "status":
                return _json(_status_json(self._status(name, version, label)))
            if call.kind == "predict":
                return await self._predict(name, version, label, await request.body())
            return await self._examples(name, version, label, call.kind, await request.body())
        except TierserveError as exc:
            code = exc.code_name
            return error_response(exc)
        finally:
            in_flight.dec()
            model = name if self.manager.has(name) else UNKNOWN
            self.metrics.observe_request(model, "rest", call.kind, code,
                                         time.monotonic() - started)

    def _status(self, name: str, version: int | None, label: str | None) -> list[VersionState]:
        if label is not None:
            return self.manager.labelled_status(name, label)
        return self.manager.status(name, version)

    def _metadata(self, name: str, version: int | None, label: str | None) -> dict[str, Any]:
        version, servable = self.manager.resolve(name, version, label)
        return signatures.metadata_json(name, version, servable.signature_defs)

    async def _predict(self, name: str, version: int | None, label: str | None,
                       body: bytes) -> Response:
        request = tensors.parse_predict(tensors.parse_body(body))
        _, servable = self.manager.resolve(name, version, label)

        def work() -> bytes:
            specs = servable.signature(request.signature_name)
            inputs = tensors.decode_inputs(request, {n: s.dtype for n, s in specs.items()})
            started = time.monotonic()
            outputs = servable.predict(request.signature_name, inputs)
            self.metrics.observe_runtime(name, "predict", time.monotonic() - started)
            return tensors.dumps(tensors.encode_outputs(request.form, outputs))

        loop = asyncio.get_running_loop()
        content = await loop.run_in_executor(self.executor, work)
        return Response(content, media_type="application/json")


    async def _examples(self, name: str, version: int | None, label: str | None, method: str,
                        body: bytes) -> Response:
        signature, rows, context = examples.parse_request(tensors.parse_body(body))
        _, servable = self.manager.resolve(name, version, label)

        def work() -> bytes:
            serialized = examples.serialize_json(rows, context)
            started = time.monotonic()
            outputs = servable.run_examples(signature, method, serialized)
            self.metrics.observe_runtime(name, method, time.monotonic() - started)
            if method == examples.REGRESS:
                return tensors.dumps({"results": examples.regressions(outputs, len(rows))})
            results = examples.classifications(outputs, len(rows))
            return tensors.dumps({"results": [[list(pair) for pair in row] for row in results]})

        loop = asyncio.get_running_loop()
        return Response(await loop.run_in_executor(self.executor, work),
                        media_type="application/json")

