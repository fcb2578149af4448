"""Registration: validates partners' requests, keeps participations, and publishes what it decided.

Read top to bottom: `__main__` -> `app` (wiring) -> `handlers` (records decoded) -> `service` (the order of
steps: rounds, the request log, what is written and published) -> `domain/` (pure rules and decisions) and
`store` (documents in and out); `http` holds the `/partners` routes, `settings` the configuration.
docs/registration.md describes the service as an operator and a partner see it.
"""
