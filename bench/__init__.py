"""Benchmarks that drive a running Gatehouse stack; see docs/performance.md."""
