"""The services of a run: every instance as a separate process, started, killed and restarted on purpose."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import events as ev
from tests.e2e.reliability.clock import Clocks
from tests.e2e.reliability.plan import PARTNER_SECRETS, PARTNERS, SMS_SECRET, SUBSCRIBERS, Plan
from tests.e2e.reliability.stack import MailSink, PrivateStack, WebReceiver
from tests.support import ServiceProcess


def _clean_environment() -> dict[str, str]:
    """The parent's environment without any service setting: a test session may have set some for the
    shared servers, and this run must talk only to its own."""
    prefixes = ("LINDUNGI_", "REGISTRATION_", "REPORTING_", "NOTIFICATION_", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@dataclass
class Fleet:
    """Every service instance of the run, and which of them the faults took down on purpose."""

    instances: dict[str, ServiceProcess]
    down: set[str] = field(default_factory=set)  # killed by a fault and not restarted yet
    exits: list[str] = field(default_factory=list)  # instances that died without being killed
    clocks: Clocks | None = None  # each instance's wall clock, when the plan steps one

    @classmethod
    def create(cls, plan: Plan, stack: PrivateStack, workdir: Path, mail: MailSink, web: WebReceiver) -> Fleet:
        secrets = {
            "LINDUNGI_NIK_HASH_SECRET": base64.b64encode(os.urandom(32)).decode(),
            "LINDUNGI_SEAL_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        base = {
            **_clean_environment(),
            **secrets,
            "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "LINDUNGI_MONGODB_URL": stack.mongodb_url,
            "LINDUNGI_LOG_LEVEL": "INFO",
        }
        partners_file = workdir / "partners.json"
        partners_file.write_text(json.dumps(list(PARTNERS)))
        seed_file = workdir / "notification-seed.json"
        seed_file.write_text(json.dumps(notification_seed(web)))
        registration = {
            **base,
            "REGISTRATION_PARTNERS_SEED_FILE": str(partners_file),
            "REGISTRATION_PARTNER_OUTCOME_TOPICS": "true",  # the production ACL profile's copies
            "REGISTRATION_BATCH_MAX_RECORDS": "200",
        }
        reporting = {**base, "REPORTING_PUBLISH_INTERVAL_SECONDS": "5", "REPORTING_TARGETS_REFRESH_SECONDS": "30"}
        notification = {
            **base,
            "NOTIFICATION_SEED_FILE": str(seed_file),
            "NOTIFICATION_SMTP_PORT": str(mail.port),
            "NOTIFICATION_SMS_GATEWAY_URL": web.url("/sms"),
            "NOTIFICATION_SMS_GATEWAY_SECRET": SMS_SECRET,
            # Retries and leases short enough that a killed instance's deliveries are resumed within the run.
            "NOTIFICATION_RETRY_INITIAL": "0.5",
            "NOTIFICATION_RETRY_MAX": "4",
            "NOTIFICATION_RETRY_JITTER": "0.5",
            "NOTIFICATION_SEND_TIMEOUT": "5",
            "NOTIFICATION_MAX_ATTEMPTS": "20",
            "NOTIFICATION_LEASE": "15",
            "NOTIFICATION_SWEEP_INTERVAL": str(plan.sweep_seconds),
            # Fewer deliveries in flight than FerretDB's connection pool (100 per database): with the default
            # (2000) hundreds of concurrent claims deadlock that pool and the notification database never
            # answers again (defect reported with issue 9; tests/e2e/test_reliability.py shows it).
            "NOTIFICATION_CHANNEL_CAPACITY": "25",
        }
        copies = ("a", "b") if plan.rebalance or plan.random_faults else ("a",)
        clocks = Clocks(workdir / "clocks") if plan.needs_clock else None
        instances: dict[str, ServiceProcess] = {}
        scaled = (("registration", registration), ("reporting", reporting))
        services = [(f"{name}-{copy}", name, env) for name, env in scaled for copy in copies]
        for instance, service, env in [*services, ("notification", "notification", notification)]:
            clock = clocks.env(instance) if clocks else {}
            instances[instance] = ServiceProcess(service, {**env, **clock}, workdir / f"{instance}.log")
        return cls(instances, clocks=clocks)

    def alive(self) -> list[ServiceProcess]:
        return [s for name, s in self.instances.items() if name not in self.down]

    def of(self, service: str) -> list[str]:
        return [name for name in self.instances if name.startswith(service)]

    async def start_all(self) -> None:
        # The second instances start once the first are ready: two registration instances starting at the
        # same moment race on seeding the partners and one of them fails (see the report of issue 9).
        for wave in (
            [s for n, s in self.instances.items() if not n.endswith("-b")],
            [s for n, s in self.instances.items() if n.endswith("-b")],
        ):
            for service in wave:
                service.start()
            await asyncio.gather(*(s.wait_ready(180) for s in wave))

    def kill(self, name: str) -> None:
        self.down.add(name)
        self.instances[name].kill()

    async def restart(self, name: str) -> None:
        """Start a killed instance again; one that dies while starting is a finding, and is tried again."""
        service = self.instances[name]
        for _ in range(3):
            service.start()
            try:
                await service.wait_ready(180)
            except (RuntimeError, TimeoutError) as error:
                self.exits.append(f"{name} did not start again: {str(error)[-1500:]}")
                service.kill()
                continue
            self.down.discard(name)
            return
        raise RuntimeError(f"{name} cannot be started again: {self.exits[-1]}")

    async def watch(self) -> None:
        """Until cancelled: an instance that exits without a fault having killed it is a finding; it is
        started again so the run can go on."""
        while True:
            await asyncio.sleep(1)
            for name, service in self.instances.items():
                process = service.process
                if name in self.down or process is None or process.poll() is None:
                    continue
                self.exits.append(f"{name} exited with {process.returncode}: {service.logs()[-1500:]}")
                self.down.add(name)
                await self.restart(name)

    def stop_all(self) -> None:
        for service in self.instances.values():
            service.stop()


def notification_seed(web: WebReceiver) -> dict[str, Any]:
    partners = [
        {"partner_id": p, "webhook_url": web.url(f"/partners/{p}"), "secret": secret}
        for p, secret in PARTNER_SECRETS.items()
    ]
    subscriptions = []
    for s in SUBSCRIBERS:
        item: dict[str, Any] = {
            "subscription_id": s.subscription_id,
            "name": s.subscription_id,
            "stakeholder": "regional_government",
            "scope": s.scope,
            "kinds": sorted(s.kinds),
            "channel": s.channel.value,
            "address": web.url(s.address) if s.channel is ev.DeliveryChannel.WEBHOOK else s.address,
        }
        if s.channel is ev.DeliveryChannel.WEBHOOK:
            item["secret"] = f"{s.subscription_id}-signing-secret"
        subscriptions.append(item)
    return {"partners": partners, "subscriptions": subscriptions}
