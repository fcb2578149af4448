"""Real receivers for the notification benchmark: an HTTP server for webhooks and an SMTP server, one process.

    python -m bench.sinks <http port> <smtp port> [<slow path prefix> <seconds>]

Every POST is answered 200, after `seconds` when its path starts with the slow prefix (a partner system that
takes two seconds per request); every e-mail is accepted. `GET /counts` tells how many of each arrived. Both
servers share one event loop (uvicorn for HTTP/1.1 keep-alive, aiosmtpd for SMTP), so a slow answer costs a
sleeping coroutine, not a thread: the receivers are never the bottleneck being measured.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP

received: Counter[str] = Counter()


class Mailbox:
    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        received["email"] += 1
        return "250 Message accepted"


def webhooks(slow_prefix: str | None, seconds: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole body, as a real receiver would before answering
            message = await receive()
            more = message.get("more_body", False)
        path: str = scope["path"]
        if scope["method"] == "GET" and path == "/counts":
            body = json.dumps(received).encode()
        else:
            if slow_prefix and path.startswith(slow_prefix):
                await asyncio.sleep(seconds)
            received[path] += 1
            body = b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve(http_port: int, smtp_port: int, slow_prefix: str | None, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    mailbox = Mailbox()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="bench.local"), "127.0.0.1", smtp_port)
    config = uvicorn.Config(
        webhooks(slow_prefix, seconds), host="127.0.0.1", port=http_port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        smtp.close()


def main() -> None:
    http_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
    slow_prefix = sys.argv[3] if len(sys.argv) > 3 else None
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    asyncio.run(serve(http_port, smtp_port, slow_prefix, seconds))


if __name__ == "__main__":
    main()
