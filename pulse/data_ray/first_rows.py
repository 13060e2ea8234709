"""``limit=N`` smoke runs that see the same N rows on every run."""

from __future__ import annotations

from typing import Any


def first_rows(ds: Any, limit: int | None) -> Any:
    """The first ``limit`` rows of ``ds`` in input order (all rows when ``limit`` is None).

    Ray Data's plain ``limit`` keeps whichever blocks finish first, so two runs of the same
    command would build from different records. Ordering is switched on for this dataset's
    own context only (and what is derived from it), not for the whole process.
    """
    if not limit:
        return ds
    ds.context.execution_options.preserve_order = True
    return ds.limit(limit)
