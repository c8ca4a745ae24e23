"""What the OpenAPI document says beyond the models: every error an operation answers, in the
API's one error shape; who may call it (securitySchemes and each operation's `security`); and
the media types of answers that are not JSON.

Most of it follows from the route itself (`documented`): a body can be unreadable (400), too large
(413) or invalid (422); a path can name a city or record that does not exist (404); a route that
asks for a principal refuses a caller without credentials (401) or without the right (403). A
route declares only what is its own: conflicts (409), an expired invoice (410), a locked card
(423), with `errors(...)`, and credentials other than "an API key or a wallet's session" with
`security(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from citypay.api.auth import get_principal
from citypay.api.surge import exempt
from citypay.core.fields import BOUNDS


class ErrorDetail(BaseModel):
    code: str = Field(description="what went wrong, for programs: e.g. invalid_field, expired")
    message: str = Field(description="what went wrong, for people")
    field: str | None = Field(
        default=None,
        description="the field at fault: a body field by name, a path or query parameter as "
        "path.NAME or query.NAME, a header by its name; absent when the body as a whole is",
    )
    value: Any = Field(
        default=None,
        description="the value refused, as sent; cut to its first 140 characters with "
        "'... (truncated: N characters)' when longer; a PIN or card number masked",
    )
    accepted: str | None = Field(default=None, description="what would be accepted instead")


class ErrorBody(BaseModel):
    """Every 4xx: {"error": {"code", "message", "field", "value", "accepted"}}; some errors add
    what the client can act on (a card's attemptsLeft)."""

    error: ErrorDetail


_MEANING = {
    400: "The request could not be read: a body this server cannot parse (e.g. an integer of "
    "over 4,300 digits), or a header in the wrong form.",
    401: "No credentials, or credentials that are unknown, revoked, expired or do not match "
    "(a wrong signature or PIN).",
    403: "The credentials are valid but do not admit this: `accepted` says whose would.",
    404: "No such city, or no such record in it.",
    409: "It conflicts with what is recorded or on chain: a nonce or invoice already used, "
    "the same id with other terms, a paused city.",
    410: "Gone: the invoice expired.",
    413: "The body is larger than the server takes (MAX_REQUEST_BODY_BYTES, 64 KiB by default; "
    "8 MiB for a program payout's recipient list).",
    422: "A field, parameter or the body as a whole is invalid, or the chain would refuse it: "
    "`field`, `value` and `accepted` say which and what is accepted. A body that is not JSON "
    "is code malformed_json; a body that is not an object, or breaks a rule across fields, is "
    "code invalid_body.",
    415: "The body's media type is not the one the operation takes (`accepted` names it).",
    423: "The card is locked after too many wrong PINs: an operator unlocks it.",
    429: "Too many requests (code rate_limited: more than RATE_LIMIT_PER_KEY from one API key "
    "or session, RATE_LIMIT_PER_ADDRESS from one client address, or RATE_LIMIT_PER_WALLET "
    "payments from one wallet; code intake_full: PAYMENT_INTAKE_LIMIT payments wait for the "
    "relayer). Nothing was done: send the same request again after the Retry-After header's "
    "seconds.",
    502: "The bank answered with what the platform will not record: a custody statement not "
    "signed by the bank's key the city named (code statement_not_the_banks).",
    503: "The chain node does not answer (code chain_unavailable, with Retry-After): nothing was "
    "recorded; send the same request again. Also a duty account of the backend that lacks its "
    "role on chain (code duty_not_authorized), and the bank not answering where it is asked "
    "(code bank_unavailable).",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these error codes, each in the API's error shape."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


# --- who may call what --------------------------------------------------------------------------

API_KEY, SESSION, BANK_SIGNATURE = "apiKey", "walletSession", "bankSignature"
BANK_TIMESTAMP = "bankTimestamp"

SECURITY_SCHEMES = {
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cpk_<43 characters>",
        "description": "An API key with a role (operator, bank, auditor, pos) and usually a "
        "city, made with `python -m citypay.auth create`: `Authorization: Bearer cpk_...`.",
    },
    SESSION: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cps_<43 characters>",
        "description": "A wallet signed in with Ethereum (EIP-4361): the token from "
        "POST /v1/auth/siwe, `Authorization: Bearer cps_...`; it acts for its own address.",
    },
    BANK_SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Citypay-Signature",
        "description": "The bank's signature of a deposit notification: "
        "sha256=<hex of HMAC-SHA256(webhook secret, '<X-Citypay-Timestamp>.<raw body>')>.",
    },
    BANK_TIMESTAMP: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Citypay-Timestamp",
        "description": "When the bank signed, in unix seconds: refused when further than "
        "DEPOSIT_TIMESTAMP_TOLERANCE (300 s) from the server's clock.",
    },
}
# An operation that asks for a principal and declares nothing else: either kind of bearer token.
KEY_OR_SESSION = [{API_KEY: []}, {SESSION: []}]


