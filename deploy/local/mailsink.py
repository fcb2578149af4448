"""A local mail sink for the native run: accepts SMTP on 127.0.0.1:1025 and keeps every message as a file.

Messages land in .local/mail/<time>-<n>.eml; `deploy/local/run mail` lists them. In compose, Mailpit plays
this part with a web UI.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
MAIL = Path(os.environ.get("LINDUNGI_STATE_DIR", ROOT / ".local")) / "mail"
PORT = int(os.environ.get("LINDUNGI_MAILSINK_PORT", "1025"))
_counter = itertools.count()


class Keep:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ARG002 - aiosmtpd's hook name
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(_counter):06d}.eml"
        (MAIL / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


async def main() -> None:
    MAIL.mkdir(parents=True, exist_ok=True)
    controller = Controller(Keep(), hostname="127.0.0.1", port=PORT)
    controller.start()
    print(f"mail sink on 127.0.0.1:{PORT}, messages in {MAIL}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
