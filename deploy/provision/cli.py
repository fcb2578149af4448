"""The command line: `python -m provision [--acls FILE] [--plan] [--bootstrap ...] [--timeout ...]`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaError

from provision.acls import AclFile, plan
from provision.broker import provision
from provision.settings import ProvisionSettings
from shared.logging import configure_logging, get_logger
from shared.topics import CATALOGUE

if TYPE_CHECKING:
    from collections.abc import Sequence

log = get_logger("provision")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provision",
        description="Create Lindungi's Kafka topics (and, with --acls, partner topics and ACLs), then exit.",
    )
    parser.add_argument("--bootstrap", help="host:port[,...]; default LINDUNGI_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--acls", type=Path, help="the production ACL file (TOML): partner topics and ACLs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the broker")
    parser.add_argument("--plan", action="store_true", help="print the topics and ACLs, touch nothing")
    args = parser.parse_args(argv)

    overrides = {"kafka_bootstrap_servers": args.bootstrap} if args.bootstrap else {}
    settings = ProvisionSettings(**overrides)
    acl_file = AclFile.load(args.acls) if args.acls else None
    if args.plan:
        topics = [*CATALOGUE, *(acl_file.partner_topics() if acl_file else ())]
        print(plan(topics, acl_file.bindings() if acl_file else ()))
        return 0
    configure_logging("provision", settings.log_level, settings.log_format)
    try:
        asyncio.run(provision(settings, acl_file=acl_file, max_wait=args.timeout))
    except (RuntimeError, KafkaError) as error:  # ProvisionError, or a broker's refusal while creating topics
        log.error("provisioning failed", error=str(error))  # noqa: TRY400 - the message is the whole story
        return 1
    return 0
