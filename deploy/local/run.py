"""`make run`: the whole system on this machine, with sample data flowing. `make down` stops it.

With a Docker engine: `docker compose up` (docker-compose.yml) and the sample is published into it.
Without one: the native stack (deploy/local/stack), the three services, a mail sink and a webhook receiver
as supervised processes (deploy/local/supervise.py), then the sample.

    python deploy/local/run.py up       start everything, publish the sample, print the coverage table
    python deploy/local/run.py down     stop everything (data stays in .local/)
    python deploy/local/run.py status   what runs, and where to look
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shared.topics import ENROLLMENT_OUTCOMES  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping

STATE = ROOT / ".local"
SECRETS = STATE / "secrets.env"
SUPERVISOR_PID = STATE / "run" / "supervisor.pid"
STACK = ROOT / "deploy" / "local" / "stack"
SAMPLE = ROOT / "deploy" / "local" / "sample"
URLS = {
    "registration": "http://127.0.0.1:8001",
    "reporting": "http://127.0.0.1:8002",
    "notification": "http://127.0.0.1:8003",
}
# Kota Bogor, Kota Depok, Kabupaten Bogor, Jakarta Selatan, Kota Surabaya, Kota Makassar
SAMPLE_REGIONS = "32.71,32.76,32.01,31.74,35.78,73.71"
SAMPLE_SIZE = 3000
WIB = ZoneInfo("Asia/Jakarta")  # the fiscal year is the year in Indonesia's western time zone
SAMPLE_BOGOR_APBD = 250_000_000  # Rupiah: room for every APBD enrollment the sample sends to Kota Bogor
KAFKA = "127.0.0.1:9092"
OUTCOMES = ENROLLMENT_OUTCOMES.name
console = Console()


def docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)  # noqa: S607
    return result.returncode == 0


def local_secrets() -> dict[str, str]:
    """Secrets for this machine's demo, made once and kept in .local/ (git-ignored); never defaults in code."""
    wanted = ("LINDUNGI_NIK_HASH_SECRET", "LINDUNGI_SEAL_KEY", "NOTIFICATION_SMS_GATEWAY_SECRET")
    SECRETS.parent.mkdir(parents=True, exist_ok=True)
    lines = SECRETS.read_text().splitlines() if SECRETS.exists() else []
    known = dict(line.split("=", 1) for line in lines if "=" in line)
    for name in wanted:
        known.setdefault(name, base64.b64encode(os.urandom(32)).decode())
    SECRETS.write_text("".join(f"{k}={v}\n" for k, v in known.items()))
    SECRETS.chmod(0o600)
    return known


def notification_seed() -> Path:
    """The demo's partners' webhooks and subscriptions, each webhook with a signing secret made here."""
    seed = json.loads((SAMPLE / "notification.json").read_text())
    for item in [*seed["partners"], *seed["subscriptions"]]:
        if "webhook_url" in item or item.get("channel") == "WEBHOOK":
            item["secret"] = base64.urlsafe_b64encode(os.urandom(24)).decode()
    path = STATE / "notification-seed.json"
    path.write_text(json.dumps(seed, indent=2))
    path.chmod(0o600)
    return path


def environment() -> dict[str, str]:
    secrets = local_secrets()
    return {
        **os.environ,
        **secrets,
        "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "LINDUNGI_MONGODB_URL": "mongodb://127.0.0.1:27017/",
        "REGISTRATION_PARTNERS_SEED_FILE": str(SAMPLE / "partners.json"),
        "NOTIFICATION_SEED_FILE": str(notification_seed()),
        "NOTIFICATION_SMS_GATEWAY_URL": "http://127.0.0.1:8099/sms",
        "NOTIFICATION_SMTP_HOST": "127.0.0.1",
        "NOTIFICATION_SMTP_PORT": "1025",
        # The demo's sample is small: a coverage target makes milestones visible.
        "REPORTING_DEFAULT_TARGET_RATIO": "0.0005",
        "PYTHONPATH": str(ROOT),
    }


