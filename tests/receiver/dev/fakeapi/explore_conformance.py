"""Exploring the fake against the official spec, every failure counted, none fatal (not a test).

    python -m tests.receiver.dev.fakeapi.explore_conformance            # the conformance checks
    python -m tests.receiver.dev.fakeapi.explore_conformance --negative  # negative_data_rejection

For each operation, schemathesis generates requests (schema-valid ones, or with ``--negative``
schema-violating ones that the fake should refuse with a 4xx) and this prints how many answers
failed each check, grouped by operation, with one example per group. ``test_conformance`` is
the test that must pass; this shows how far the fake is from also rejecting what the spec
forbids.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import negative_data_rejection
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from tests.receiver.dev.fakeapi.test_conformance import CHECKS, schema


def _explore(
    operation: Any, mode: GenerationMode, examples: int
) -> tuple[int, Counter[str], dict[str, str]]:
    """Requests made, how many answers failed each check (by its title), and one request
    (as curl) per title."""
    failures: Counter[str] = Counter()
    shown: dict[str, str] = {}
    calls = 0
    checks = [negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests each run, so counts compare across runs
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Any]) -> None:
        nonlocal calls
        calls += 1
        response = case.call()
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                title = failure.title if isinstance(failure, Failure) else repr(failure)
                key = f"{title} (answered {response.status_code})"
                failures[key] += 1
                shown.setdefault(key, case.as_curl_command({"X-API-Key": "afk_..."}))

    run()
    return calls, failures, shown


def main() -> None:
    """Run every operation of the spec and print the failures grouped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--negative", action="store_true", help="negative_data_rejection")
    parser.add_argument("--examples", type=int, default=25, help="requests per operation")
    options = parser.parse_args()
    mode = GenerationMode.NEGATIVE if options.negative else GenerationMode.POSITIVE
    total_calls = total_failures = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            sys.stdout.write(f"cannot test an operation: {result.err()}\n")
            continue
        operation = result.ok()
        calls, failures, shown = _explore(operation, mode, options.examples)
        total_calls += calls
        total_failures += sum(failures.values())
        for title, count in sorted(failures.items()):
            sys.stdout.write(f"{operation.label}: {count}/{calls} {title}\n")
            sys.stdout.write(f"    e.g. {shown[title]}\n")
    sys.stdout.write(f"{total_failures} failed answers of {total_calls} requests ({mode.value})\n")


if __name__ == "__main__":
    main()
