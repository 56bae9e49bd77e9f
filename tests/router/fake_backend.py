"""A tiny TF-Serving-shaped backend for router unit tests: `python -m tests.router.fake_backend
--port P --a A --name NAME [--delay S]`. predict answers y = a*x; it echoes what it saw (path,
and for predict the request headers). Models named bogus* are not found (404)."""

from __future__ import annotations

import argparse
import asyncio
import json

import uvicorn
from fastapi import FastAPI, Request, Response

# The trace context a predict answer carries: a backend's own span, for the router to pass on.
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def create(a: float, name: str, delay: float) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models/{model}")
    async def status(model: str) -> dict[str, object]:
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    @app.get("/admin/models/{model}/versions")
    async def versions(model: str) -> Response:
        """As the cold pool answers: `lab*` has versions 1, 2 and the label stable -> 1;
        `gone*` is not in the store; any other model is not known (404: no such call)."""
        if model.startswith("lab"):
            facts = {"model": model, "in_store": True, "versions": [1, 2],
                     "labels": {"stable": 1}}
        elif model.startswith("gone"):
            facts = {"model": model, "in_store": False, "versions": [], "labels": {}}
        else:
            return Response(json.dumps({"detail": "Not Found"}), status_code=404,
                            media_type="application/json")
        return Response(json.dumps(facts), media_type="application/json")

    @app.get("/admin/models")
    async def cache_listing(request: Request) -> dict[str, object]:
        # The cold pool's cache listing, as the dashboard reads it; echoes the credentials.
        return {"models": [], "authorization": request.headers.get("authorization")}

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def any_call(request: Request, path: str) -> Response:
        if delay:
            await asyncio.sleep(delay)
        body = await request.body()
        if path.startswith("models/bogus"):  # as the cold pool answers a name not in the store
            return Response(json.dumps({"error": "Servable not found for request: Latest(x)"}),
                            status_code=404, media_type="application/json")
        if path.endswith(":predict"):
            try:
                instances = json.loads(body)["instances"]
            except (ValueError, KeyError):
                return Response(json.dumps({"error": "bad body"}), status_code=400,
                                media_type="application/json")
            payload = {"predictions": [a * x for x in instances], "backend": name,
                       "path": "/v1/" + path, "headers": dict(request.headers)}
            # Headers of its own, as the cold pool sends: a proxy passes these on.
            return Response(json.dumps(payload), media_type="application/json",
                            headers={"X-Tierserve-Cache": "hit", "X-Tierserve-Pool": name,
                                     "traceparent": TRACEPARENT})
        return Response(json.dumps({"backend": name, "path": "/v1/" + path}),
                        media_type="application/json")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--a", type=float, default=1.0)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(create(args.a, args.name, args.delay), host="127.0.0.1", port=args.port,
                log_level="warning")