def supervisor_alive() -> bool:
    if not SUPERVISOR_PID.exists():
        return False
    try:
        os.kill(int(SUPERVISOR_PID.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


async def wait_ready(within: float = 120) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        for name, url in URLS.items():
            while True:
                try:
                    if (await client.get(f"{url}/ready", timeout=2)).status_code == 200:
                        console.print(f"  {name} ready at {url}")
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not become ready; see .local/logs/{name}.log")
                await asyncio.sleep(0.5)


def up_native(env: dict[str, str]) -> None:
    subprocess.run([STACK, "start"], check=True, env=env)
    if supervisor_alive():
        console.print("services already running (make down stops them)")
    else:
        (STATE / "logs").mkdir(parents=True, exist_ok=True)
        log = (STATE / "logs" / "supervisor.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "local" / "supervise.py")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this command; `make down` stops it
        )
        SUPERVISOR_PID.parent.mkdir(parents=True, exist_ok=True)
        SUPERVISOR_PID.write_text(str(process.pid))
    asyncio.run(wait_ready())


def up_compose(env: dict[str, str]) -> None:
    subprocess.run(["docker", "compose", "up", "-d", "--wait"], check=True, cwd=ROOT, env=env)  # noqa: S607
    asyncio.run(wait_ready())


def publish_sample(env: dict[str, str]) -> None:
    requests = STATE / "sample-requests.csv"
    cli = [sys.executable, "-m", "lindungi"]
    subprocess.run(
        [*cli, "generate", "--out", str(requests), "--count", str(SAMPLE_SIZE), "--seed", "2021",
         "--regions", SAMPLE_REGIONS, "--invalid-share", "0.08", "--duplicate-share", "0.02"],
        check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    # Kota Bogor's finance office declares this year's APBD for contributions first (docs/budgets.md): the
    # sample's APBD enrollments there reserve against it, and the dashboard shows where it stands.
    budget = subprocess.run(
        [*cli, "budget", "set", "-p", "demo-bpkad-bogor", "--region", "32.71", "--year", str(datetime.now(WIB).year),
         "--amount", str(SAMPLE_BOGOR_APBD), "--dprd", "Demo: Perda Kota Bogor tentang APBD"],
        env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    if budget.returncode != 0:
        console.print("[yellow]the sample budget was not declared; the sample goes on without it[/yellow]")
    result = subprocess.run(
        [*cli, "publish", str(requests), "--partner", "demo-jabar-jakarta"], env=env, cwd=ROOT, check=False
    )
    if result.returncode not in (0, 3):
        raise SystemExit("publishing the sample failed")


@dataclass(frozen=True)
class Folding:
    """How far reporting's published figures are behind the outcome topic, partition by partition."""

    folded: int
    published: int
    behind: dict[str, int]  # "topic:partition" -> outcomes on the topic that the figures do not count yet

    @property
    def complete(self) -> bool:
        return not self.behind

    def line(self) -> str:
        return f"reporting has folded {self.folded:,} of {self.published:,} outcomes"

    def what_is_behind(self) -> str:
        return ", ".join(f"{partition} by {n:,}" for partition, n in sorted(self.behind.items()))


def folding(source_offsets: Mapping[str, int], end_offsets: Mapping[str, int]) -> Folding:
    """Compare the offsets reporting says its figures reflect (`source_offsets` of an aggregate: "topic:partition"
    -> next offset) with the outcome topic's end offsets. A partition reporting has not reported yet counts as
    nothing folded: every region being non-zero says nothing about whether the last outcome is in."""
    behind: dict[str, int] = {}
    folded = 0
    for partition, end in end_offsets.items():
        reached = min(source_offsets.get(partition, 0), end)
        folded += reached
        if reached < end:
            behind[partition] = end - reached
    return Folding(folded=folded, published=sum(end_offsets.values()), behind=behind)


async def outcome_end_offsets(consumer: AIOKafkaConsumer) -> dict[str, int]:
    partitions = [TopicPartition(OUTCOMES, p) for p in sorted(consumer.partitions_for_topic(OUTCOMES) or ())]
    return {f"{tp.topic}:{tp.partition}": end for tp, end in (await consumer.end_offsets(partitions)).items()}


async def wait_folded(within: float = 120) -> Folding:
    """Poll the national aggregate until reporting has folded every outcome on the topic (or `within` passes)."""
    # Subscribed (without a group, from the end) only so that the client keeps the topic's partitions in its
    # metadata: `topics()` fetches metadata without keeping it, and partitions_for_topic then knows nothing.
    consumer = AIOKafkaConsumer(OUTCOMES, bootstrap_servers=KAFKA, group_id=None, auto_offset_reset="latest")
    await consumer.start()
    deadline = time.monotonic() + within
    try:
        async with httpx.AsyncClient(base_url=URLS["reporting"], timeout=5) as client:
            with console.status("waiting for reporting") as status:
                while True:
                    # Read every time: the end moves while registration still publishes the last outcomes.
                    ends = await outcome_end_offsets(consumer)
                    try:
                        offsets = (await client.get("/regions/ID")).json().get("source_offsets") or {}
                    except (httpx.HTTPError, json.JSONDecodeError):
                        offsets = {}
                    progress = folding(offsets, ends)
                    status.update(progress.line())
                    if progress.complete or time.monotonic() > deadline:
                        return progress
                    await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


def region_figures(codes: list[str]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for code in codes:
        try:
            figures = httpx.get(f"{URLS['reporting']}/regions/{code}", timeout=5).json()
        except (httpx.HTTPError, json.JSONDecodeError):
            figures = {}
        rows.append((code, figures))
    return rows


def rupiah(amount: object) -> str:
    return f"Rp{amount:,}".replace(",", ".") if isinstance(amount, int) else str(amount)


def short_name(name: str) -> str:
    """The abbreviations Indonesian tables use, so that a regency's own name survives an 80-column terminal."""
    return name.replace("Kota Administrasi ", "Kota Adm. ").replace("Kabupaten ", "Kab. ")


def coverage_rows(rows: list[tuple[str, dict[str, Any]]], title: str) -> Table:
    """The terminal table, narrow enough for an 80-column terminal (tests/unit/deploy/test_run_local.py)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    table.add_column("code", no_wrap=True)
    table.add_column("regency/city", max_width=25, overflow="ellipsis", no_wrap=True)
    for column in ("active", "coverage", "APBD/month", "rejected"):
        table.add_column(column, justify="right", no_wrap=True)
    for code, figures in rows:
        ratio = (figures.get("coverage") or {}).get("ratio")
        apbd = (figures.get("monthly_contributions_by_funding_source") or {}).get("APBD", 0)
        rejected = sum(v for v in (figures.get("rejections_by_reason") or {}).values() if isinstance(v, int))
        table.add_row(
            code,
            short_name(str(figures.get("region_name", "?"))),
            str(figures.get("active", 0)),
            f"{ratio:.4%}" if isinstance(ratio, float) else "-",
            rupiah(apbd),
            str(rejected),
        )
    return table


def coverage_table() -> bool:
    """Print the coverage of the sample's regions once reporting has folded every outcome; False if it had not
    within the timeout (the table is then printed as what it is: incomplete)."""
    progress = asyncio.run(wait_folded())
    console.print(progress.line())
    title = "Coverage per regency/city (sample data)"
    if not progress.complete:
        console.print(
            f"[yellow]reporting is still behind after the wait: {progress.what_is_behind()} outcomes"
            " (partition by partition); see .local/logs/reporting.log[/yellow]"
        )
        title += ", INCOMPLETE"
    console.print(coverage_rows(region_figures(SAMPLE_REGIONS.split(",")), title))
    return progress.complete


def where_to_look() -> None:
    console.print(
        "\n[bold]Where to look[/bold]\n"
        f"  dashboard          {URLS['reporting']}/dashboard (Bahasa Indonesia; English by its switch)\n"
        f"  figures (API)      {URLS['reporting']}/regions/ID, /regions/32.71, /regions/32/children, /rankings,"
        " /regions.csv\n"
        "  figures (CLI)      .venv/bin/lindungi report 32\n"
        f"  participants       {URLS['registration']}/partners, {URLS['registration']}/docs/asyncapi\n"
        f"  notifications      e-mails in {STATE / 'mail'} (one .eml each), webhooks in {STATE / 'webhooks.log'},"
        f" failures at {URLS['notification']}/deliveries?status=failed\n"
        "  topics             lindungi.enrollment.outcomes.v1, lindungi.region.aggregates.v1,"
        " lindungi.deadletters.v1 (.venv/bin/lindungi dlq list)\n"
        f"  logs               {STATE / 'logs'}/<service>.log\n"
        "  stop               make down\n"
    )


def down() -> None:
    if supervisor_alive():
        pid = int(SUPERVISOR_PID.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.2)
        console.print("services stopped")
    SUPERVISOR_PID.unlink(missing_ok=True)
    if docker_engine() and (ROOT / "docker-compose.yml").exists():
        subprocess.run(["docker", "compose", "down"], cwd=ROOT, check=False)  # noqa: S607
    subprocess.run([STACK, "stop"], check=False)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    env = environment()
    if command == "up":
        if docker_engine():
            console.print("Docker engine found: starting docker-compose.yml")
            up_compose(env)
        else:
            console.print("No Docker engine: starting the native stack and the services as supervised processes")
            up_native(env)
        publish_sample(env)
        complete = coverage_table()
        where_to_look()
        if not complete:
            return 1  # the services run; the printed figures are not final
    elif command == "down":
        down()
    elif command == "status":
        subprocess.run([STACK, "status"], check=False)
        console.print(f"services: {'running' if supervisor_alive() else 'stopped'}")
        where_to_look()
    else:
        console.print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
