"""Reporting: outcomes folded into per-region aggregates, published as snapshots, served over HTTP."""
