"""The operators' HTTP endpoints: registration's partners, what each may submit, and the budgets.

    GET  /partners    every partner
    POST /partners    create or replace one (JSON body, validated; its region codes must exist)
    GET  /budgets     every budget's position (`?region=32.71` for a region and what lies under it)
    GET  /holds       held requests waiting for a verdict (`?region=`), masked NIK only

When `REGISTRATION_ADMIN_TOKEN` is set, POST and GET /holds need `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

# Imported at run time, not under TYPE_CHECKING: FastStream resolves handler annotations when it wires them.
from faststream.asgi import AsgiResponse, HttpHandler, Request
from faststream.asgi.types import Scope
from pydantic import ValidationError

from services.registration.domain.participation import Partner
from shared.runtime import json_response

WIB = ZoneInfo("Asia/Jakarta")

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.asgi.types import ASGIApp

    from services.registration.domain.ledger import Ledger
    from shared.events import Held
    from shared.regions import Regions


class PartnerStore(Protocol):
    async def load_partners(self) -> dict[str, Partner]: ...

    async def upsert_partner(self, partner: Partner) -> None: ...


class PartnersApi:
    """The `/partners` routes, over the store the app's lifespan creates (asked for at each request; None
    until it has)."""

    def __init__(self, store: Callable[[], PartnerStore | None], regions: Regions, admin_token: str | None) -> None:
        self._store = store
        self._regions = regions
        self._token = admin_token

    def routes(self) -> list[tuple[str, ASGIApp]]:
        return [("/partners", HttpHandler(self.partners, methods=("GET", "POST"), include_in_schema=False))]

    async def partners(self, scope: Scope, request: Request) -> AsgiResponse:
        """`GET /partners` lists partners; `POST /partners` creates or replaces one (validated)."""
        store = self._store()
        if store is None:
            return json_response({"errors": [{"msg": "starting"}]}, 503)
        if scope["method"] == "POST" and not self._authorised(request):
            return json_response({"errors": [{"msg": "a valid admin token is required"}]}, 401)
        if scope["method"] == "GET":
            return json_response([p.model_dump(mode="json") for p in (await store.load_partners()).values()])
        try:
            partner = Partner.model_validate_json(await request.body())
        except ValidationError as error:
            return json_response({"errors": error.errors(include_url=False, include_input=False)}, 422)
        unknown = sorted(code for code in partner.regions if code not in self._regions)
        if unknown:
            return json_response({"errors": [{"msg": "unknown region codes", "codes": unknown}]}, 422)
        await store.upsert_partner(partner)
        return json_response(partner.model_dump(mode="json"))

    def _authorised(self, request: Request) -> bool:
        return authorised(request, self._token)


def authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


class BudgetStore(Protocol):
    async def all_ledgers(self) -> list[Ledger]: ...

    async def list_waiting(self, region_prefix: str | None = None) -> list[Held]: ...


def _region(request: Request) -> str | None:
    values = request.query_params.get("region")  # FastStream gives every value of a parameter
    return values[0] if values else None


def _under(code: str, region: str | None) -> bool:
    return region is None or code == region or code.startswith(region + ".")


class BudgetsApi:
    """`/budgets` and `/holds`: what the finance offices and the CLI (`lindungi budget show`, `lindungi holds
    list`) read. Positions are aggregates; held requests carry the masked NIK, so they need the admin token."""

    def __init__(self, store: Callable[[], BudgetStore | None], admin_token: str | None) -> None:
        self._store = store
        self._token = admin_token

    def routes(self) -> list[tuple[str, ASGIApp]]:
        return [
            ("/budgets", HttpHandler(self.budgets, methods=("GET",), include_in_schema=False)),
            ("/holds", HttpHandler(self.holds, methods=("GET",), include_in_schema=False)),
        ]

    async def budgets(self, scope: Scope, request: Request) -> AsgiResponse:  # noqa: ARG002 - the handler's shape
        store = self._store()
        if store is None:
            return json_response({"errors": [{"msg": "starting"}]}, 503)
        region = _region(request)
        now = datetime.now(UTC)
        today = now.astimezone(WIB).date()
        positions = [
            ledger.position(now, today).model_dump(mode="json")
            for ledger in await store.all_ledgers()
            if _under(ledger.budget.region_code, region)
        ]
        return json_response(sorted(positions, key=lambda p: (p["region_code"], p["fiscal_year"], p["funding_source"])))

    async def holds(self, scope: Scope, request: Request) -> AsgiResponse:  # noqa: ARG002 - the handler's shape
        store = self._store()
        if store is None:
            return json_response({"errors": [{"msg": "starting"}]}, 503)
        if not authorised(request, self._token):
            return json_response({"errors": [{"msg": "a valid admin token is required"}]}, 401)
        held = await store.list_waiting(_region(request))
        return json_response([h.model_dump(mode="json") for h in held])
