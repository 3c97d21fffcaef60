"""Benchmarks: `make bench` prints every ratio with its target (see BENCHMARKS.md)."""
