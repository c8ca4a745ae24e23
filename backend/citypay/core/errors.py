"""One error shape for every 4xx: {"error": {"code", "message", "field", "value", "accepted"}}."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path


class ApiError(Exception):
    """An error a client can act on: what was wrong, with the value, and what is accepted."""

    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        accepted: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.code = code
        self.message = message
        self.field = field
        self.value = value
        self.accepted = accepted
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
            error["value"] = echoed(self.value)
        if self.accepted is not None:
            error["accepted"] = self.accepted
        return {"error": error}

    def response(self) -> JSONResponse:
        """The answer in the API's error shape, with the refusal's headers (Retry-After)."""
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


class PassedThrough(StarletteHTTPException):
    """An ApiError raised where only an HTTPException gets through: while FastAPI reads a body,
    where it turns any other exception into a 400. The handler answers the ApiError."""

    def __init__(self, refusal: ApiError) -> None:
        super().__init__(refusal.status_code, refusal.message)
        self.refusal = refusal


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Unprocessable(ApiError):
    status_code = 422


# An error echoes at most this much of the value it refuses: a megabyte sent is not sent back.
# The longest value a well-formed request holds, a 65-byte signature (132 characters), is shown
# whole: a client compares it with what it signed.
ECHO_LIMIT = 140


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")  # JSON has neither
    if isinstance(value, str | int | float | bool | None):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def echoed(value: Any) -> Any:
    """The value as an error shows it: as sent if short, else its first ECHO_LIMIT characters
    as a string that says it was cut."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 14_000:
        # str() of an integer is refused past 4,300 digits (about 14,000 bits).
        return f"an integer of {value.bit_length():,} bits (truncated)"
    value = _jsonable(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= ECHO_LIMIT:
        return value
    return f"{text[:ECHO_LIMIT]}... (truncated: {len(text):,} characters)"


# What a request's field accepts, from pydantic's own errors (ours carry it in their context).
_ACCEPTED = {
    "missing": "a value: this field is required",
    "extra_forbidden": "only the fields the request's schema lists",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "list_type": "a JSON array",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "datetime_parsing": "an RFC 3339 date-time (2026-01-31T09:00:00Z) or unix seconds",
    "datetime_type": "an RFC 3339 date-time (2026-01-31T09:00:00Z) or unix seconds",
    "datetime_from_date_parsing": "an RFC 3339 date-time (2026-01-31T09:00:00Z) or unix seconds",
    "datetime_object_invalid": "an RFC 3339 date-time (2026-01-31T09:00:00Z) or unix seconds",
}
_CONTEXT_ACCEPTED = (
    ("pattern", "a string matching {}"),
    ("expected", "one of {}"),
    ("min_length", "at least {} characters"),
    ("max_length", "at most {} characters"),
    ("gt", "greater than {}"),
    ("ge", "at least {}"),
    ("lt", "less than {}"),
    ("le", "at most {}"),
)


def _accepted(error: dict) -> str:
    context = error.get("ctx") or {}
    if "accepted" in context:
        return context["accepted"]
    for key, phrase in _CONTEXT_ACCEPTED:
        if key in context:
            return phrase.format(context[key])
    return _ACCEPTED.get(error.get("type"), error.get("msg", "see the schema"))


# A request's parts, as FastAPI names them in an error's location.
_LOCATIONS = ("path", "query", "header", "cookie")


def validation_refusal(error: RequestValidationError) -> ApiError:
    """The first problem of a request as the API's 4xx: the field (a path or query parameter
    prefixed with where it was), its value and what is accepted; a problem with the body as a
    whole (not JSON, not an object, a rule across fields) names no field."""
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return Unprocessable(
            "malformed_json",
            f"the request body is not valid JSON: {(first.get('ctx') or {}).get('error', '')}",
            accepted="a JSON object",
        )
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    context = first.get("ctx") or {}
    if location in ([], *([where] for where in _LOCATIONS)):  # the body (or a part) as a whole
        return Unprocessable(
            "invalid_body", f"the request body: {first.get('msg')}", accepted=_accepted(first)
        )
    field = ".".join(location)
    return Unprocessable(
        "invalid_field",
        f"{field}: {first.get('msg')}",
        field=field,
        value=context.get("echo", first.get("input")),
        accepted=_accepted(first),
    )


_HTTP_CODES = {
    400: "unreadable_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path: Starlette names only the first route's."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return validation_refusal(error).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if isinstance(error, PassedThrough):
            return await api_error(request, error.refusal)
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = str(error.detail)
        if isinstance(error.__cause__, ValueError):  # FastAPI could not parse the body
            # e.g. an integer of over 4,300 digits; Python's advice after ';' is not the client's
            message = f"the request body could not be read: {str(error.__cause__).split(';')[0]}"
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return JSONResponse(
            ApiError(code, message).body(), status_code=error.status_code, headers=headers
        )
