"""Benchmarks of the Lindungi services against the real local stack; `python -m bench --help`.

Every headline is a ratio against a baseline measured in the same run, because absolute numbers on a shared
two-core machine move with whatever else runs on it. See docs/benchmarks.md (generated) for the results.
"""
