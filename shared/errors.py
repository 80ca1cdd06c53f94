"""Domain errors. Each carries a stable machine code and the HTTP status web maps it to."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFoundError(DomainError):
    code = "not_found"
    http_status = 404


class ConflictError(DomainError):
    code = "conflict"
    http_status = 409


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class JobNotCancellableError(ConflictError):
    code = "job_not_cancellable"


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"
