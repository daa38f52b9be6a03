"""Targets as rows, one shape for every suite's result JSON and for docs/benchmarks.md.

A row is ``{"id", "issue", "target", "measured", "pass"}``; ``pass`` is True or
False, or one of the words "info" (a figure the issue asks to report, with no
bar), "not measured" (the result file lacks the figure: an older run, a failed
system) or "not lent" (needs a machine this run did not have). Each suite's
``targets(...)`` builds its rows with :func:`judge` and stores them in its
JSON; ``python -m bench report`` calls the same functions on the newest files.

Example::

    row = judge("9.4-cli", "cold search <= 0.7 s", lambda: (f"{f['median_s']:.2f} s",
                                                           f["median_s"] <= 0.7))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .common import table

NOT_MEASURED = "not measured"
#: what a figure missing from an older or partial result file raises on the way to a row
MISSING = (KeyError, TypeError, IndexError, StopIteration, ValueError, ZeroDivisionError)


def judge(tid: str, target: str, measure: Callable[[], tuple[str, Any]],
          **extra: Any) -> dict[str, Any]:
    """A target row; ``measure()`` returns (measured text, pass). A figure it cannot find
    makes the row "not measured" instead of an exception."""
    try:
        measured, ok = measure()
    except MISSING:
        measured, ok = NOT_MEASURED, NOT_MEASURED
    return {"id": tid, "issue": tid.split("-")[0], **extra, "target": target,
            "measured": measured, "pass": ok}


def pass_cell(ok: Any) -> str:
    """How a row's pass reads in docs/benchmarks.md."""
    if ok is True:
        return "**pass**"
    if ok is False:
        return "**FAIL**"
    return str(ok)


def targets_table(title: str, rows: Sequence[dict[str, Any]], note: str | None = None
                  ) -> dict[str, Any]:
    """A suite's targets as one of its result tables."""
    return table(title, ["issue", "target", "measured", "pass"],
                 [[r["issue"], r["target"], r["measured"], r["pass"]]
                  for r in rows], note=note)