def security(*requirements: list[str]) -> dict[str, Any]:
    """A route's `openapi_extra` naming the credentials it admits: each requirement is a list of
    schemes sent together; any one requirement will do."""
    return {"security": [{scheme: [] for scheme in schemes} for schemes in requirements]}


# --- media types --------------------------------------------------------------------------------


def media(*types: str) -> dict[str, dict[str, Any]]:
    """`content` entries for answers that are not JSON: images, CSV, event streams."""
    binary = {"image/png"}
    return {
        kind: {"schema": {"type": "string"} | ({"format": "binary"} if kind in binary else {})}
        for kind in types
    }


# --- the whole document -------------------------------------------------------------------------


def _dependants(route: APIRoute) -> Iterator[Dependant]:
    """The route's dependant and every dependency's, nested: the city is CityDep's parameter."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        yield dependant
        pending.extend(dependant.dependencies)


def _asks_for_principal(route: APIRoute) -> bool:
    return any(dependant.call is get_principal for dependant in _dependants(route))


def _derived_errors(route: APIRoute) -> list[int]:
    codes = []
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        codes += [400, 413, 422]
    if any(dependant.path_params for dependant in _dependants(route)):
        codes += [404, 422]
    if any(dependant.query_params for dependant in _dependants(route)):
        codes += [422]
    if _asks_for_principal(route):
        codes += [401, 403]
    return codes


def documented(router: APIRouter) -> APIRouter:
    """The router, each of its routes given the errors its shape implies and the bearer tokens
    it admits unless it says otherwise. Before the router is included: the app copies them."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        # Any route may find the chain node down (api/unavailable.py), and any but the exempt
        # ones may be rate limited (api/surge.py).
        limited = set() if all(exempt(m, route.path) for m in route.methods) else {429}
        implied = errors(*sorted({*_derived_errors(route), 503, *limited}))
        route.responses = implied | route.responses
        if _asks_for_principal(route):
            route.openapi_extra = {"security": KEY_OR_SESSION} | (route.openapi_extra or {})
    return router


def _exact_bounds(node: Any) -> None:
    """FastAPI passes the document through its OpenAPI model, whose bounds are floats: the
    token's MAX_SUPPLY and a uint256's maximum came out rounded up, past the bound. The exact
    integers are put back (each whole-number type registers its bounds in fields.BOUNDS)."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum"):
            if isinstance(node.get(key), float) and node[key] in BOUNDS:
                node[key] = BOUNDS[node[key]]
        for child in node.values():
            _exact_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_bounds(child)


def _name_the_cities(schema: dict[str, Any], cities: list[str]) -> None:
    """Every `{city}` parameter lists the codes this backend's deployment serves (any other is a
    404 unknown_city)."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "city":
                    parameter["schema"] |= {"enum": cities}
                    parameter["description"] = "the city's code, as the deployment names it"


def serve_openapi(app: FastAPI) -> None:
    """The app's document, with the security schemes, the cities served, and without FastAPI's
    own error models (no operation answers them). Made on first request, when the deployment
    is known."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema["components"]["securitySchemes"] = SECURITY_SCHEMES
            for unused in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(unused, None)
            _exact_bounds(schema)
            platform = getattr(app.state, "platform", None)
            if platform is None:  # the document asked for without a running app (a tool)
                return schema
            _name_the_cities(schema, sorted(platform.deployment.cities))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
