"""`lindungi`: the command-line tool for partners and operators.

Partners: `generate` synthetic requests, `publish` a CSV/Excel file and get a results file. Finance offices:
declare a `budget`, decide `holds`. Operators: `report` a region, manage `partners` and `subscriptions`,
inspect and replay dead letters (`dlq`).
It talks to Lindungi only as a partner or operator would: Kafka topics and the services' HTTP APIs.

The commands live in `partner_commands`, `budget_commands` and `operator_commands`; what they share
(settings, console, the services' APIs) in `context`. This module only assembles them into the one `lindungi` command.
"""

from __future__ import annotations

import typer

from lindungi.budget_commands import budget_app, holds_app
from lindungi.operator_commands import dlq_app, partners_app, subscriptions_app
from lindungi.partner_commands import generate, publish, report

app = typer.Typer(help="Lindungi: enroll every worker in BPJS Ketenagakerjaan.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(dlq_app, name="dlq")
app.add_typer(budget_app, name="budget")
app.add_typer(holds_app, name="holds")
app.command()(generate)
app.command()(publish)
app.command()(report)


if __name__ == "__main__":
    app()
