"""The one place that turns tierserve errors into TF Serving's JSON error shape."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from base.errors import TierserveError, Unavailable


def error_response(exc: TierserveError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(exc.body(), status_code=int(exc.http_status), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves the app as `{"error": "..."}` with TF Serving's status."""

    async def on_tierserve(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TierserveError)
        return error_response(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": json.dumps(exc.errors(), default=str)}, status_code=422)

    app.add_exception_handler(TierserveError, on_tierserve)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
