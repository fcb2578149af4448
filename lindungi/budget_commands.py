"""Budget commands: a finance office's `budget set|show` and the second principal's `holds list|approve|refuse`.

A command is sent as the partner sends every request, on its own request topic (on a secured broker the only
one its principal may write), and the command waits for registration's answer: the allocation recorded on the
budget topic, the verdict recorded on the outcomes topic, or a rejection with its reasons. What a budget stands
at and which requests are held are read from registration's API.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError
from rich.table import Table

from lindungi.context import admin_headers, api_get, console, fail, settings
from shared import events as ev
from shared import topics
from shared.messaging import encode

budget_app = typer.Typer(help="A region's budget for contributions (APBD, APBDes): declare it, see where it stands.")
holds_app = typer.Typer(help="Requests held over the budget: list them, approve or refuse them (maker-checker).")


def _rupiah(amount: int | None) -> str:
    return "" if amount is None else f"Rp{amount:,}".replace(",", ".")


class _Watch:
    """One topic read from its end as it was before the command went out; a topic that did not exist yet
    (nothing answered there before) is read from its start once it appears."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self.assigned = False

    async def start(self) -> None:
        await self.consumer.start()
        await self._assign(at_end=True)

    async def _assign(self, *, at_end: bool) -> None:
        await self.consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        partitions = [
            TopicPartition(self.topic, p) for p in sorted(self.consumer.partitions_for_topic(self.topic) or ())
        ]
        if not partitions:
            return
        self.consumer.assign(partitions)
        ends = await self.consumer.end_offsets(partitions) if at_end else {}
        for tp in partitions:
            self.consumer.seek(tp, ends.get(tp, 0))
        self.assigned = True

    async def values(self) -> list[bytes]:
        if not self.assigned:
            await self._assign(at_end=False)
            if not self.assigned:
                await asyncio.sleep(0.5)
                return []
        batch = await self.consumer.getmany(timeout_ms=500)
        return [record.value or b"" for records in batch.values() for record in records]

    async def stop(self) -> None:
        await self.consumer.stop()


def _answer(value: bytes, partner: str, request_id: str) -> ev.CloudEvent[Any] | None:
    for adapter in (ev.outcome_adapter, ev.budget_event_adapter):
        try:
            event = adapter.validate_json(value)
        except ValidationError:
            continue
        data = event.data
        if isinstance(data, ev.AllocationRecorded) and (data.declared_by, data.request_id) == (partner, request_id):
            return event
        if getattr(data, "partner_id", None) == partner and getattr(data, "request_id", None) == request_id:
            return event
    return None


async def _send_and_wait(command: ev.CloudEvent[Any], partner: str, request_id: str, within: float) -> Any:
    """Publish a command on the partner's own topic and wait for registration's answer to it."""
    config = settings()
    bootstrap = config.kafka_bootstrap_servers
    watches = [_Watch(bootstrap, config.outcomes_topic), _Watch(bootstrap, config.budget_topic)]
    try:
        for watch in watches:
            await watch.start()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            value, headers = encode(command)
            topic = config.requests_topic or topics.partner_requests_topic(partner, config.partner_topic_prefix)
            await producer.send_and_wait(
                topic, value, key=request_id.encode(), headers=[(k, v.encode()) for k, v in headers.items()]
            )
        finally:
            await producer.stop()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for batch in await asyncio.gather(*(watch.values() for watch in watches)):
                for value in batch:
                    found = _answer(value, partner, request_id)
                    if found is not None:
                        return found
        return None
    finally:
        for watch in watches:
            await watch.stop()


def _report(answer: Any, request_id: str) -> None:
    if answer is None:
        raise fail(f"no answer to {request_id} yet; send the same command again (it is idempotent)", 3)
    if isinstance(answer, ev.RequestRejected):
        for reason in answer.data.reasons:
            console.print(f"[red]{reason.code}[/red] {reason.message_en}")
        raise fail(f"{request_id} was rejected", 2)


