"""What every `lindungi` command shares: its settings, the console it prints to, how it fails, the services' APIs.

Settings come from `LINDUNGI_*` environment variables; a command reads them when it runs, not at import.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from shared import topics

console = Console()


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINDUNGI_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    registration_url: str = "http://127.0.0.1:8001"
    reporting_url: str = "http://127.0.0.1:8002"
    notification_url: str = "http://127.0.0.1:8003"
    requests_topic: str | None = Field(
        default=None,
        description="publish here instead of the partner's own topic: only for a trusted producer (an operator's "
        "bulk import), which the secured broker's ACLs must allow",
    )
    partner_topic_prefix: str = topics.PARTNER_TOPIC_PREFIX
    outcomes_topic: str = topics.ENROLLMENT_OUTCOMES.name
    budget_topic: str = topics.BUDGET_POSITIONS.name
    dead_letters_topic: str = topics.DEAD_LETTERS.name
    seal_key: SecretStr | None = Field(default=None, description="needed only to replay dead letters")
    admin_token: SecretStr | None = Field(default=None, description="Bearer token for the services' admin APIs")


def settings() -> CliSettings:
    return CliSettings()


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def api_get(url: str) -> Any:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError as error:
        raise fail(f"{url}: {error}") from error
    if response.status_code != 200:
        raise fail(f"{url}: {response.status_code} {response.text[:300]}")
    return response.json()


def admin_headers() -> dict[str, str]:
    headers = {"content-type": "application/json"}
    token = settings().admin_token
    if token is not None:
        headers["authorization"] = f"Bearer {token.get_secret_value()}"
    return headers


def api_post(url: str, body: dict[str, Any]) -> Any:
    try:
        response = httpx.post(url, content=json.dumps(body), headers=admin_headers(), timeout=10)
    except httpx.HTTPError as error:
        raise fail(f"{url}: {error}") from error
    if response.status_code >= 300:
        raise fail(f"{url}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None
