"""Per-step callbacks of the training loop. ``FaultInjection`` exists for the resume tests.

A callback has ``on_step(state)``, called on every worker after each optimizer step (and after
that step's checkpoint, if any).
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Protocol

from pulse import io
from pulse.train_ray.config import TrainConfig

if TYPE_CHECKING:
    from pulse.train_ray.loop import WorkerState


class StepCallback(Protocol):
    def on_step(self, state: WorkerState) -> None: ...


class KillOnceAtStep:
    """SIGKILL one worker once per run (``fault:`` in the config), after its checkpoint had time to register.

    A test hook: the resume tests kill a worker mid-run and check that training resumes.
    """

    def __init__(self, at_step: int, rank: int, delay_s: float):
        self.at_step, self.rank, self.delay_s = at_step, rank, delay_s

    def on_step(self, state: WorkerState) -> None:
        if state.resumed_from is not None or state.step != self.at_step or state.rank != self.rank:
            return
        marker = io.join(state.cfg.run_dir, "fault_injected")
        if io.exists(marker, state.cfg.storage):  # a restart that found no checkpoint must not loop forever
            return
        io.write_text(marker, f"SIGKILL rank {state.rank} after step {state.step}\n", state.cfg.storage)
        time.sleep(self.delay_s)  # the controller registers a checkpoint only after polling every report
        os.kill(os.getpid(), signal.SIGKILL)


def callbacks_for(cfg: TrainConfig) -> list[StepCallback]:
    callbacks: list[StepCallback] = []
    if cfg.fault is not None:
        callbacks.append(KillOnceAtStep(cfg.fault.at_step, cfg.fault.rank, cfg.fault.delay_s))
    return callbacks
