"""One error hierarchy for every layer and the wire.

A ``FedError`` carries a stable machine ``code``, a human ``message`` and a ``hint`` saying what to
do next. The runner and the coordinator turn it into a JSON body ``{code, message, hint}`` with the
matching HTTP status; the SDK turns such a body back into the same subclass, so a notebook user sees
the runner's own words rather than an HTTP stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DatasetError",
    "FedError",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RunnerTimeout",
    "RunnerUnavailable",
    "SessionFailed",
    "StepFailed",
    "StepLimitExceeded",
    "UpdateRejected",
    "error_from_body",
]


class FedError(Exception):
    """Base of every error jupyter-fed raises on purpose.

    Parameters
    ----------
    message
        What went wrong, in words a notebook user understands. Never contains data values.
    hint
        What to do about it. Empty when there is nothing useful to say.
    details
        Structured extras (e.g. the offending fields); JSON-serialisable.
    """

    code: ClassVar[str] = "fed_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, hint: str = "", *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details is not None:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(FedError):
    """A configuration (session, model, data, runner) is invalid; ``details`` lists the fields."""

    code = "invalid_config"
    status = 422


class AuthError(FedError):
    """Missing, unknown, expired or revoked credentials."""

    code = "unauthorized"
    status = 401


class PermissionDenied(FedError):
    """Valid credentials that do not allow this request."""

    code = "forbidden"
    status = 403


class NotFoundError(FedError):
    """A dataset, session, task or runner that does not exist."""

    code = "not_found"
    status = 404


class ConflictError(FedError):
    """The request clashes with existing state (duplicate name, reused task id, wrong state)."""

    code = "conflict"
    status = 409


class DatasetError(FedError):
    """A dataset does not meet the data requirements; ``details`` names each offending column."""

    code = "invalid_dataset"
    status = 422


class PayloadTooLarge(FedError):
    """A request body over the receiving side's size limit."""

    code = "payload_too_large"
    status = 413


class RateLimited(FedError):
    """Too many requests (join attempts, queued steps) from one caller in a short time."""

    code = "rate_limited"
    status = 429


class RunnerUnavailable(FedError):
    """A runner could not be reached or did not answer in time."""

    code = "runner_unavailable"
    status = 503


class RunnerTimeout(RunnerUnavailable):
    """A runner accepted a connection or a step but showed no sign of life in time."""

    code = "runner_timeout"
    status = 504


class StepFailed(FedError):
    """A package step raised at the runner; the message summarises the runner's error."""

    code = "step_failed"
    status = 500


class StepLimitExceeded(FedError):
    """A step needs, or took, more time or memory than the runner allows a step.

    Refused before it starts when the package's estimate is over the limit; a running step that
    goes over is stopped (its worker process killed, so its memory is returned).
    """

    code = "step_limit_exceeded"
    status = 422


class UpdateRejected(FedError):
    """A client's update failed validation at the coordinator (NaN, wrong shape, bad count...)."""

    code = "update_rejected"
    status = 422


class SessionFailed(FedError):
    """A session ended failed or cancelled while the caller waited for it."""

    code = "session_failed"
    status = 409


_BY_CODE: dict[str, type[FedError]] = {}


def _index(cls: type[FedError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _index(sub)


def error_from_body(body: Any, status: int = 500) -> FedError:
    """Rebuild the ``FedError`` subclass described by a JSON error body.

    Unknown codes fall back to the class matching the HTTP status, then to ``FedError`` itself, so
    a newer runner never makes an older SDK crash on an error it does not know.
    """
    if not _BY_CODE:
        _index(FedError)
    if not isinstance(body, dict):
        body = {"message": str(body)}
    code = str(body.get("code") or "")
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = next((c for c in _BY_CODE.values() if c.status == status and c is not FedError), FedError)
    err = cls(str(body.get("message") or f"HTTP {status}"), str(body.get("hint") or ""),
              details=body.get("details"))
    if cls.code != code and code:
        err.code = code  # type: ignore[misc]  # keep the runner's more specific code
    return err
