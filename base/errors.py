"""tierserve's errors, one class per TF Serving error code.

Every part raises these at the edge of the module that talks to the outside
(TensorFlow, boto3, Docker, grpc, SQLAlchemy) so the HTTP and gRPC fronts map
them to TF Serving's `{"error": ...}` shape and status in one place.
"""

from __future__ import annotations

from http import HTTPStatus

import grpc


class TierserveError(Exception):
    """Base class. `http_status` and `grpc_code` follow TF Serving's mapping."""

    http_status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    code_name: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


class InvalidArgument(TierserveError):
    http_status = HTTPStatus.BAD_REQUEST
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    code_name = "INVALID_ARGUMENT"


class NotFound(TierserveError):
    http_status = HTTPStatus.NOT_FOUND
    grpc_code = grpc.StatusCode.NOT_FOUND
    code_name = "NOT_FOUND"


class FailedPrecondition(TierserveError):
    http_status = HTTPStatus.BAD_REQUEST
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    code_name = "FAILED_PRECONDITION"


class ResourceExhausted(TierserveError):
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    code_name = "RESOURCE_EXHAUSTED"


class Unavailable(TierserveError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    grpc_code = grpc.StatusCode.UNAVAILABLE
    code_name = "UNAVAILABLE"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(TierserveError):
    http_status = HTTPStatus.GATEWAY_TIMEOUT
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    code_name = "DEADLINE_EXCEEDED"


class Unimplemented(TierserveError):
    http_status = HTTPStatus.NOT_IMPLEMENTED
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
    code_name = "UNIMPLEMENTED"


class Internal(TierserveError):
    pass


_BY_GRPC = {
    cls.grpc_code: cls
    for cls in (InvalidArgument, NotFound, FailedPrecondition, ResourceExhausted,
                Unavailable, DeadlineExceeded, Unimplemented, Internal)
}


def from_grpc_code(code: grpc.StatusCode, message: str) -> TierserveError:
    """The tierserve error for a gRPC status (a model server's answer)."""
    return _BY_GRPC.get(code, Internal)(message)


_BY_NAME = {cls.code_name: cls for cls in _BY_GRPC.values()}


def from_code_name(name: str, message: str) -> TierserveError:
    """The tierserve error for a TF Serving error code name such as 'NOT_FOUND'."""
    return _BY_NAME.get(name, Internal)(message)
