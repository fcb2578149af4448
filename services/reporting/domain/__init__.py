"""Reporting's pure domain: what an outcome counts and where, a source partition's state and its fold, the
read model over every partition, coverage, and the figures published and served.

- `counters`: the counter names, the region codes' roll-up, and the change one outcome makes at its leaf.
- `partitions`: one source partition's state (chunks, cursor, dedupe window), the fold, and what is pending
  a write; `PartitionStore` is the storage it needs.
- `read_model`: the counters of every region, summed over all partitions.
- `coverage`: denominators and targets, and the operator's file of official figures.
- `figures`: a region's aggregate, the barometer's ranks, small-cell suppression.

Standard library and `shared` only: no broker, no database, no clock (instants are parameters).
The documents these are stored as are store.py's business.
"""
