"""Registration's pure domain: the rules a request must meet, the NIK, contributions, and lifecycle decisions.

- `decisions`: `decide` (one request, the partner and the participation as it stands in; one decision out)
  and `schema_rejection`; `participation`: what a decision works on and produces (partner, participation,
  history entry, decision, context).
- `rules`: the enrollment rules; `changes`: the rules of updates, terminations, reactivations and of the
  participation's states.
- `contributions`: the monthly contribution and who pays it; `rates`: the rate file it reads (`rates.toml`).
- `nik`, `age`, `violations`: the NIK's parts, ages and age bands, and a rule's finding.

Standard library, pydantic and `shared` only: no broker, no database, no clock (dates are parameters), and
no document shapes (the store maps these values to its documents).
"""
