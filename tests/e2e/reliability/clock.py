"""A service instance's clock, stepped while it runs: libfaketime (Debian's `faketime`) under every instance.

The services read the wall clock directly (`datetime.now(UTC)`, turned into the WIB date for registration's
"today" and reporting's business date); none of them takes a time offset from its settings. So each instance
runs with libfaketime preloaded and a file of its own holding the offset (`+0` normally). The clock-jump fault
writes another offset into that file; libfaketime reads it again within a second, so the running process's
wall clock steps, as after an NTP correction or a VM resumed, and steps back when the fault ends.

Only the wall clock moves: `FAKETIME_DONT_FAKE_MONOTONIC=1` keeps the monotonic clock (asyncio's timers,
timeouts) real, as a real clock step does. With that setting libfaketime 0.9.10 breaks Python 3.11's
`time.sleep` (libfaketime issue 426: an absolute monotonic `clock_nanosleep` is turned into an invalid one);
the services never call it (their waits are asyncio's), which `make test` would show at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LIBRARY_DIRS = (Path("/usr/lib/x86_64-linux-gnu/faketime"), Path("/usr/lib/aarch64-linux-gnu/faketime"))
LIBRARY = "libfaketimeMT.so.1"  # the thread-safe build: pymongo and aiokafka keep threads besides the loop


def library() -> Path | None:
    return next((d / LIBRARY for d in LIBRARY_DIRS if (d / LIBRARY).exists()), None)


def ensure_library() -> Path:
    """libfaketime, installed from Debian when missing (CI is a fresh Debian machine run as root)."""
    found = library()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "the clock-jump fault needs libfaketime: `apt-get install faketime` (as root, on Debian/Ubuntu)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "faketime"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    found = library()
    if found is None:
        raise RuntimeError(f"faketime is installed but {LIBRARY} is in none of {[str(d) for d in LIBRARY_DIRS]}")
    return found


class Clocks:
    """One offset file per service instance, read by the libfaketime preloaded into it."""

    def __init__(self, directory: Path) -> None:
        self.library = ensure_library()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def file(self, instance: str) -> Path:
        return self.directory / f"{instance}.offset"

    def env(self, instance: str) -> dict[str, str]:
        self.set(instance, 0)
        return {
            "LD_PRELOAD": str(self.library),
            "FAKETIME_TIMESTAMP_FILE": str(self.file(instance)),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_CACHE_DURATION": "1",  # the offset file is read again every second
        }

    def set(self, instance: str, seconds: int) -> None:
        """Step the instance's wall clock to `seconds` from the real one (written whole, then renamed)."""
        target = self.file(instance)
        draft = target.with_suffix(".draft")
        draft.write_text(f"{seconds:+d}\n")
        draft.replace(target)
