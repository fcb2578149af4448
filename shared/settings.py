"""Settings base for every service: from the environment, one prefix per service, no default secrets.

A variable is looked up with the service's own prefix first (`REGISTRATION_KAFKA_BOOTSTRAP_SERVERS`) and
then with the project-wide `LINDUNGI_` prefix, so an operator sets what all services share once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

COMMON_PREFIX = "LINDUNGI_"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=COMMON_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when stdout is not a terminal, console otherwise"
    )
    http_host: str = "127.0.0.1"
    max_message_bytes: int = Field(default=1_048_576, ge=1024, description="larger records are dead-lettered")
    nik_hash_secret: SecretStr = Field(description="HMAC key for NIK hashes; identical in every service")
    seal_key: SecretStr = Field(
        description="base64 of a 32-byte AES key sealing dead letters (and, in registration, NIKs at rest)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        common = EnvSettingsSource(settings_cls, env_prefix=COMMON_PREFIX)
        return init_settings, env_settings, common, dotenv_settings, file_secret_settings
