"""The `lindungi` command-line tool for partners and operators."""
