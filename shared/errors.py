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

    @property
    def headers(self) -> dict[str, str]:
        return {}


class NotFoundError(DomainError):
    code = "not_found"
    http_status = 404


class ConflictError(DomainError):
    code = "conflict"
    http_status = 409


class InvalidInputError(DomainError):
    code = "validation_error"
    http_status = 422


class UnauthorizedError(DomainError):
    code = "unauthorized"
    http_status = 401


class ForbiddenError(DomainError):
    code = "forbidden"
    http_status = 403


class RateLimitedError(DomainError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after, **(details or {})})
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# jobs
class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class JobNotCancellableError(ConflictError):
    code = "job_not_cancellable"


class IdempotencyKeyReusedError(InvalidInputError):
    """The same Idempotency-Key with a different request: not a retry, so not answered with the first result."""

    code = "idempotency_key_reused"


# identity and access
class InvalidCredentialsError(UnauthorizedError):
    code = "invalid_credentials"


class TokenInvalidError(UnauthorizedError):
    code = "token_invalid"


class TokenExpiredError(UnauthorizedError):
    code = "token_expired"


class TokenRevokedError(UnauthorizedError):
    code = "token_revoked"


class LoginThrottledError(RateLimitedError):
    code = "too_many_login_attempts"


class PasswordPolicyError(InvalidInputError):
    code = "weak_password"


class EmailInvalidError(InvalidInputError):
    code = "invalid_email"


class EmailTakenError(ConflictError):
    code = "email_taken"


class PermissionDeniedError(ForbiddenError):
    code = "permission_denied"


class OrganizationRequiredError(DomainError):
    code = "organization_required"
    http_status = 400


class OrganizationSuspendedError(ForbiddenError):
    code = "organization_suspended"


class PlanLimitExceededError(ForbiddenError):
    code = "plan_limit_exceeded"


class TrialExpiredError(ForbiddenError):
    code = "trial_expired"


class OrganizationNotFoundError(NotFoundError):
    code = "organization_not_found"


class PlanNotFoundError(NotFoundError):
    code = "plan_not_found"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


class DepartmentNotFoundError(NotFoundError):
    code = "department_not_found"


class DepartmentNameTakenError(ConflictError):
    code = "department_name_taken"
