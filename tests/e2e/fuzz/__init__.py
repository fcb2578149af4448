"""The fuzzer of registration's intake (see `tests.e2e.fuzz.run`)."""
