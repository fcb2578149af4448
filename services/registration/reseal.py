"""`python -m services.registration.reseal [--check]`: registration's NIKs re-sealed with the current seal key.

Run with registration's own environment, after every registration instance runs with the new key as
`LINDUNGI_SEAL_KEY` and the old one in `LINDUNGI_SEAL_KEYS_PREVIOUS` (docs/operations.md "Rotating secrets").
The service keeps running: the walk (`shared.resealing`) reads the participants and the request log once, and
rewrites each value still sealed with an old key by a conditional update, so the service's own writes win.
Stopping it is safe and running it again does only what is left.

It prints what it found per collection and exits 0 when nothing sealed with an old key remains: then the old
key can be taken out of `LINDUNGI_SEAL_KEYS_PREVIOUS` (for registration's data; see the procedure for dead
letters and notification's webhook secrets). Exit 1: values changed by the service meanwhile, run again (or
`--check`). Exit 2: values no configured key opens (a key missing from the ring).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pymongo import AsyncMongoClient

from services.registration.settings import RegistrationSettings
from services.registration.store import Document, MongoRegistrationStore
from shared.logging import configure_logging
from shared.resealing import ResealProgress, reseal, verdict

cli = typer.Typer(add_completion=False, help=__doc__.splitlines()[0] if __doc__ else None)


async def reseal_registration(
    settings: RegistrationSettings, *, check: bool, batch_size: int = 500, pause_seconds: float = 0.0
) -> list[ResealProgress]:
    """Walk every place registration keeps a sealed NIK, one after the other."""
    sealer = settings.sealer()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        store = MongoRegistrationStore(client, settings.mongodb_database, sealer)
        return [
            await reseal(field, sealer, check=check, batch_size=batch_size, pause_seconds=pause_seconds)
            for field in store.sealed_fields()
        ]
    finally:
        await client.close()


@cli.command()
def main(
    check: Annotated[bool, typer.Option("--check", help="count only; write nothing")] = False,  # noqa: FBT002
    batch_size: Annotated[int, typer.Option(min=1, help="updates written between two pauses")] = 500,
    pause: Annotated[float, typer.Option(min=0, help="seconds to wait between batches, to spare a busy service")] = 0,
) -> None:
    """Re-seal registration's NIKs with LINDUNGI_SEAL_KEY; with --check, count what is left to do."""
    settings = RegistrationSettings()
    configure_logging("registration-reseal", settings.log_level, settings.log_format)
    sealer = settings.sealer()
    typer.echo(f"database {settings.mongodb_database}; current key {sealer.key_id}; keys {' '.join(sealer.key_ids)}")
    progress = asyncio.run(reseal_registration(settings, check=check, batch_size=batch_size, pause_seconds=pause))
    code, report = verdict(progress)
    typer.echo(report)
    raise typer.Exit(code)


if __name__ == "__main__":
    cli()
