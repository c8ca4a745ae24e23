"""The admin dashboard (관리자모드): the page, its JSON, CSV export and a live stream, for the
city's operators: an API key with role operator for the city, or the wallet the deployment names
as the city's administrator (city_admin) signed in with Ethereum."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from sse_starlette.sse import EventSourceResponse

from citypay.admin.export import Language, table_csv
from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import media
from citypay.auth.models import Role
from citypay.chain.deployment import City
from citypay.core.errors import NotFound
from citypay.core.fields import count

router = APIRouter(tags=["admin"])

STATIC = Path(__file__).resolve().parents[2] / "admin" / "static"
# Chart.js as npm installed it (package-lock.json; make setup runs npm ci): served as is.
CHART_JS = Path(__file__).resolve().parents[4] / "node_modules/chart.js/dist/chart.umd.min.js"


def city_operator(city: CityDep, platform: PlatformDep, principal: PrincipalDep) -> City:
    """The city, once the caller is shown to be one of its operators."""
    allow(principal, city=city.code, roles={Role.OPERATOR}, wallets=(city.roles.get("city_admin"),))
    if platform.dashboard is None:
        raise NotFound("dashboard_off", "this backend runs no dashboard")
    return city


OperatedCity = Annotated[City, Depends(city_operator)]
PaymentSeq = count(0, 2**63 - 1, "the last payment (seq) the page has")


@router.get("/admin/{city}", include_in_schema=False)
def dashboard_page(city: CityDep):
    """The page (public: it holds no data; it asks the API below with the operator's key)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/admin/static/{name}", include_in_schema=False)
def dashboard_file(name: str):
    files = {p.name: p for p in STATIC.iterdir() if p.name != "index.html"}
    if name == "chart.umd.min.js":
        if not CHART_JS.exists():
            raise NotFound(
                "chart_js_missing",
                f"Chart.js is not installed at {CHART_JS}",
                accepted="run make setup (npm ci installs it from package-lock.json)",
            )
        return FileResponse(CHART_JS, media_type="text/javascript")
    if name not in files:
        raise NotFound(
            "not_found",
            f"no dashboard file {name}",
            field="name",
            value=name,
            accepted=", ".join(sorted([*files, "chart.umd.min.js"])),
        )
    return FileResponse(files[name])


@router.get("/admin/api/cities/{city}")
def dashboard_city(city: CityDep):
    """Public: the city's names, for the sign-in screen."""
    return {"code": city.code, "name": city.name, "localName": city.local_name}


@router.get("/admin/api/cities/{city}/summary")
def dashboard_summary(city: OperatedCity, platform: PlatformDep):
    """Every figure and table of the city's dashboard, as of the last indexed block."""
    return platform.dashboard.summary(city)


@router.get(
    "/admin/api/cities/{city}/tables/{table}.csv",
    response_class=Response,
    responses={200: {"content": media("text/csv"), "description": "the table as CSV"}},
)
def dashboard_table_csv(
    city: OperatedCity,
    table: str,
    platform: PlatformDep,
    lang: Annotated[Language, Query(description="the language of the column names")] = "ko",
):
    """One table of the dashboard as CSV (UTF-8 with BOM, for Excel)."""
    body = table_csv(platform.dashboard.table(city, table), lang)
    filename = f"{city.code}-{table}-{date.today().isoformat()}.csv"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/admin/api/cities/{city}/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": media("text/event-stream"), "description": "dashboard events"}},
)
async def dashboard_stream(
    city: OperatedCity,
    platform: PlatformDep,
    after: PaymentSeq = 0,
):
    """Server-sent events, after every indexed block: `block` (indexed block and head), `payment`
    for each new payment of the city (oldest first), and `summary` (the whole dashboard) when the
    city's figures changed. A summary is computed once per change, whoever listens."""
    dashboard = platform.dashboard

    async def events():
        version, last_payment = None, after
        with dashboard.changes.listen() as changed:
            while True:
                state = await run_in_threadpool(
                    dashboard.stream_state, city, version=version, after=last_payment
                )
                for payment in state.payments:
                    yield {"event": "payment", "data": json.dumps(payment)}
                    last_payment = payment["seq"]
                if state.summary is not None:
                    yield {"event": "summary", "data": json.dumps(state.summary)}
                version = state.version
                yield {"event": "block", "data": json.dumps(state.block)}
                await changed.wait()
                changed.clear()

    return EventSourceResponse(events(), ping=15)
