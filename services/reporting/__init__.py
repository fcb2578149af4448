"""Reporting: outcomes folded into per-region aggregates, published as snapshots, served over HTTP.

Beside the anatomy every service shares (app, handlers, service, domain/, store, http, settings), three
modules each hold one idea: `projection.py` (the owned partitions' state in memory and the read model, shared
by the live service and the rebuild), `publishing.py` (coalesced snapshots on the compacted topic) and
`commands.py` (the operator's rebuild and load-targets).
"""
