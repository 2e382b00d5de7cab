"""Chaos harness: a framehook cluster of real processes under load, faults, and invariants.

- ``proxy``: a round-robin TCP proxy on loopback that skips an upstream refusing connections
  (what a load balancer in front of N receivers does).
- ``cluster``: receivers (``framehook serve --no-worker``) and workers (``framehook worker``)
  as child processes on one PostgreSQL database, each of which a test may SIGKILL, SIGSTOP,
  SIGCONT, SIGTERM or restart.
- ``plan``: hundreds of jobs with a known outcome each, their signed events (duplicates and
  reordering included) and the files their results point to on a loopback CDN.
- ``sender``: sends a plan's events concurrently through the proxy, retries what got no
  answer or a 5xx, and records every 2xx.
- ``invariants``: what must hold after any run, checked against the database and the store (a
  local root, or an object store read back through ``storage.from_url``), printed as a table.
- ``pgserver``: a throwaway PostgreSQL server of a test's own (``initdb``, ``pg_ctl``), for the
  test that restarts the database under load without touching the shared server.

Each fault has its test: receivers killed or stopped (``test_receivers``), workers killed or
frozen mid-download (``test_workers``), PostgreSQL restarted (``test_database``), the object
store gone (``test_object_store``), a burst of ten times the rate (``test_burst``).
"""
