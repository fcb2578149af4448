"""`python -m provision` without a broker: settings, the plan, and giving up at its deadline."""

from __future__ import annotations

import asyncio
import socket

import pytest
from deploy_files import ROOT
from pydantic import ValidationError

from provision import AclFile, ProvisionError, ProvisionSettings, connect, main, plan
from shared.topics import CATALOGUE

ACLS = ROOT / "deploy" / "compose" / "prod" / "acls.toml"


def test_plain_text_needs_no_client_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINDUNGI_KAFKA_SECURITY_PROTOCOL", raising=False)
    assert ProvisionSettings().client_options() == {}


def test_sasl_settings_become_aiokafka_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINDUNGI_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LINDUNGI_KAFKA_SASL_USERNAME", "admin")
    monkeypatch.setenv("LINDUNGI_KAFKA_SASL_PASSWORD", "not-a-real-password")
    assert ProvisionSettings().client_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "admin",
        "sasl_plain_password": "not-a-real-password",
    }


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINDUNGI_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.delenv("LINDUNGI_KAFKA_SASL_USERNAME", raising=False)
    monkeypatch.delenv("LINDUNGI_KAFKA_SASL_PASSWORD", raising=False)
    with pytest.raises(ValidationError, match="LINDUNGI_KAFKA_SASL_USERNAME"):
        ProvisionSettings()


def test_the_plan_lists_every_topic_and_acl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--plan", "--acls", str(ACLS)]) == 0
    out = capsys.readouterr().out
    for topic in CATALOGUE:
        assert f"{topic.name}  partitions={topic.partitions}" in out
    assert "lindungi.partner.pemkot-bogor.outcomes.v1" in out
    assert "User:partner.pemkot-bogor may WRITE topic lindungi.partner.pemkot-bogor.requests.v1" in out
    assert out.count(" may ") == len(AclFile.load(ACLS).bindings())


def test_without_acls_the_plan_is_the_catalogue() -> None:
    text = plan(CATALOGUE, ())
    assert "acls:" not in text
    assert len(text.splitlines()) == 1 + len(CATALOGUE)


def test_a_broker_that_never_answers_fails_at_the_deadline() -> None:
    with socket.socket() as s:  # a free port, closed again: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ProvisionSettings(kafka_bootstrap_servers=f"127.0.0.1:{port}")
    with pytest.raises(ProvisionError, match=f"no broker answered at 127.0.0.1:{port} within 1s"):
        asyncio.run(connect(settings, max_wait=1.0))


def test_a_failure_is_an_exit_code_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LINDUNGI_LOG_FORMAT", "json")
    assert main(["--bootstrap", f"127.0.0.1:{port}", "--timeout", "0.5"]) == 1
