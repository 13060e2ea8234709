"""The stage contract every Ray Data stage follows, and the one helper that runs a stage.

A stage is a class:

- it declares its ``input_columns`` (required), ``optional_columns`` and ``output_columns``;
- its ``__init__`` does the heavy setup once per worker (renderer, processor, model);
- its ``__call__(batch)`` maps a pyarrow batch to a pyarrow batch and sets ``error`` per row,
  never raising for one bad row: ``guarded`` turns an upstream error into ``upstream_error`` and
  a crash into the stage's ``crash_reason``.

``map_stage`` runs it as an actor pool (a fixed size or an autoscaling ``(min, max)`` range), so
the setup is paid once per actor, or as tasks when the setup is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pulse.errors import UPSTREAM_ERROR, error_text
from pulse.schema import require_columns

Result = TypeVar("Result")


class StageError(Exception):
    """One row's failure with a reason from ``pulse.errors.REASONS``; ``str()`` is the error text."""

    def __init__(self, reason: str, detail: object = ""):
        super().__init__(error_text(reason, detail))
        self.reason = reason


class Stage:
    """Base of every Ray Data stage (see the module docstring)."""

    name: ClassVar[str]
    input_columns: ClassVar[tuple[str, ...]]
    optional_columns: ClassVar[tuple[str, ...]] = ()
    output_columns: ClassVar[tuple[str, ...]]
    crash_reason: ClassVar[str] = "internal"
    """the reason of a row whose processing raised something other than a ``StageError``."""

    @classmethod
    def read_columns(cls, available: list[str]) -> list[str]:
        """The columns to select from the previous stage's output (required ones must be there)."""
        require_columns(available, cls.input_columns, cls.name)
        return [c for c in (*cls.input_columns, *cls.optional_columns) if c in available]

    def guarded(self, process: Callable[[dict[str, Any]], Result], row: dict[str, Any]) -> Result | str:
        """``process(row)``, or the row's error text: upstream error, ``StageError`` or a crash."""
        if row.get("error"):
            return error_text(UPSTREAM_ERROR, row["error"])
        try:
            return process(row)
        except StageError as exc:
            return str(exc)
        except Exception as exc:  # a bug or exotic input must cost one row, not the job
            return error_text(self.crash_reason, f"{type(exc).__name__}: {exc}")

    def __call__(self, batch):
        raise NotImplementedError


Workers = int | tuple[int, int] | list[int] | None


def compute_strategy(workers: Workers, actors: bool = True):
    """Ray Data's actor pool (or task pool) for a fixed worker count or an autoscaling ``(min, max)``;
    ``None`` (tasks only) lets Ray Data decide how many tasks run at once."""
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    if not actors:
        return TaskPoolStrategy(size=workers if workers is None or isinstance(workers, int) else max(workers))
    if workers is None:
        raise ValueError("an actor pool needs a worker count")
    if isinstance(workers, int):
        return ActorPoolStrategy(size=workers)
    low, high = workers
    return ActorPoolStrategy(min_size=low, max_size=high)


def _run_in_task(batch, stage: type[Stage], kwargs: dict[str, Any]):
    return stage(**kwargs)(batch)


def map_stage(
    ds,
    stage: type[Stage],
    *,
    kwargs: dict[str, Any] | None = None,
    workers: Workers = 1,
    tasks: bool = False,
    batch_size: int | None = None,
    num_cpus: float = 1.0,
    **ray_options: Any,
):
    """``ds`` mapped through ``stage``: on an actor pool (one ``stage(**kwargs)`` per actor), or with
    ``tasks=True`` as up to ``workers`` tasks (``None``: as many as Ray Data schedules) that build
    the stage per batch (for a cheap setup)."""
    common = {"batch_size": batch_size, "batch_format": "pyarrow", "num_cpus": num_cpus, **ray_options}
    if tasks:
        return ds.map_batches(
            _run_in_task, fn_args=(stage, kwargs or {}), compute=compute_strategy(workers, False), **common
        )
    return ds.map_batches(
        stage, fn_constructor_kwargs=kwargs or {}, compute=compute_strategy(workers), **common
    )
