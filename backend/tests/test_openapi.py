"""The OpenAPI document tells the truth, and the server keeps to it: timestamps with their UTC
offset, every error an operation answers in the API's error shape, the credentials each takes,
the rules of addresses, card numbers, PINs and numbers, the QR images' media types, request
bodies that refuse unknown fields and are bounded in size, and 405 with Allow."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conftest import CITY, bearer, wait_for_status
from test_relay import body, post, signed

RFC3339_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def schema(api) -> dict:
    return api.get("/openapi.json").json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


# --- timestamps -------------------------------------------------------------------------------


def test_every_timestamp_answered_has_its_utc_offset(api, keys, city, resident, merchant):
    accepted = post(api, signed(city, resident, merchant, 1_000))
    assert accepted.status_code == 202
    done = wait_for_status(api, accepted.json())  # a GET: the row read back from the database
    by_id = api.get(f"/v1/payments/{done['id']}", headers=bearer(keys["auditor"])).json()
    invoice = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": 1_000},
        headers=bearer(keys["pos"]),
    ).json()
    invoice_again = api.get(f"/v1/cities/{CITY}/invoices/{invoice['invoiceId']}").json()
    stamps = [
        accepted.json()["createdAt"],
        done["createdAt"],
        done["updatedAt"],
        by_id["createdAt"],
        invoice["expiresAt"],
        invoice_again["expiresAt"],
    ]
    assert all(RFC3339_WITH_OFFSET.match(stamp) for stamp in stamps), stamps
    assert datetime.fromisoformat(done["createdAt"]) == datetime.fromisoformat(
        accepted.json()["createdAt"]
    )


# --- errors -----------------------------------------------------------------------------------


def test_every_error_an_operation_documents_is_in_the_apis_shape(schema):
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message", "field", "value", "accepted"} <= set(error["properties"])
    for name, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                reference = response["content"]["application/json"]["schema"]["$ref"]
                assert reference == "#/components/schemas/ErrorBody", (name, status)


@pytest.mark.parametrize(
    ("operation", "statuses"),
    [
        ("POST /v1/cities/{city}/payments", {"400", "404", "409", "410", "413", "422"}),
        ("GET /v1/payments/{payment_id}", {"401", "403", "404", "422"}),
        ("POST /v1/cities/{city}/card-payments", {"401", "403", "409", "413", "422", "423"}),
        ("POST /v1/cities/{city}/deposits", {"400", "401", "403", "404", "409", "413", "422"}),
        ("GET /v1/auth/me", {"401", "403"}),
    ],
)
def test_operations_document_the_errors_they_answer(schema, operation, statuses):
    documented = dict(_operations(schema))[operation]["responses"]
    assert statuses <= set(documented), sorted(documented)


def test_a_body_that_is_not_an_object_or_breaks_a_rule_names_no_field_and_no_none(
    api, city, resident, merchant
):
    for sent in ([], "a string", 5):
        error = api.post(f"/v1/cities/{CITY}/payments", json=sent).json()["error"]
        assert error["code"] == "invalid_body" and "field" not in error
        assert error["message"].startswith("the request body:")
    unsigned = body(signed(city, resident, merchant, 1_000))
    for key in ("v", "r", "s"):
        del unsigned[key]
    refused = api.post(f"/v1/cities/{CITY}/payments", json=unsigned)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_body" and "give the signature" in error["message"]
    assert not error["message"].startswith("None")


# --- credentials ------------------------------------------------------------------------------


def test_the_credentials_each_operation_takes_are_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == schemes["walletSession"]["scheme"] == "bearer"
    assert schemes["bankSignature"] == schemes["bankSignature"] | {
        "type": "apiKey",
        "in": "header",
        "name": "X-Citypay-Signature",
    }
    operations = dict(_operations(schema))
    assert operations["POST /v1/cities/{city}/deposits"]["security"] == [
        {"apiKey": [], "bankSignature": [], "bankTimestamp": []}
    ]
    assert operations["POST /v1/cities/{city}/merchants/{merchant}/cashouts"]["security"] == [
        {"walletSession": []}
    ]
    assert operations["POST /v1/cities/{city}/card-payments"]["security"] == [{"apiKey": []}]
    assert operations["GET /v1/payments/{payment_id}"]["security"] == [
        {"apiKey": []},
        {"walletSession": []},
    ]
    assert "security" not in operations["POST /v1/cities/{city}/payments"]  # the payer signed
    for name, operation in operations.items():
        if "security" in operation:
            assert {"401", "403"} <= set(operation["responses"]), name


# --- the rules of values ----------------------------------------------------------------------


def test_addresses_card_numbers_pins_and_number_bounds_are_in_the_schema(schema):
    models = schema["components"]["schemas"]
    payment = models["AuthorizationIn"]["properties"]
    assert payment["from"]["pattern"] == payment["to"]["pattern"] == "^0x[0-9a-fA-F]{40}$"
    assert "EIP-55" in payment["to"]["description"]
    assert (payment["value"]["minimum"], payment["value"]["maximum"]) == (1, 2**64 - 1)
    assert payment["validBefore"]["maximum"] == 2**256 - 1
    assert "1 day" in payment["validBefore"]["description"]
    card = models["CardPayment"]["properties"]
    assert re.fullmatch(card["card"]["pattern"], "9410 1234 5678 9012")
    assert not re.fullmatch(card["card"]["pattern"], "9410 1234 5678 901")
    assert card["pin"]["pattern"] == "^[0-9]{4,6}$"
    by_id = dict(_operations(schema))["GET /v1/payments/{payment_id}"]["parameters"][0]
    assert by_id["schema"]["maximum"] == 2**31 - 1
    for name, model in models.items():
        if name.endswith(("In", "Create", "Issue", "Unlock", "Payment", "Notice")):
            assert model.get("additionalProperties") is False, name


def test_the_qr_images_media_types_are_documented_and_served(api, schema, merchant):
    operations = dict(_operations(schema))
    for name in (
        "GET /v1/cities/{city}/merchants/{merchant}/qr",
        "GET /v1/cities/{city}/invoices/{invoice_id}",
    ):
        content = operations[name]["responses"]["200"]["content"]
        assert {"application/json", "image/png", "image/svg+xml"} <= set(content), name
    path = f"/v1/cities/{CITY}/merchants/{merchant.address}/qr"
    assert api.get(path, params={"format": "png"}).headers["content-type"] == "image/png"
    assert api.get(path, params={"format": "svg"}).headers["content-type"] == "image/svg+xml"


# --- what the server refuses ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH"])
def test_an_unsupported_method_is_a_405_naming_every_allowed_one(api, method):
    response = api.request(method, f"/v1/cities/{CITY}/deposits")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # two routes share the path
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_request_body_refuses_a_field_it_does_not_know(api, keys, merchant):
    response = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": 1_000, "expiresInn": 60},
        headers=bearer(keys["pos"]),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["field"], error["value"]) == ("expiresInn", 60)


def test_a_body_over_64_kib_is_a_413_whether_its_length_is_declared_or_not(api):
    too_big = b'{"x": "' + b"a" * 70_000 + b'"}'
    declared = api.post(
        f"/v1/cities/{CITY}/payments",
        content=too_big,
        headers={"content-type": "application/json"},
    )
    chunked = api.post(
        f"/v1/cities/{CITY}/payments",
        content=iter([too_big[:40_000], too_big[40_000:]]),  # no Content-Length: chunked
        headers={"content-type": "application/json"},
    )
    for response in (declared, chunked):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and "65,536 bytes" in error["accepted"]
