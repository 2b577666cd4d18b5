"""Domain errors raised by services; the API's exception handler maps each to one HTTP status."""


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_payload(self) -> dict:
        if self.field:
            return {"code": self.code, "detail": self.message, "errors": {self.field: [self.message]}}
        return {"code": self.code, "detail": self.message}


class InvalidInput(DomainError):
    """Bad input that only a service can detect; ``errors`` maps fields to messages."""

    status_code = 400
    code = "invalid"

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__("Invalid input.")

    def as_payload(self) -> dict:
        return {"code": self.code, "detail": self.message, "errors": self.errors}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class AdmissionRejected(DomainError):
    """Too many queued jobs: the client should come back after ``retry_after`` seconds."""

    status_code = 429
    code = "too_many_queued_jobs"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class TransientJobError(Exception):
    """A failure worth retrying with backoff (lost connection, device out of memory)."""


class PermanentJobError(Exception):
    """A failure that a retry would repeat; the job fails with ``code``."""

    def __init__(self, message: str, *, code: str = "job_failed"):
        super().__init__(message)
        self.code = code
