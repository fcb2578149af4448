"""Partner commands: `generate` synthetic requests, `publish` a file and collect its outcomes, `report` a region.

A partner talks to Lindungi as any partner would: requests on its own topic (`lindungi.partner.<id>.requests.v1`),
outcomes read back from the outcome topic, figures from the reporting service's HTTP API.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError
from rich.progress import Progress
from rich.table import Table

from lindungi.context import api_get, console, fail, settings
from lindungi.files import COLUMNS, FileError, Row, check_requests, iter_requests, write_results
from shared import events as ev
from shared import topics
from shared.messaging import encode

# --- generate ----------------------------------------------------------------------------------------------


def generate(  # noqa: PLR0913, PLR0917 - typer: one parameter per option
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")] = Path("requests.csv"),
    count: Annotated[int, typer.Option("--count", "-n", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same file")] = 1,
    regions: Annotated[str | None, typer.Option(help="comma-separated regency/city codes, e.g. 32.71,32.76")] = None,
    invalid_share: Annotated[float, typer.Option(min=0, max=1, help="share of requests that must be rejected")] = 0.0,
    duplicate_share: Annotated[float, typer.Option(min=0, max=1, help="share of requests sent twice")] = 0.0,
) -> None:
    """Write synthetic enrollment requests (valid NIKs, Indonesian names, realistic mix) to a CSV file."""
    from datetime import datetime  # noqa: PLC0415
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from synthetic import generate as synthesize  # noqa: PLC0415

    region_list = [r.strip() for r in regions.split(",")] if regions else None
    written = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        import csv  # noqa: PLC0415

        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "expected"])
        writer.writeheader()
        for item in synthesize(
            count,
            seed=seed,
            today=datetime.now(ZoneInfo("Asia/Jakarta")).date(),
            region_codes=region_list,
            invalid_share=invalid_share,
            duplicate_share=duplicate_share,
        ):
            expected = " ".join(code.value for code in item.expected) or ("DUPLICATE" if item.is_duplicate else "")
            writer.writerow(_row_of(item.request, expected))
            written += 1
    console.print(f"wrote {written} requests to {out}")


def _row_of(request: ev.EnrollmentRequest, expected: str) -> dict[str, Any]:
    worker = request.worker
    employer = request.employer
    return {
        "request_id": request.request_id,
        "action": "ENROLL",
        "nik": worker.nik,
        "full_name": worker.full_name,
        "birth_date": worker.birth_date.isoformat(),
        "sex": worker.sex.value,
        "phone": worker.phone or "",
        "email": worker.email or "",
        "contact_consent": str(worker.contact_consent).lower(),
        "domicile_kecamatan": worker.domicile_kecamatan or "",
        "region_code": request.region_code,
        "segment": request.segment.value,
        "category": request.category.value,
        "employer_registration_number": employer.registration_number if employer else "",
        "employer_size": employer.size.value if employer else "",
        "jkk_risk": employer.jkk_risk.value if employer else "",
        "programs": " ".join(p.value for p in request.programs),
        "monthly_wage": request.monthly_wage or "",
        "declared_income": request.declared_income or "",
        "contract_value": request.contract_value or "",
        "contract_months": request.contract_months or "",
        "funding_source": request.funding_source.value,
        "coverage_start": request.coverage_start.isoformat(),
        "reason": "",
        "effective_date": "",
        "expected": expected,
    }


# --- publish -----------------------------------------------------------------------------------------------


async def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of a topic
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def _publish(rows: Iterable[Row], total: int, bootstrap: str, topic: str, progress: Progress) -> set[str]:
    """Publish the rows (read one at a time); returns their request ids, to wait for."""
    task = progress.add_task("publishing", total=total)
    wanted: set[str] = set()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=10)
    await producer.start()
    try:
        pending = []
        for row in rows:
            wanted.add(row.event.data.request_id)
            value, headers = encode(row.event)
            pending.append(
                await producer.send(
                    topic, value, key=row.key.encode(), headers=[(k, v.encode()) for k, v in headers.items()]
                )
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                progress.advance(task, len(pending))
                pending.clear()
        await asyncio.gather(*pending)
        progress.advance(task, len(pending))
    finally:
        await producer.stop()
    return wanted


async def _collect(  # noqa: PLR0913 - the facts of one wait
    bootstrap: str,
    *,
    topic: str,
    start: dict[TopicPartition, int],
    partner_id: str,
    wanted: set[str],
    within: float,
    progress: Progress,
) -> dict[str, ev.Outcome]:
    task = progress.add_task("waiting for outcomes", total=len(wanted))
    found: dict[str, ev.Outcome] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        # The outcome topic may not exist yet when nothing was ever answered: wait for it to appear.
        deadline = time.monotonic() + within
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await asyncio.sleep(0.5)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp, 0))
        while len(found) < len(wanted) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    try:
                        outcome = ev.outcome_adapter.validate_json(record.value)
                    except ValidationError:
                        continue
                    request_id = outcome.data.request_id
                    if outcome.data.partner_id == partner_id and request_id in wanted and request_id not in found:
                        found[request_id] = outcome
                        progress.advance(task)
    finally:
        await consumer.stop()
    return found


def publish(
    file: Annotated[Path, typer.Argument(help="CSV or Excel (.xlsx) file, one request per row")],
    partner: Annotated[str, typer.Option("--partner", "-p", help="your partner id")],
    results: Annotated[Path | None, typer.Option(help="results CSV (default: FILE.results.csv)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for outcomes")] = 300,
) -> None:
    """Publish a file of requests, wait for every outcome, and write a results file.

    Safe to run again after an interruption: request ids make every request idempotent, so requests already
    handled are answered with their original outcome.
    """
    try:
        # The whole file is checked before the first request goes out: a bad row publishes nothing.
        total = check_requests(file, partner)
    except FileError as error:
        for problem in error.problems[:50]:
            console.print(f"[red]{problem}[/red]")
        if len(error.problems) > 50:
            console.print(f"[red]... and {len(error.problems) - 50} more[/red]")
        raise fail("nothing was published", 2) from None
    config = settings()
    results = results or file.with_suffix(".results.csv")
    outcomes_topic = config.outcomes_topic

    async def run() -> dict[str, ev.Outcome]:
        start = await _end_offsets(config.kafka_bootstrap_servers, outcomes_topic)
        with Progress(console=console) as progress:
            # A partner writes its own topic: on a secured broker the only one its principal may write.
            topic = config.requests_topic or topics.partner_requests_topic(partner, config.partner_topic_prefix)
            rows = iter_requests(file, partner)
            wanted = await _publish(rows, total, config.kafka_bootstrap_servers, topic, progress)
            return await _collect(
                config.kafka_bootstrap_servers,
                topic=outcomes_topic,
                start=start,
                partner_id=partner,
                wanted=wanted,
                within=timeout,
                progress=progress,
            )

    outcomes = asyncio.run(run())
    request_ids: list[str] = []

    def noted(rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            request_ids.append(row.event.data.request_id)
            yield row

    write_results(results, noted(iter_requests(file, partner)), outcomes)
    answered = [outcomes[i] for i in request_ids if i in outcomes]
    _summarise(file.name, total, answered, results)


def _summarise(name: str, total: int, answered: list[ev.Outcome], results: Path) -> None:
    """The outcomes by kind and the rejections by reason; exits 3 when some rows have no outcome yet."""
    missing = total - len(answered)
    summary = Counter(o.type.rsplit(".", 1)[-1] for o in answered)
    codes = Counter(r.code for o in answered if isinstance(o, ev.RequestRejected) for r in o.data.reasons)
    table = Table(title=f"{total} rows from {name}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for kind, n in sorted(summary.items()):
        table.add_row(kind, str(n))
    if missing:
        table.add_row("[yellow]no outcome yet[/yellow]", str(missing))
    console.print(table)
    if codes:
        console.print("rejections by reason: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
    console.print(f"results: {results}")
    if missing:
        raise fail("some requests have no outcome yet; run the same command again to resume", 3)


# --- report ------------------------------------------------------------------------------------------------


def _count(value: Any) -> str:
    return f"{value:,}".replace(",", ".") if isinstance(value, int) else str(value)


def report(
    region: Annotated[str, typer.Argument(help="region code: ID, a province (32), a regency/city (32.71)")] = "ID",
) -> None:
    """A region's figures and its children's, from the reporting service."""
    base = settings().reporting_url
    figures = api_get(f"{base}/regions/{region}")
    children = api_get(f"{base}/regions/{region}/children")
    if isinstance(children, dict):
        children = children.get("children", children.get("regions", []))
    table = Table(title=f"{figures.get('region_name', region)} ({region})")
    for column in ("region", "active", "coverage", "APBD / month"):
        table.add_column(column, justify="right" if column != "region" else "left")
    for item in [figures, *children]:
        coverage = item.get("coverage") or {}
        ratio = coverage.get("ratio")
        apbd = (item.get("monthly_contributions_by_funding_source") or {}).get("APBD", 0)
        table.add_row(
            f"{item.get('region_name', '')} ({item.get('region_code', '')})",
            _count(item.get("active", 0)),
            f"{ratio:.2%}" if isinstance(ratio, float) else "-",
            "Rp" + _count(apbd),
        )
    console.print(table)
