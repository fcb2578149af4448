"""The operators' HTTP endpoints: registration's partners, and what each may submit.

    GET  /partners    every partner
    POST /partners    create or replace one (JSON body, validated; its region codes must exist)

When `REGISTRATION_ADMIN_TOKEN` is set, POST needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Protocol

# Imported at run time, not under TYPE_CHECKING: FastStream resolves handler annotations when it wires them.
from faststream.asgi import AsgiResponse, HttpHandler, Request
from faststream.asgi.types import Scope
from pydantic import ValidationError

from services.registration.domain.participation import Partner
from shared.runtime import json_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.asgi.types import ASGIApp

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
        if self._token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())
