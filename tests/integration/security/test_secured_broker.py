"""The production ACL profile on a real secured broker: SASL_SSL, SCRAM-SHA-512, deploy/compose/prod/acls.toml.

The native stack starts a second Kafka for this (`deploy/local/stack start --secure`): a throwaway CA, one
password per principal, and the topics and ACLs made by the project's own provisioning code. Every refusal
asserted here is the broker's own authorization error, raised by the Kafka client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.helpers import create_ssl_context
from pymongo import AsyncMongoClient

from provision.acls import AclFile
from services.registration.domain.nik import format_nik
from shared import events as ev
from shared import topics
from shared.messaging import encode
from tests.support import ROOT, ServiceProcess

pytestmark = pytest.mark.integration

STACK = ROOT / "deploy" / "local" / "stack"
ACLS = AclFile.load(ROOT / "deploy" / "compose" / "prod" / "acls.toml")
BOGOR, JABAR = ACLS.partners.ids  # the example partners: pemkot-bogor, dinsos-jabar
INTAKE = topics.ENROLLMENT_REQUESTS.name


@dataclass(frozen=True)
class Secured:
    bootstrap: str
    cafile: str
    passwords: dict[str, str]

    def options(self, principal: str, password: str | None = None) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": principal,
            "sasl_plain_password": password if password is not None else self.passwords[principal],
            "ssl_context": create_ssl_context(cafile=self.cafile),
            "request_timeout_ms": 15_000,
        }

    def env(self, principal: str) -> dict[str, str]:
        """A service's settings for this broker, as that principal."""
        return {
            "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LINDUNGI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LINDUNGI_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LINDUNGI_KAFKA_SASL_USERNAME": principal,
            "LINDUNGI_KAFKA_SASL_PASSWORD": self.passwords[principal],
            "LINDUNGI_KAFKA_SSL_CAFILE": self.cafile,
        }


@pytest.fixture(scope="module")
def secured() -> Secured:
    started = subprocess.run([STACK, "start", "--secure"], capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    env = subprocess.run([STACK, "secure-env"], capture_output=True, text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    passwords = json.loads(Path(values["LINDUNGI_KAFKA_CREDENTIALS_FILE"]).read_text())
    # The client logs every refused metadata request; the refusals are what these tests are about.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return Secured(values["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"], values["LINDUNGI_KAFKA_SSL_CAFILE"], passwords)


def partner(partner_id: str) -> str:
    return ACLS.partners.principal_of(partner_id)


async def write(secured: Secured, principal: str, topic: str, value: bytes = b"{}") -> None:
    producer = AIOKafkaProducer(**secured.options(principal))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def read(secured: Secured, principal: str, topic: str, group: str | None = None) -> None:
    """Read `topic` from the start as `principal` (in `group`, else by assignment), until the broker answers."""
    consumer = AIOKafkaConsumer(
        *((topic,) if group else ()), group_id=group, auto_offset_reset="earliest", **secured.options(principal)
    )
    await consumer.start()
    try:
        if group is None:
            consumer.assign([TopicPartition(topic, 0)])
        for _ in range(5):
            await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
    finally:
        await consumer.stop()


# --- authentication -------------------------------------------------------------------------------------------


async def test_a_wrong_password_is_refused(secured: Secured) -> None:
    wrong = secured.passwords[partner(BOGOR)][::-1]
    producer = AIOKafkaProducer(**secured.options(partner(BOGOR), password=wrong))
    with pytest.raises(KafkaConnectionError):  # aiokafka's wrapping of the broker's SaslAuthenticationFailed
        await producer.start()
    await producer.stop()


async def test_the_right_password_is_accepted(secured: Secured) -> None:
    await write(secured, partner(BOGOR), topics.partner_requests_topic(BOGOR))


# --- partners ---------------------------------------------------------------------------------------------------


async def test_a_partner_cannot_read_the_intake_topic(secured: Secured) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secured, partner(BOGOR), INTAKE, group=f"{partner(BOGOR)}.reader")


async def test_a_partner_cannot_read_another_partners_outcomes(secured: Secured) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secured, partner(BOGOR), topics.partner_outcomes_topic(JABAR), group=f"{partner(BOGOR)}.x")
    await read(secured, partner(BOGOR), topics.partner_outcomes_topic(BOGOR), group=f"{partner(BOGOR)}.x")


