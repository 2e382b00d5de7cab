"""The suite runs under pytest-xdist, which runs one test per node id: every test must have an
id of its own (``tests/conftest.py``), or some pass without running."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = "tests/receiver/dev/fakeapi/test_conformance.py"


def test_each_api_operations_conformance_test_has_an_id_of_its_own() -> None:
    """schemathesis makes one test per operation of Apiframe's spec, all with the test
    function's id unless the conftest names them: each id is unique and names its operation."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", CONFORMANCE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if line.startswith(f"{CONFORMANCE}::")]
    every_answer = [i for i in ids if "::test_every_answer_conforms_to_the_official_spec" in i]
    assert len(every_answer) > 10, ids
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert f"{CONFORMANCE}::test_every_answer_conforms_to_the_official_spec[GET /v2/jobs]" in ids
