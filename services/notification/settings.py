"""Notification settings: `NOTIFICATION_*` first, then the shared `LINDUNGI_*` (see shared/settings.py).

Only what notification adds to `ServiceSettings`, or where its default differs.

No secret has a default: webhook signing secrets belong to each partner and subscriber (kept sealed in the
database), the SMS gateway's secret and the SMTP password come from the environment when those are used.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings
from shared.topics import (
    BUDGET_POSITIONS,
    DEAD_LETTERS,
    ENROLLMENT_OUTCOMES,
    NOTIFICATION_DELIVERIES,
    REGION_AGGREGATES,
)


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True, populate_by_name=True)

    # The shared name (`dead_letters_topic`, as in the other services); NOTIFICATION_DEAD_LETTER_TOPIC, the
    # name this setting had before, is still read so that existing deployments keep their topic.
    dead_letters_topic: str = Field(
        default=DEAD_LETTERS.name,
        validation_alias=AliasChoices(
            "NOTIFICATION_DEAD_LETTERS_TOPIC", "NOTIFICATION_DEAD_LETTER_TOPIC", "LINDUNGI_DEAD_LETTERS_TOPIC"
        ),
    )

    mongodb_database: str = "lindungi_notification"
    http_port: int = 8003
    group_id: str = Field(
        default="lindungi-notification",
        description="consumer group of the outcomes; the aggregates are read by `<group_id>-aggregates`",
    )
    outcomes_topic: str = ENROLLMENT_OUTCOMES.name
    aggregates_topic: str = REGION_AGGREGATES.name
    deliveries_topic: str = NOTIFICATION_DELIVERIES.name
    budget_topic: str = Field(
        default=BUDGET_POSITIONS.name, description="budget positions; read by the group `<group_id>-budget`"
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="where a new consumer group starts; `latest` when joining a system that has history",
    )
    batch_max_records: int = Field(default=200, ge=1, description="records per consumed batch")
    batch_timeout_ms: int = Field(
        default=200, ge=1, description="milliseconds a batch waits to fill (FastStream's own default)"
    )

    # E-mail (SMTP). The native demo points this at deploy/local/mailsink.py, compose at Mailpit.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Lindungi <notifikasi@lindungi.local>"

    # SMS through an HTTP gateway (signed like a webhook). Without a URL, workers are told by e-mail only.
    sms_gateway_url: str | None = None
    sms_gateway_secret: SecretStr | None = None
    sms_sender: str = "LINDUNGI"

    # Delivery: per-channel concurrency, in-flight bound, retries, leases.
    send_timeout: float = Field(default=10.0, gt=0, description="seconds one attempt may take")
    max_attempts: int = Field(default=5, ge=1)
    retry_initial: float = Field(default=2.0, gt=0, description="seconds before the first retry")
    retry_max: float = Field(default=120.0, gt=0, description="longest wait between two attempts, seconds")
    retry_jitter: float = Field(default=2.0, ge=0, description="random seconds added to each wait")
    email_concurrency: int = Field(default=4, ge=1)
    webhook_concurrency: int = Field(default=8, ge=1)
    webhook_endpoint_concurrency: int = Field(
        default=2,
        ge=1,
        description="webhook attempts at once to one endpoint: a slow partner holds no more of the lane",
    )
    sms_concurrency: int = Field(default=4, ge=1)
    channel_capacity: int = Field(
        default=2000,
        ge=1,
        description="deliveries in flight per channel; beyond it the sweeper picks them up",
    )
    lease: float = Field(default=600.0, gt=0, description="seconds a delivery is held by the instance sending it")
    signing_secret_ttl: float = Field(
        default=30.0,
        ge=0,
        description="seconds a webhook signing secret is kept in memory once opened; a change through this "
        "instance's API applies at once, one through another instance within this time (0: never kept)",
    )
    sweep_interval: float = Field(default=15.0, gt=0, description="seconds between ledger sweeps")

    # Coverage milestones and stagnation.
    milestone_thresholds: tuple[int, ...] = Field(default=(25, 50, 75, 100), min_length=1)
    stagnation_period: timedelta = Field(default=timedelta(days=30))
    stagnation_check_interval: float = Field(default=3600.0, gt=0, description="seconds")
    stagnation_levels: tuple[Literal["province", "regency/city", "kecamatan"], ...] = ("regency/city",)

    # Daily digests, sent at this hour in Asia/Jakarta (WIB).
    digest_hour: int = Field(default=7, ge=0, le=23)
    digest_check_interval: float = Field(default=60.0, gt=0, description="seconds")

    # Budget alerts: the share of an allocation reserved that alerts its finance and planning subscribers, and
    # the hour (WIB) of the daily digest of holds waiting.
    budget_thresholds: tuple[int, ...] = Field(default=(80, 100), min_length=1)
    budget_digest_hour: int = Field(default=7, ge=0, le=23)

    seed_file: Path | None = Field(default=None, description="JSON with `partners` and `subscriptions` to load")
    admin_token: SecretStr | None = Field(
        default=None,
        description="when set, changing subscriptions and partners needs `Authorization: Bearer`",
    )

    @model_validator(mode="after")
    def _coherent(self) -> NotificationSettings:
        if any(not 0 < t <= 1000 for t in self.milestone_thresholds):
            raise ValueError("milestone thresholds are percentages of the target, 1..1000")
        if any(not 0 < t <= 1000 for t in self.budget_thresholds):
            raise ValueError("budget thresholds are percentages of the allocation, 1..1000")
        if self.sms_gateway_url and self.sms_gateway_secret is None:
            raise ValueError("an SMS gateway needs NOTIFICATION_SMS_GATEWAY_SECRET to sign its requests")
        # The lease must outlive the longest wait between attempts plus one attempt, or a second instance
        # could pick up a delivery the first is only waiting to retry.
        if self.lease <= self.retry_max + self.retry_jitter + self.send_timeout:
            raise ValueError("lease must be longer than retry_max + retry_jitter + send_timeout")
        return self