async def test_a_partner_cannot_join_another_partners_group(secured: Secured) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        await read(secured, partner(BOGOR), topics.partner_outcomes_topic(BOGOR), group=f"{partner(JABAR)}.outcomes")


@pytest.mark.parametrize("topic", [INTAKE, topics.partner_requests_topic(JABAR)], ids=["intake", "other-partner"])
async def test_a_partner_cannot_write_as_another(secured: Secured, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secured, partner(BOGOR), topic)


# --- services and tools ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "topic"),
    [
        ("reporting", topics.ENROLLMENT_OUTCOMES.name),
        ("reporting", INTAKE),
        ("notification", topics.REGION_AGGREGATES.name),
        ("notification", topics.ENROLLMENT_OUTCOMES.name),
        ("registration", topics.REGION_AGGREGATES.name),
        ("registration", topics.NOTIFICATION_DELIVERIES.name),
    ],
)
async def test_a_service_cannot_write_a_topic_it_does_not_own(secured: Secured, service: str, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(secured, service, topic)


@pytest.mark.parametrize("topic", [INTAKE, topics.partner_requests_topic(BOGOR)], ids=["intake", "partner-requests"])
async def test_the_operator_never_reads_requests(secured: Secured, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read(secured, "operator", topic)


async def test_the_operator_reads_outcomes(secured: Secured) -> None:
    await read(secured, "operator", topics.ENROLLMENT_OUTCOMES.name)


# --- spoofing, end to end -------------------------------------------------------------------------------------


@pytest.fixture
async def registration(
    secured: Secured, service_env: dict[str, str], tmp_path: Path, unique: str
) -> AsyncIterator[ServiceProcess]:
    seed = tmp_path / "partners.json"
    scope = {"regions": ["32"], "segments": ["BPU"], "funding_sources": ["APBD"]}
    narrow = {"regions": ["32.71"], "segments": ["BPU"], "funding_sources": ["APBD"]}
    seed.write_text(json.dumps([{"partner_id": BOGOR, "name": "Bogor", **narrow},
                                {"partner_id": JABAR, "name": "Jabar", **scope}]))  # fmt: skip
    env = {
        **{k: v for k, v in service_env.items() if not k.startswith("LINDUNGI_KAFKA")},
        **secured.env("registration"),
        # Inside the ACL's group prefix, and the same on every run: the secured broker keeps its topics between
        # runs, and a new group would decide every earlier run's requests again.
        "REGISTRATION_GROUP_ID": "lindungi-registration-security-tests",
        "REGISTRATION_MONGODB_DATABASE": f"registration_secure_{unique}",
        "REGISTRATION_PARTNERS_SEED_FILE": str(seed),
        "REGISTRATION_PARTNER_OUTCOME_TOPICS": "true",
        "REGISTRATION_PARTNER_TOPICS_REFRESH_MS": "1000",
        "REGISTRATION_CREATE_TOPICS": "false",  # the provisioning job made them, as in production
    }
    service = ServiceProcess("registration", env, tmp_path / "registration.log")
    service.start()
    try:
        await service.wait_ready()
        yield service
    finally:
        service.stop()


def request(request_id: str, nik: str, claimed_partner: str, region: str) -> ev.EnrollmentRequested:
    worker = ev.Worker(nik=nik, full_name="Siti Aminah", birth_date=date(1990, 6, 5), sex=ev.Sex.FEMALE)
    data = ev.EnrollmentRequest(
        request_id=request_id,
        worker=worker,
        region_code=region,
        segment=ev.Segment.BPU,
        category=ev.Category.VULNERABLE,
        programs=[ev.Program.JKK, ev.Program.JKM],
        declared_income=1_000_000,
        funding_source=ev.FundingSource.APBD,
        coverage_start=date.today().replace(day=1),
    )
    return ev.EnrollmentRequested(source=f"partner/{claimed_partner}", data=data)


async def outcomes_of(secured: Secured, principal: str, topic: str, wanted: set[str]) -> dict[str, ev.Outcome]:
    # Subscribed without a group: every partition, nothing committed.
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **secured.options(principal))
    await consumer.start()
    found: dict[str, ev.Outcome] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not wanted <= set(found) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    outcome = ev.outcome_adapter.validate_json(record.value or b"")
                    if outcome.data.request_id in wanted:
                        found[outcome.data.request_id] = outcome
    finally:
        await consumer.stop()
    return found


async def test_a_partner_cannot_act_as_another(
    secured: Secured, registration: ServiceProcess, mongodb_url: str, unique: str
) -> None:
    serial = int(unique[:4], 16) % 9000 + 1  # NIKs of this run only: the broker keeps earlier runs' requests
    own = format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, serial)
    spoofed = format_nik("32.01.01", date(1990, 6, 5), ev.Sex.FEMALE, serial)
    honest = request(f"{unique}-own", own, BOGOR, "32.71")
    # Kabupaten Bogor (32.01) is outside pemkot-bogor's regions but inside dinsos-jabar's: the attack.
    attack = request(f"{unique}-spoof", spoofed, JABAR, "32.01")
    producer = AIOKafkaProducer(**secured.options(partner(BOGOR)))
    await producer.start()
    try:
        for nik, event in ((own, honest), (spoofed, attack)):
            value, headers = encode(event)
            # A forged channel header as well: registration replaces it with the one the topic proves.
            await producer.send_and_wait(
                topics.partner_requests_topic(BOGOR),
                value,
                key=nik.encode(),
                headers=[*((k, v.encode()) for k, v in headers.items()), (topics.CHANNEL_HEADER, JABAR.encode())],
            )
    finally:
        await producer.stop()

    wanted = {f"{unique}-own", f"{unique}-spoof"}
    mine = await outcomes_of(secured, partner(BOGOR), topics.partner_outcomes_topic(BOGOR), wanted)
    assert isinstance(mine[f"{unique}-own"], ev.ParticipantRegistered)
    rejected = mine[f"{unique}-spoof"]
    assert isinstance(rejected, ev.RequestRejected)
    assert [(r.code, r.subject) for r in rejected.data.reasons] == [("PARTNER_SOURCE_MISMATCH", JABAR)]
    assert rejected.data.partner_id == BOGOR  # answered to the partner the broker authenticated
    # Operators see the attempt on the shared outcome topic and in the service's log; the partner it named
    # hears nothing of a request it never sent.
    seen = await outcomes_of(secured, "operator", topics.ENROLLMENT_OUTCOMES.name, {f"{unique}-spoof"})
    assert isinstance(seen[f"{unique}-spoof"], ev.RequestRejected)
    assert not await outcomes_of(secured, partner(JABAR), topics.partner_outcomes_topic(JABAR), wanted)
    log = registration.log_path.read_text()
    assert "a partner's request claims another partner" in log
    assert spoofed not in log
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        participants = client[f"registration_secure_{unique}"]["participants"]
        assert await participants.count_documents({"region_code": "32.01"}) == 0  # nothing applied
        assert await participants.count_documents({"region_code": "32.71"}) == 1
    finally:
        await client.close()


def test_the_secured_broker_is_provisioned_from_the_acl_file(secured: Secured) -> None:
    assert set(secured.passwords) >= {"admin", "registration", "reporting", "notification", "operator"}
    assert {partner(p) for p in ACLS.partners.ids} <= set(secured.passwords)
    assert Path(secured.cafile).parent.stat().st_mode & 0o077 == 0  # the secrets directory is private
