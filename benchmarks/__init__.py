"""Benchmarks: python -m benchmarks.run --customers N."""
