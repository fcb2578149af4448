"""How the provision job reaches the broker."""

from __future__ import annotations

from typing import Any, Self

from pydantic import model_validator

from shared.settings import KafkaSettings


class ProvisionSettings(KafkaSettings):
    """How to reach the broker: the same `LINDUNGI_KAFKA_*` variables the services read (shared/settings.py),
    without the secrets a service needs and this job does not."""

    @model_validator(mode="after")
    def _credentials_with_sasl(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError("SASL needs LINDUNGI_KAFKA_SASL_USERNAME and LINDUNGI_KAFKA_SASL_PASSWORD")
        return self

    def client_options(self) -> dict[str, Any]:
        """aiokafka client keyword arguments for the security settings; empty for plain text."""
        return self.kafka_client_options()
