"""Registration settings: `REGISTRATION_` first, then the project-wide `LINDUNGI_` prefix.

Only what differs from `ServiceSettings` (shared/settings.py) is declared here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared import topics
from shared.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", frozen=True)

    mongodb_database: str = "lindungi_registration"
    http_port: int = 8001
    group_id: str = "lindungi-registration"
    requests_topic: str = topics.ENROLLMENT_REQUESTS.name
    outcomes_topic: str = topics.ENROLLMENT_OUTCOMES.name
    budget_topic: str = topics.BUDGET_POSITIONS.name
    partner_outcome_topics: bool = Field(
        default=False,
        description="also publish each outcome to lindungi.partner.<id>.outcomes.v1 (production ACL profile)",
    )
    partner_topic_prefix: str = Field(
        default=topics.PARTNER_TOPIC_PREFIX,
        description="partners' own topics are <prefix><id>.requests.v1 and <prefix><id>.outcomes.v1",
    )
    partner_topics_refresh_ms: int = Field(
        default=5000,
        ge=100,
        description="how often the broker's topic list is read again: a new partner's topic is joined this soon",
    )
    partners_seed_file: Path | None = Field(default=None, description="JSON list of partners upserted at start")
    batch_max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="records per consumed batch: the store's cost is per round trip as much as per document, "
        "so larger batches go faster (500 -> 2000: 530 -> 632 requests/s in bench/); a backlog fills them, "
        "a trickle does not wait for them",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="when set, `POST /partners` needs `Authorization: Bearer <token>`"
    )
