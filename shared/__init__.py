"""The contract between Lindungi services: events, topics, settings, logging, reference data."""
