"""Trying framehook out: the fake Apiframe, demo, simulate, generate and their loopback plumbing.

Nothing in the service imports this package; only the CLI (and the tests) do.
"""
