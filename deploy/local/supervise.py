"""Supervisor for the native run: the three services, a mail sink and a webhook receiver as child processes.

Each child is restarted with backoff if it dies; SIGTERM stops them all (each gets SIGTERM, then SIGKILL after
a grace period). Started in the background by `deploy/local/run`; its pid is in .local/run/supervisor.pid.
Output of every child goes to .local/logs/<name>.log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LINDUNGI_STATE_DIR", ROOT / ".local"))
LOGS = STATE / "logs"
PY = sys.executable


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        log = (LOGS / f"{self.name}.log").open("ab")
        env = {**os.environ, "LINDUNGI_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()


CHILDREN = [
    Child("mailsink", [PY, str(ROOT / "deploy/local/mailsink.py")]),
    Child("webhooks", [PY, str(ROOT / "deploy/local/webhooks.py")]),
    Child("registration", [PY, "-m", "services.registration"]),
    Child("reporting", [PY, "-m", "services.reporting"]),
    Child("notification", [PY, "-m", "services.notification"]),
]


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in CHILDREN:
        child.start()
    while not stopping:
        time.sleep(0.5)
        for child in CHILDREN:
            if child.process is not None and child.process.poll() is not None and not stopping:
                # Back off when a child keeps dying right after start; a long-lived one restarts at once.
                quick = time.monotonic() - child.started_at < 10
                delay = min(30, 2 ** min(child.restarts, 5)) if quick else 0
                child.restarts += 1
                print(f"{child.name} exited with {child.process.returncode}; restart in {delay}s", flush=True)
                time.sleep(delay)
                child.start()
    for child in reversed(CHILDREN):
        child.stop()
    deadline = time.monotonic() + 30
    for child in CHILDREN:
        if child.process is None:
            continue
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()


if __name__ == "__main__":
    main()
