"""`python -m lindungi`: the same as the `lindungi` command."""

from lindungi.cli import app

app()
