"""The operators' HTTP endpoints.

    GET    /subscriptions[?scope=32.71]      list (addresses masked, secrets never shown)
    POST   /subscriptions                    create or replace one (JSON body, validated)   -> 201
    DELETE /subscriptions?id=<subscription>  remove one                                      -> 204 / 404
    GET    /partners                         partners' webhooks
    POST   /partners                         set a partner's webhook URL and signing secret
    GET    /deliveries[?status=failed&limit=100]   the ledger, newest first: what failed, and why
    POST   /digests/flush                    send today's daily digests now (and the budget holds digests)

When `NOTIFICATION_ADMIN_TOKEN` is set, the POST and DELETE endpoints need `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Protocol

from faststream.asgi import AsgiResponse, HttpHandler, Request
from faststream.asgi.types import Scope
from pydantic import ValidationError

from services.notification import admin
from services.notification.admin import AdminStore
from shared.runtime import json_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from faststream.asgi.types import ASGIApp

    from services.notification.budget_alerts import BudgetAlerts
    from services.notification.service import Notifier

    Endpoint = Callable[[Scope, Request], Awaitable[AsgiResponse]]

_STATUSES = {"pending", "sent", "failed"}


def _first(request: Request, name: str) -> str | None:
    values = request.query_params.get(name)
    return values[0] if values else None


def _error(message: str, status: int) -> AsgiResponse:
    return json_response({"errors": [{"msg": message}]}, status)


def _invalid(error: ValidationError) -> AsgiResponse:
    errors = error.errors(include_url=False, include_input=False)
    return json_response({"errors": errors, "pesan": "permintaan tidak valid", "message": "invalid request"}, 422)


class OperatorStore(AdminStore, Protocol):
    async def list_deliveries(self, status: str | None, limit: int) -> list[dict[str, Any]]: ...


class AdminApi:
    """The endpoints, over the store and the notifier the app's lifespan creates (asked for at each request)."""

    def __init__(
        self,
        store: Callable[[], OperatorStore],
        notifier: Callable[[], Notifier],
        admin_token: str | None,
        *,
        budget_alerts: Callable[[], BudgetAlerts] | None = None,
    ) -> None:
        self._store_of = store
        self._notifier_of = notifier
        self._budget_alerts_of = budget_alerts
        self._token = admin_token

    @property
    def _store(self) -> OperatorStore:
        return self._store_of()

    @property
    def _notifier(self) -> Notifier:
        return self._notifier_of()

    def _authorised(self, scope: Scope, request: Request) -> bool:
        if self._token is None or scope["method"] not in {"POST", "DELETE"}:
            return True
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(supplied.encode(), self._token.encode())

    async def subscriptions(self, scope: Scope, request: Request) -> AsgiResponse:
        """Stakeholder subscriptions: list, create or replace, remove."""
        if not self._authorised(scope, request):
            return _error("admin token required", 401)
        if scope["method"] == "GET":
            items = await self._store.all_subscriptions(_first(request, "scope"))
            return json_response([admin.subscription_view(s) for s in items])
        if scope["method"] == "DELETE":
            return await self._unsubscribe(_first(request, "id"))
        try:
            payload = admin.SubscriptionRequest.model_validate_json(await request.body())
        except ValidationError as error:
            return _invalid(error)
        return json_response(await admin.subscribe(self._store, payload), 201)

    async def _unsubscribe(self, subscription_id: str | None) -> AsgiResponse:
        if not subscription_id:
            return _error("?id=<subscription id> is required", 400)
        if not await admin.unsubscribe(self._store, subscription_id):
            return _error("no such subscription", 404)
        return AsgiResponse(b"", 204)

    async def partners(self, scope: Scope, request: Request) -> AsgiResponse:
        """Partners' webhooks for rejections: list, set."""
        if not self._authorised(scope, request):
            return _error("admin token required", 401)
        if scope["method"] == "GET":
            return json_response([admin.partner_view(p) for p in (await self._store.partner_webhooks()).values()])
        try:
            payload = admin.PartnerWebhookRequest.model_validate_json(await request.body())
        except ValidationError as error:
            return _invalid(error)
        return json_response(await admin.set_partner_webhook(self._store, payload), 201)

    async def deliveries(self, scope: Scope, request: Request) -> AsgiResponse:  # noqa: ARG002
        """The delivery ledger for operators, newest first; `?status=failed` for final failures."""
        status = _first(request, "status")
        if status is not None and status not in _STATUSES:
            return _error(f"status is one of {sorted(_STATUSES)}", 400)
        try:
            limit = min(1000, max(1, int(_first(request, "limit") or 100)))
        except ValueError:
            return _error("limit is a number", 400)
        return json_response(await self._store.list_deliveries(status, limit))

    async def flush_digests(self, scope: Scope, request: Request) -> AsgiResponse:
        """Send the daily digests (events held back, budget holds waiting) now instead of waiting for their hour."""
        if not self._authorised(scope, request):
            return _error("admin token required", 401)
        digests = await self._notifier.flush_digests()
        if self._budget_alerts_of is not None:
            digests += await self._budget_alerts_of().flush_holds_digests()
        return json_response({"digests": digests})

    def routes(self) -> list[tuple[str, ASGIApp]]:
        def handler(func: Endpoint, *methods: str) -> HttpHandler:
            return HttpHandler(func, methods=methods, include_in_schema=False)

        return [
            ("/subscriptions", handler(self.subscriptions, "GET", "POST", "DELETE")),
            ("/partners", handler(self.partners, "GET", "POST")),
            ("/deliveries", handler(self.deliveries, "GET")),
            ("/digests/flush", handler(self.flush_digests, "POST")),
        ]
