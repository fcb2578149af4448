"""A local webhook receiver for the native run: every POST is appended as one JSON line to
.local/webhooks.log (headers and body), answered 200. Partners' rejection webhooks and SMS-gateway calls of the
demo land here.
"""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = Path(os.environ.get("LINDUNGI_STATE_DIR", ROOT / ".local")) / "webhooks.log"
PORT = int(os.environ.get("LINDUNGI_WEBHOOKS_PORT", "8099"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        entry = {
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        with LOG.open("a") as log:
            log.write(json.dumps(entry) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


if __name__ == "__main__":
    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"webhook receiver on 127.0.0.1:{PORT}, log in {LOG}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
