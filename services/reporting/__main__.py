"""`python -m services.reporting [serve | rebuild | load-targets FILE]`; without a command: serve."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from services.reporting.commands import RebuildError, load_targets, rebuild
from services.reporting.domain.coverage import TargetsFileError
from services.reporting.settings import ReportingSettings
from shared.logging import configure_logging

cli = typer.Typer(
    add_completion=False,
    help="Layanan pelaporan Lindungi / Lindungi reporting service.",
    no_args_is_help=False,
)


def _settings() -> ReportingSettings:
    settings = ReportingSettings()
    configure_logging("reporting", settings.log_level, settings.log_format)
    return settings


@cli.callback(invoke_without_command=True)
def main(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        serve()


@cli.command()
def serve() -> None:
    """Jalankan layanan sampai SIGTERM / run the service until SIGTERM."""
    from services.reporting.app import create_app  # noqa: PLC0415 - the commands do not need the app
    from shared.runtime import run_service  # noqa: PLC0415

    run_service("reporting", ReportingSettings(), create_app)


@cli.command("rebuild")
def rebuild_command(
    database: Annotated[
        str | None,
        typer.Option(help="basis data tujuan / target database (default: REPORTING_MONGODB_DATABASE)"),
    ] = None,
) -> None:
    """Hitung ulang semua agregat dari awal topik hasil / recompute every aggregate from the outcome topic."""
    try:
        report = asyncio.run(rebuild(_settings(), database))
    except RebuildError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    typer.echo(report.describe())


@cli.command("load-targets")
def load_targets_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: region_code,workforce,target_ratio")],
    replace: Annotated[  # noqa: FBT002 - a command-line flag
        bool,
        typer.Option(help="hapus target wilayah yang tidak ada di berkas / drop regions not in the file"),
    ] = False,
) -> None:
    """Muat angkatan kerja resmi dan target cakupan / load official workforce figures and coverage targets."""
    try:
        count = asyncio.run(
            load_targets(_settings(), file.read_text(encoding="utf-8"), source=file.name, replace=replace)
        )
    except TargetsFileError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from error
    typer.echo(f"{count} wilayah dimuat / regions loaded from {file.name}")


if __name__ == "__main__":
    cli()
