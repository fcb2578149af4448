"""What a run starts besides the services: a Kafka and FerretDB of its own, and stand-ins for the outside world."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared import events as ev
from tests.support import ROOT, free_port

STACK = ROOT / "deploy" / "local" / "stack"


@dataclass
class PrivateStack:
    """Kafka and FerretDB of this run alone, through deploy/local/stack with ports and state of its own."""

    state: Path
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    mongo_port: int = field(default_factory=free_port)
    store_mounted: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LINDUNGI_STATE_DIR": str(self.state),
            "LINDUNGI_KAFKA_PORT": str(self.kafka_port),
            "LINDUNGI_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LINDUNGI_MONGO_PORT": str(self.mongo_port),
        }

    async def run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(STACK), *args, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"stack {' '.join(args)} failed:\n{output.decode(errors='replace')}")

    async def start(self) -> None:
        await self.run("start")

    async def stop_one(self, name: str) -> None:
        await self.run("stop-one", name)

    async def start_one(self, name: str) -> None:
        await self.run("start-one", name)

    def reset(self) -> None:
        """Synchronous on purpose: the cleanup of a cancelled run must not be cancelled in turn."""
        subprocess.run([str(STACK), "reset"], env=self.env(), capture_output=True, check=False)
        if self.store_mounted:
            subprocess.run(["umount", "--lazy", str(self.store_dir)], capture_output=True, check=False)  # noqa: S607
            self.store_mounted = False

    def pid(self, name: str) -> int:
        """The process id deploy/local/stack recorded for `name` (kafka, ferretdb)."""
        return int((self.state / "run" / f"{name}.pid").read_text().strip())

    @property
    def store_dir(self) -> Path:
        """FerretDB's state (its SQLite files live in `data/` below it, as deploy/local/stack lays it out)."""
        return self.state / "ferretdb"

    def mount_store(self, size: str) -> None:
        """A small filesystem of its own for FerretDB's data, so the disk-full fault fills it and nothing else.

        A tmpfs needs root (CI runs as root). A run that asks for the fault and cannot mount fails here,
        saying why: skipping the fault would report a clean run that never tried it.
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(self.store_dir)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"the disk-full fault needs a {size} tmpfs for FerretDB's data at {self.store_dir}, and the mount "
                f"was refused (run as root): {(result.stderr or result.stdout).strip()}"
            )
        self.store_mounted = True


# --- Stand-ins for the outside world: mailboxes, webhooks, the SMS gateway ----------------------------------


@dataclass(frozen=True)
class Receipt:
    channel: ev.DeliveryChannel
    key: str  # the idempotency key: the ledger's delivery id
    recipient: str  # the path of a webhook, the phone of an SMS, the address of an e-mail
    text: str  # everything received, for the NIK scan


class MailSink:
    """A real SMTP server (aiosmtpd) that keeps every message and its idempotency key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.receipts: list[Receipt] = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        receipt = Receipt(
            ev.DeliveryChannel.EMAIL,
            str(message["X-Lindungi-Idempotency-Key"]),
            str(message["To"]),
            raw.decode("utf-8", "replace"),
        )
        with self.lock:
            self.receipts.append(receipt)
        return "250 Message accepted"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class WebReceiver:
    """An HTTP server for partners' and subscribers' webhooks and the SMS gateway: answers 200 and keeps
    every request with its idempotency key. Receivers deduplicate by that key, as partners are asked to."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path == "/sms":
                    channel, recipient = ev.DeliveryChannel.SMS, str(json.loads(body).get("to"))
                else:
                    channel, recipient = ev.DeliveryChannel.WEBHOOK, self.path
                text = json.dumps(headers) + body.decode("utf-8", "replace")
                with receiver.lock:
                    receiver.receipts.append(Receipt(channel, headers.get("idempotency-key", ""), recipient, text))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
