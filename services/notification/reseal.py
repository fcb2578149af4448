"""`python -m services.notification.reseal [--check]`: webhook signing secrets re-sealed with the current key.

Notification keeps each partner's and each webhook subscriber's signing secret sealed with `LINDUNGI_SEAL_KEY`,
bound to its owner. After a seal-key rotation (docs/operations.md "Rotating secrets") they are opened with the
key ring until this walk (`shared.resealing`) has re-sealed them; then the old key can go. The service keeps
running; an operator's change of a secret meanwhile wins over the walk. Exit 0: finished; 1: run again; 2:
values no configured key opens (`shared.resealing.verdict`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from pymongo import AsyncMongoClient, UpdateOne

from services.notification.settings import NotificationSettings

# The binding of a secret to its owner is the store's; the walk must seal with exactly the same.
from services.notification.store import _sealed_for
from shared.logging import configure_logging
from shared.resealing import ResealProgress, SealedField, SealedValue, reseal, verdict

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.resealing import Document

cli = typer.Typer(add_completion=False, help=__doc__.splitlines()[0] if __doc__ else None)


def secret_fields(db: AsyncDatabase[Document]) -> list[SealedField]:
    """`partners` and `subscriptions`: one `secret_sealed` each (None for a subscriber without a webhook)."""

    def field(collection: str, kind: str) -> SealedField:
        def read(document: Document) -> SealedValue | None:
            token = document.get("secret_sealed")
            return None if not token else SealedValue(token, _sealed_for(kind, document["_id"]))

        def replace(document: Document, token: str) -> UpdateOne:
            was = document["secret_sealed"]
            return UpdateOne({"_id": document["_id"], "secret_sealed": was}, {"$set": {"secret_sealed": token}})

        return SealedField(f"{collection} (webhook secrets)", db[collection], ("secret_sealed",), read, replace)

    return [field("partners", "partner"), field("subscriptions", "subscription")]


async def reseal_notification(
    settings: NotificationSettings, *, check: bool, batch_size: int = 500
) -> list[ResealProgress]:
    sealer = settings.sealer()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        db = client[settings.mongodb_database]
        return [await reseal(f, sealer, check=check, batch_size=batch_size) for f in secret_fields(db)]
    finally:
        await client.close()


@cli.command()
def main(check: Annotated[bool, typer.Option("--check", help="count only; write nothing")] = False) -> None:  # noqa: FBT002
    """Re-seal the webhook signing secrets with LINDUNGI_SEAL_KEY; with --check, count what is left to do."""
    settings = NotificationSettings()
    configure_logging("notification-reseal", settings.log_level, settings.log_format)
    progress = asyncio.run(reseal_notification(settings, check=check))
    code, report = verdict(progress)
    typer.echo(report)
    raise typer.Exit(code)


if __name__ == "__main__":
    cli()
