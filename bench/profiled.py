"""Run a service under pyinstrument, with the time awaited on each kind of MongoDB operation counted too.

    python -m bench.profiled <service> <output prefix>

The service runs exactly as `python -m services.<service>` does, until SIGTERM; then `<prefix>.txt` holds
pyinstrument's call tree and `<prefix>.json` the summary the harness turns into the profile table: the share of
the main thread's wall time spent idle in the event loop (waiting on the network) and in each package, and
the wall time awaited per collection and MongoDB operation (measured around the driver's coroutines, outside
the sampling). pyinstrument samples every millisecond, which slows the service by a few percent.
"""

from __future__ import annotations

import contextvars
import functools
import json
import runpy
import signal
import sys
import sysconfig
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor

_inside = contextvars.ContextVar("inside_timed_operation", default=False)
awaited: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def _timed(name: str, method: Any, collection_of: Any) -> Any:
    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():  # find_one iterates a cursor: count the outer operation only
            return await method(self, *args, **kwargs)
        token = _inside.set(True)
        start = time.perf_counter()
        try:
            return await method(self, *args, **kwargs)
        finally:
            key = f"{collection_of(self)}.{name}"
            awaited[key] += time.perf_counter() - start
            calls[key] += 1
            _inside.reset(token)

    return wrapper


def install_timers() -> None:
    for name in (
        "find_one", "insert_one", "insert_many", "update_one", "update_many", "replace_one", "bulk_write",
        "delete_one", "delete_many", "find_one_and_update", "count_documents",
    ):  # fmt: skip
        setattr(AsyncCollection, name, _timed(name, getattr(AsyncCollection, name), lambda c: c.name))
    AsyncCursor.__anext__ = _timed("find", AsyncCursor.__anext__, lambda c: c.collection.name)  # type: ignore[method-assign]


PACKAGES = {
    "pydantic": "pydantic (validation, JSON)",
    "pymongo": "pymongo / bson (client side)",
    "bson": "pymongo / bson (client side)",
    "aiokafka": "aiokafka (client side)",
    "faststream": "FastStream",
    "structlog": "logging",
    "logging": "logging",
    "cryptography": "AES-GCM sealing",
    "asyncio": "asyncio machinery",
    "services": "service code (domain, store, handlers)",
    "shared": "shared (events, privacy, messaging)",
    "json": "json",
    "httpx": "httpx / httpcore (webhook client)",
    "httpcore": "httpx / httpcore (webhook client)",
    "h11": "httpx / httpcore (webhook client)",
    "aiosmtplib": "aiosmtplib (e-mail client)",
    "email": "email messages (standard library)",
    "jinja2": "jinja2 (templates)",
    "tenacity": "tenacity (retries)",
    "uvicorn": "uvicorn (HTTP server)",
    "fast_depends": "FastStream",
    "prometheus_client": "prometheus client",
    "typer": "other",
}


STDLIB = sysconfig.get_paths()["stdlib"]


def _category(file_path: str | None) -> str:
    if not file_path:
        return "other"
    parts = Path(file_path).parts
    for part in reversed(parts):
        name = part.removesuffix(".py")
        if name in PACKAGES and ("site-packages" in parts or name in {"services", "shared"}):
            return PACKAGES[name]
    for part in parts:
        if part in PACKAGES:
            return PACKAGES[part]
    if file_path.startswith(STDLIB) and "site-packages" not in parts:
        return "Python standard library"
    return "other"


IDLE = {"epoll.poll", "poll.poll", "select.select", "kqueue.control", "devpoll.poll"}  # the loop, waiting


def summarise(profiler: Profiler) -> dict[str, Any]:
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    if session is None or root is None:
        return {}
    by_category: dict[str, float] = defaultdict(float)
    idle = 0.0
    # A built-in (C) function counts for the package that called it: `dict.get` in the domain is domain time.
    stack: list[tuple[Any, str]] = [(root, "other")]
    while stack:
        frame, inherited = stack.pop()
        builtin = frame.file_path_short == "<built-in>" or not frame.file_path
        category = inherited if builtin else _category(frame.file_path)
        stack.extend((child, category) for child in frame.children if not child.is_synthetic)
        own = frame.total_self_time  # its [self] time, which pyinstrument keeps in synthetic children
        if frame.function in IDLE:
            idle += own
        elif own:
            by_category[category] += own
    return {
        "duration": session.duration,
        "idle": idle,
        "cpu_by_category": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
    }


def _stop(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    service, prefix = sys.argv[1], Path(sys.argv[2])
    # uvicorn re-raises the SIGTERM it handled once the app has shut down, to the handler it found at start:
    # with this one, that ends in the `finally` below rather than killing the process before the report.
    signal.signal(signal.SIGTERM, _stop)
    sys.argv = [f"services.{service}"]  # the service's own command line: no arguments, serve
    install_timers()
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
    except SystemExit:
        pass  # typer ends a command with SystemExit(0)
    finally:
        profiler.stop()
        prefix.with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False))
        if profiler.last_session is not None:
            profiler.last_session.save(str(prefix.with_suffix(".pyisession")))
        summary = summarise(profiler)
        summary["awaited"] = dict(sorted(awaited.items(), key=lambda kv: -kv[1]))
        summary["calls"] = dict(calls)
        prefix.with_suffix(".json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