@budget_app.command("set")
def budget_set(  # noqa: PLR0913, PLR0917 - typer: one option per field of an allocation
    partner: Annotated[str, typer.Option("--partner", "-p", help="your partner id (a finance office)")],
    region: Annotated[str, typer.Option(help="the budget's region: a province, regency/city or kecamatan code")],
    year: Annotated[int, typer.Option(help="fiscal year")],
    amount: Annotated[int, typer.Option(help="the allocation in whole Rupiah")],
    dprd: Annotated[str, typer.Option(help="reference of the DPRD decision")],
    source: Annotated[ev.BudgetSource, typer.Option(help="APBD or APBDES")] = ev.BudgetSource.APBD,
    workers: Annotated[int | None, typer.Option(help="a cap in workers, if the decision sets one")] = None,
    effective: Annotated[str | None, typer.Option(help="from when (YYYY-MM-DD; default 1 January)")] = None,
    request_id: Annotated[str | None, typer.Option(help="your id for this declaration (default: generated)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 60,
) -> None:
    """Declare a budget's allocation, or revise it (APBD-P): every declaration is a new version."""
    request_id = request_id or f"alloc-{region}-{year}-{source.value}-{datetime.now().strftime('%Y%m%d%H%M%S')}"  # noqa: DTZ005 - a local label
    try:
        data = ev.AllocationRequest(
            request_id=request_id,
            region_code=region,
            fiscal_year=year,
            funding_source=source,
            amount=amount,
            worker_cap=workers,
            effective_date=date.fromisoformat(effective) if effective else date(year, 1, 1),
            dprd_decision=dprd,
        )
    except (ValidationError, ValueError) as error:
        raise fail(f"not a valid allocation: {error}", 2) from None
    command = ev.AllocationRequested(source=f"partner/{partner}", subject=request_id, data=data)
    answer = asyncio.run(_send_and_wait(command, partner, request_id, timeout))
    _report(answer, request_id)
    recorded = answer.data
    console.print(
        f"[green]recorded[/green] {recorded.region_code} {recorded.fiscal_year} {recorded.funding_source.value}: "
        f"version {recorded.version}, {_rupiah(recorded.amount)} from {recorded.effective_date}"
    )


@budget_app.command("show")
def budget_show(
    region: Annotated[str | None, typer.Option(help="a region and what lies under it")] = None,
    year: Annotated[int | None, typer.Option(help="one fiscal year")] = None,
) -> None:
    """Where each budget stands: allocation, reserved, remaining, workers and holds waiting."""
    url = f"{settings().registration_url}/budgets" + (f"?region={region}" if region else "")
    positions = [ev.BudgetPosition.model_validate(p) for p in api_get(url)]
    table = Table(title="budgets")
    for column in ("budget", "version", "allocation", "reserved", "remaining", "workers", "holds waiting"):
        table.add_column(column, justify="left" if column == "budget" else "right")
    for p in positions:
        if year is not None and p.fiscal_year != year:
            continue
        remaining = None if p.allocation is None else p.allocation - p.reserved
        table.add_row(
            f"{p.region_code} {p.fiscal_year} {p.funding_source.value}",
            str(p.allocation_version),
            _rupiah(p.allocation) or "not declared",
            _rupiah(p.reserved),
            _rupiah(remaining) if remaining is None or remaining >= 0 else f"[red]{_rupiah(remaining)}[/red]",
            str(p.workers),
            f"{p.holds_waiting} ({_rupiah(p.holds_waiting_amount)})" if p.holds_waiting else "0",
        )
    console.print(table)


@holds_app.command("list")
def holds_list(region: Annotated[str | None, typer.Option(help="a region and what lies under it")] = None) -> None:
    """Held requests waiting for a verdict (masked NIK only)."""
    import httpx  # noqa: PLC0415 - only this command sends the admin token with a GET

    url = f"{settings().registration_url}/holds" + (f"?region={region}" if region else "")
    try:
        response = httpx.get(url, headers=admin_headers(), timeout=10)
    except httpx.HTTPError as error:
        raise fail(f"{url}: {error}") from error
    if response.status_code != 200:
        raise fail(f"{url}: {response.status_code} {response.text[:300]}")
    held = [ev.Held.model_validate(h) for h in response.json()]
    table = Table(title=f"{len(held)} held requests")
    for column in ("held request", "budget", "segment", "NIK", "required", "available", "reason"):
        table.add_column(column)
    for h in held:
        table.add_row(
            f"{h.partner_id}:{h.request_id}",
            h.budget.key,
            h.segment.value,
            h.nik_masked,
            _rupiah(h.required),
            _rupiah(h.available),
            ", ".join(r.code for r in h.reasons),
        )
    console.print(table)


def _verdict(held: str, partner: str, verdict: ev.HoldVerdict, note: str | None, timeout: float) -> None:
    held_partner, _, held_request = held.partition(":")
    if not held_request:
        raise fail("name the held request as <partner>:<request id>, as `lindungi holds list` shows it", 2)
    request_id = f"{verdict.value.lower()}-{held_request}-{datetime.now().strftime('%Y%m%d%H%M%S')}"[:128]  # noqa: DTZ005
    data = ev.HoldDecisionRequest(
        request_id=request_id, held_partner_id=held_partner, held_request_id=held_request, verdict=verdict, note=note
    )
    command = ev.HoldDecisionRequested(source=f"partner/{partner}", subject=request_id, data=data)
    answer = asyncio.run(_send_and_wait(command, partner, request_id, timeout))
    _report(answer, request_id)
    console.print(
        f"[green]{answer.data.resolution.value.lower()}[/green] {held}: "
        + ("the request is decided again with the budget checked" if verdict is ev.HoldVerdict.APPROVE else "refused")
    )


@holds_app.command("approve")
def holds_approve(
    held: Annotated[str, typer.Argument(help="<partner>:<request id> of the held request")],
    partner: Annotated[str, typer.Option("--partner", "-p", help="your partner id (not the one that sent it)")],
    note: Annotated[str | None, typer.Option(help="why, for the record")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 60,
) -> None:
    """Approve a held request: it is decided again, and enrolled if the budget now has room."""
    _verdict(held, partner, ev.HoldVerdict.APPROVE, note, timeout)


@holds_app.command("refuse")
def holds_refuse(
    held: Annotated[str, typer.Argument(help="<partner>:<request id> of the held request")],
    partner: Annotated[str, typer.Option("--partner", "-p", help="your partner id (not the one that sent it)")],
    note: Annotated[str | None, typer.Option(help="why, for the record")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer")] = 60,
) -> None:
    """Refuse a held request: its sender gets a rejection with HOLD_REFUSED."""
    _verdict(held, partner, ev.HoldVerdict.REFUSE, note, timeout)
