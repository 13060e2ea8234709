"""Collective decisions in the training loop: every rank makes the same call (a real 2-process gloo group)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pulse.train_ray.loop import any_rank


def _vote(rank: int, init_file: str, flags: list[bool], results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        results[rank] = any_rank(flags[rank], torch.device("cpu"))
    finally:
        dist.destroy_process_group()


def votes(tmp_path, flags: list[bool]) -> list[bool]:
    results = mp.get_context("spawn").Manager().dict()
    mp.spawn(_vote, args=(str(tmp_path / f"init-{flags}"), flags, results), nprocs=2, join=True)
    return [results[0], results[1]]


def test_a_report_due_on_one_rank_is_due_on_every_rank(tmp_path):
    """Rank 0's clock says report, rank 1's not yet: both report (one alone would deadlock the step)."""
    assert votes(tmp_path, [True, False]) == [True, True]
    assert votes(tmp_path, [False, True]) == [True, True]
    assert votes(tmp_path, [False, False]) == [False, False]


def test_without_a_process_group_the_flag_is_its_own_answer():
    assert any_rank(True, torch.device("cpu")) is True
    assert any_rank(False, torch.device("cpu")) is False
