"""Registration's pure domain: enrollment rules, the NIK, contributions, and synthetic requests.

Standard library, pydantic and `shared` only: no broker, no database, no clock (dates are parameters).
"""
