"""What every service process has in common: the broker's middlewares, the HTTP surface, and serving.

Each service's `app.py` builds its own broker, subscribers and lifespan; this module only gives them the same
operational face: `/health` (Kafka and MongoDB answer), `/ready` (started and not draining), `/metrics`
(Prometheus), `/docs/asyncapi` (+ `.json`), and graceful shutdown through uvicorn.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, AsyncAPIRoute, get

# Imported at run time, not under TYPE_CHECKING: FastStream resolves handler annotations when it wires them.
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.logging import configure_logging
from shared.messaging import LogContextMiddleware

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

    from shared.settings import ServiceSettings


S = TypeVar("S", bound="ServiceSettings")


def json_response(body: object, status: int = 200) -> AsgiResponse:
    return AsgiResponse(json.dumps(body, default=str).encode(), status, headers={"content-type": "application/json"})


@dataclass
class Probe:
    """Liveness of a service's dependencies, shared by `/health` and `/ready`."""

    broker: KafkaBroker
    mongo: Callable[[], AsyncMongoClient[Any] | None]
    timeout: float = 3.0
    ready: bool = False
    extra: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)

    async def _mongo_up(self) -> bool:
        client = self.mongo()
        if client is None:
            return False
        try:
            await asyncio.wait_for(client.admin.command("ping"), self.timeout)
        except Exception:  # noqa: BLE001 - any failure is "down"; the reason goes to the logs elsewhere
            return False
        return True

    async def check(self) -> dict[str, bool]:
        checks: dict[str, Awaitable[bool]] = {"kafka": self.broker.ping(self.timeout), "mongodb": self._mongo_up()}
        checks.update({name: probe() for name, probe in self.extra.items()})
        results = await asyncio.gather(*checks.values(), return_exceptions=True)
        return {name: result is True for name, result in zip(checks, results, strict=True)}


def operational_routes(probe: Probe, registry: CollectorRegistry) -> list[tuple[str, ASGIApp]]:
    @get(include_in_schema=False)
    async def health(scope: Scope) -> AsgiResponse:  # noqa: ARG001
        checks = await probe.check()
        up = all(checks.values())
        return json_response({"status": "up" if up else "down", "checks": checks}, 200 if up else 503)

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:  # noqa: ARG001
        checks = await probe.check()
        ok = probe.ready and all(checks.values())
        return json_response({"ready": ok, "checks": checks}, 200 if ok else 503)

    @get(include_in_schema=False)
    async def metrics(scope: Scope) -> AsgiResponse:  # noqa: ARG001
        return AsgiResponse(generate_latest(registry), 200, headers={"content-type": CONTENT_TYPE_LATEST})

    return [("/health", health), ("/ready", ready), ("/metrics", metrics)]


def new_broker(bootstrap_servers: str, service: str, registry: CollectorRegistry, **options: Any) -> KafkaBroker:
    """A broker with log context (event id, topic, partition, offset) and Prometheus metrics."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=f"lindungi-{service}",
        middlewares=(LogContextMiddleware, KafkaPrometheusMiddleware(registry=registry, app_name=service)),
        **options,
    )


def asgi_app(  # noqa: PLR0913 - the app is the sum of these parts
    broker: KafkaBroker,
    probe: Probe,
    registry: CollectorRegistry,
    *,
    title: str,
    description: str = "",
    routes: Sequence[tuple[str, ASGIApp]] = (),
    lifespan: Any = None,
) -> AsgiFastStream:
    return AsgiFastStream(
        broker,
        asgi_routes=[*operational_routes(probe, registry), *routes],
        lifespan=lifespan,
        asyncapi_path=AsyncAPIRoute("/docs/asyncapi", asyncapi_json_path="/docs/asyncapi.json", try_it_out_path=None),
        specification=AsyncAPI(title=title, version="1.0.0", description=description),
    )


def serve(app: AsgiFastStream, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT; uvicorn then stops the app, which drains subscribers before closing."""
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=30)


# A service's garbage is almost all freed by reference counting the moment a batch is done with it: pydantic
# models, dicts and lists make no cycles. CPython's default thresholds (700, 10, 10) nevertheless run a
# collection every 700 allocations and a full one every few thousand requests, and a full one walks the whole
# heap: in registration's domain (parse, decide, serialise a request) that was about a third of the CPU, 270
# -> 190 us per request with the thresholds below. Cycles (asyncio's, an exception's traceback) are still
# collected, only in larger rounds.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Collect cycles in larger rounds, and never look again at what start-up built (modules, schemas,
    reference data: it lives as long as the process)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_service(service: str, settings: S, create_app: Callable[[S], AsgiFastStream]) -> None:
    """`python -m services.<name>`: logging configured, then the app served until SIGTERM."""
    configure_logging(service, settings.log_level, settings.log_format)
    app = create_app(settings)
    tune_gc()
    serve(app, settings.http_host, settings.http_port)
