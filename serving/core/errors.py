"""Status codes and errors, with the one table that maps them to HTTP (TF Serving `ToHTTPStatusCode`)."""
from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """`tensorflow.error.Code`; gRPC's status codes share the numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A failed request or load: a status code plus the exact message clients see."""

    code = Code.UNKNOWN

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def status_string(self) -> str:
        """absl `Status::ToString()`, used where TF Serving nests one status in another's message."""
        return f"{self.code.name}: {self.message}"

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


class InvalidArgumentError(ServingError):
    code = Code.INVALID_ARGUMENT


class NotFoundError(ServingError):
    code = Code.NOT_FOUND


class UnavailableError(ServingError):
    code = Code.UNAVAILABLE


class UnimplementedError(ServingError):
    code = Code.UNIMPLEMENTED


class DeadlineExceededError(ServingError):
    code = Code.DEADLINE_EXCEEDED


class FailedPreconditionError(ServingError):
    code = Code.FAILED_PRECONDITION


class InternalError(ServingError):
    code = Code.INTERNAL
