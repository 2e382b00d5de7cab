"""Benchmarks for framehook (run them as scripts, e.g. ``python bench/ack.py``)."""
