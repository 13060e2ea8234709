"""pulse's own progress line: pure formatting, and a real counter actor fed by Ray tasks."""

from __future__ import annotations

import io as _stdio

from pulse.progress import Progress, format_line, format_seconds, report, restart_at


def test_line_shows_count_rate_and_eta():
    assert (
        format_line("render", 20, 100, "records", 10.0)
        == "[render] 20/100 records (2.0/s, ETA 40s, 10s elapsed)"
    )
    assert format_line("build", 3, None, "shards", 2.0) == "[build] 3 shards (1.5/s, 2s elapsed)"
    assert format_line("ingest", 0, 10, "read units", 0.0) == "[ingest] 0/10 read units (0.0/s, 0s elapsed)"
    assert format_seconds(75) == "1m15s" and format_seconds(3 * 3600 + 120) == "3h02m"


def test_a_resumed_run_counts_its_rate_from_where_it_restarted_and_shows_the_note():
    # Resumed at step 20 five seconds ago, now at 30 of 40: 2 steps/s of its own, 5 s left.
    line = format_line("train", 30, 40, "steps", 65.0, since=(20, 5.0), note="loss 2.3100")
    assert line == "[train] 30/40 steps (2.0/s, ETA 5s, 1m05s elapsed) loss 2.3100"


def test_tasks_report_to_the_driver_line(ray_session):
    ray = ray_session

    @ray.remote(num_cpus=0.1)
    def work(counter, n):
        report(counter, n)
        return n

    stream = _stdio.StringIO()
    with Progress(ray, "demo", total=10, unit="items", interval_s=0.2, stream=stream) as progress:
        assert sum(ray.get([work.remote(progress.counter, n) for n in (1, 2, 3, 4)])) == 10
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[demo] 0/10 items") and lines[-1].startswith("[demo] 10/10 items")
    report(None, 5)  # no counter: a no-op


def test_a_restarted_counter_reports_from_its_restart_with_the_latest_note(ray_session):
    stream = _stdio.StringIO()
    with Progress(ray_session, "train", total=8, unit="steps", interval_s=60, stream=stream) as progress:
        report(progress.counter, 3, "loss 3.0")
        restart_at(progress.counter, 2)  # a worker group restarted from its step-2 checkpoint
        for step in range(6):
            report(progress.counter, 1, f"loss {2.0 - step / 10:.1f}")
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("[train] 8/8 steps (") and last.endswith(" loss 1.5")
