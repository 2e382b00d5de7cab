"""How many files a finished job's result names: recorded with its terminal state.

Stored files are the ``assets`` rows; with ``jobs.files_expected`` beside them, "captured" is
something a user can see (``4/4``, or ``0/2`` when a capture went wrong). The count is the
download handler's own reading of the result (``handlers.download.count_files``), so the two
never disagree about what there was to capture.
"""

from __future__ import annotations

from handlers.download import count_files
from receiver.intake.job_state import JobState, JobStatus
from receiver.logs import get_logger

__all__ = ["files_expected"]

_log = get_logger("framehook.intake")


def files_expected(job_id: str, state: JobState) -> int | None:
    """The files ``state``'s result names, once the job has ended: a failed or cancelled job's
    result names none, and neither does a test job's (``framehook send-test``: its URLs are
    made up, and the download handler captures nothing). ``None`` while it runs, or if the
    result could not be read.
    """
    if not state.is_terminal:
        return None
    if state.test or state.status is not JobStatus.COMPLETED or state.result is None:
        return 0
    try:
        return count_files(state.result)
    except Exception as exc:
        # Counting must never fail the commit: the webhook would be answered 503 for ever.
        _log.warning(
            "could not count the files of a result",
            job_id=job_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        return None
