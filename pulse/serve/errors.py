"""The endpoint's failures as OpenAI-format errors: the HTTP status, type and code for an exception
from a model deployment, for a finished generation that failed, and the JSON response carrying it
(4xx: the client's mistake; 429: the queues are full; 503/504: the server's failure)."""

import math
from typing import Any

from fastapi.responses import JSONResponse

from pulse.serve.protocol import APIError


def error_response(err: APIError, retry_after_s: float | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    if err.status in {429, 503} and retry_after_s:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def failure_error(exc: BaseException) -> APIError:
    """The OpenAI-format error for an exception raised by a call to a model deployment."""
    from jinja2 import TemplateError
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError

    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, BackPressureError):
        return APIError(
            429, "The server is busy: too many queued requests; retry later", "rate_limit_exceeded"
        )
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the replica's exception
    if isinstance(exc, TemplateError):  # the model's chat template refused this conversation
        return APIError(400, f"The messages cannot be formatted for this model: {cause}"[:300])
    status = getattr(cause, "http_status", None)  # engine errors that know they are the client's
    if isinstance(status, int) and 400 <= status < 500:
        code, param = getattr(cause, "code", None), getattr(cause, "param", None)
        return APIError(status, str(cause)[:500], code=code, param=param)
    if isinstance(exc, TimeoutError):
        return APIError(504, "Request timed out", "timeout")
    if isinstance(exc, RayActorError | ReplicaUnavailableError | DeploymentUnavailableError):
        return APIError(503, "The model replica is unavailable (it died or restarted); retry", "server_error")
    return APIError(503, "The model failed on this request", "server_error")


def result_error(result: dict[str, Any], timeout_s: float) -> APIError | None:
    """The error a finished ``Generation`` dict stands for, or None when it succeeded."""
    reason = result.get("finish_reason")
    if isinstance(result.get("error"), dict):  # {"status", "message", "code"} from the engine
        err = result["error"]
        status = int(err.get("status", 503))
        err_type = "server_error" if status >= 500 else "invalid_request_error"
        return APIError(status, str(err.get("message", reason))[:500], err_type, code=err.get("code"))
    if reason == "context_length_exceeded":
        return APIError(400, "The prompt is longer than the model's context", code="context_length_exceeded")
    if reason == "timeout":
        return APIError(504, f"Request timed out after {timeout_s:g}s", "timeout")
    if reason == "error":
        return APIError(503, "The model failed on this request", "server_error")
    return None
