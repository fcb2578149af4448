"""Settings base for every service: from the environment, one prefix per service, no default secrets.

A variable is looked up with the service's own prefix first (`REGISTRATION_KAFKA_BOOTSTRAP_SERVERS`) and
then with the project-wide `LINDUNGI_` prefix, so an operator sets what all services share once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.crypto import Sealer, parse_keys
from shared.topics import DEAD_LETTERS

COMMON_PREFIX = "LINDUNGI_"


class KafkaSettings(BaseSettings):
    """How to reach the broker and how to log: what every process of the project reads, secrets aside."""

    model_config = SettingsConfigDict(env_prefix=COMMON_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka authentication: PLAINTEXT for the local stack, SASL/SCRAM in the production profile
    # (docs/operations.md), one principal per service.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="SASL_SSL: the CA that signed the broker's certificate (else the system's CAs)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when stdout is not a terminal, console otherwise"
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

    def kafka_client_options(self) -> dict[str, Any]:
        """aiokafka client options for authentication (admin client, plain producers and consumers)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {
            "security_protocol": self.kafka_security_protocol,
            "sasl_mechanism": self.kafka_sasl_mechanism,
            "sasl_plain_username": self.kafka_sasl_username,
            "sasl_plain_password": self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
        }
        if self.kafka_security_protocol == "SASL_SSL":
            options["ssl_context"] = self.kafka_ssl_context()
        return options

    def kafka_ssl_context(self) -> Any:
        """Verifies the broker's certificate and host name against `kafka_ssl_cafile` or the system's CAs."""
        return create_ssl_context(cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None)

    def kafka_security(self) -> BaseSecurity | None:
        """The same for FastStream's broker."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        username = self.kafka_sasl_username or ""
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        use_ssl = self.kafka_security_protocol == "SASL_SSL"
        kinds = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
        context = self.kafka_ssl_context() if use_ssl else None
        return kinds[self.kafka_sasl_mechanism](username, password, use_ssl=use_ssl, ssl_context=context)


class SealKeys(BaseSettings):
    """The AES keys that seal NIKs at rest, dead letters and webhook secrets (`shared.crypto`): one seals,
    every one opens. A service reads them with its settings; an operator's command on their own."""

    model_config = SettingsConfigDict(env_prefix=COMMON_PREFIX, extra="ignore", frozen=True)

    seal_key: SecretStr = Field(description="base64 of a 32-byte AES key: seals, and opens")
    seal_keys_previous: SecretStr | None = Field(
        default=None,
        description="comma-separated keys that only open: the old key while a rotation runs (docs/operations.md)",
    )

    def sealer(self) -> Sealer:
        return Sealer(
            self.seal_key.get_secret_value(),
            parse_keys(self.seal_keys_previous.get_secret_value() if self.seal_keys_previous else None),
        )


class ServiceSettings(KafkaSettings, SealKeys):
    """A service: its store, its HTTP port, its consumer group, and the secrets every service shares."""

    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = Field(description="the service's own database: no other service reads it")
    http_host: str = "127.0.0.1"
    http_port: int
    group_id: str = Field(description="the consumer group: instances of one service share it")
    dead_letters_topic: str = DEAD_LETTERS.name
    create_topics: bool = Field(default=True, description="create missing topics at start-up")
    batch_max_records: int = Field(default=500, ge=1, description="records per consumed batch")
    batch_timeout_ms: int = Field(default=100, ge=1, description="how long a batch waits to fill")
    max_message_bytes: int = Field(default=1_048_576, ge=1024, description="larger records are dead-lettered")
    nik_hash_secret: SecretStr = Field(description="HMAC key for NIK hashes; identical in every service")
