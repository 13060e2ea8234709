"""pulse's own progress line for a Ray job: ``[render] 120/500 records (12.3/s, ETA 31s)``.

Ray tasks and actors report what they finished to a tiny counter actor (fire-and-forget, so a
report never slows a task); a thread on the driver prints one line every ``interval_s`` while
the count moves. The handle that tasks get (:attr:`Progress.counter`) pickles like any actor
handle; :func:`report` accepts ``None`` so code runs the same without a progress line.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


def format_line(
    job: str,
    done: int,
    total: int | None,
    unit: str,
    seconds: float,
    since: tuple[int, float] | None = None,
    note: str = "",
) -> str:
    """One progress line: count (of total), rate and, with a total, the time left.

    ``since`` = (count, seconds ago) where this run started counting (a resumed run's first step),
    so the rate and the time left describe this run's own work; ``note`` is the job's latest news.
    """
    counted, counting_s = since or (0, seconds)
    rate = (done - counted) / counting_s if counting_s > 0 else 0.0
    count = f"{done}/{total}" if total is not None else f"{done}"
    line = f"[{job}] {count} {unit} ({rate:.1f}/s"
    if total is not None and rate > 0 and done < total:
        line += f", ETA {format_seconds((total - done) / rate)}"
    line += f", {format_seconds(seconds)} elapsed)"
    return f"{line} {note}" if note else line


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def report(counter: Any, n: int, note: str = "") -> None:
    """Called inside a Ray task/actor: add ``n`` finished items (no-op without a counter)."""
    if counter is not None and (n or note):
        counter.add.remote(int(n), note)


def restart_at(counter: Any, done: int) -> None:
    """Called by a job that resumes: the count is ``done`` again, and this run's rate starts there."""
    if counter is not None:
        counter.restart_at.remote(int(done))


class Progress:
    """``with Progress(ray, "render", total=500, unit="records") as progress: ... progress.counter``."""

    def __init__(self, ray, job: str, total: int | None, unit: str, interval_s: float = 10.0, stream=None):
        self.job = job
        self.total = total
        self.unit = unit
        self.interval_s = interval_s
        self.stream = stream or sys.stdout
        self._ray = ray
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._printed = -1
        counter_class = ray.remote(num_cpus=0)(_Counter)
        self.counter = counter_class.remote()

    def __enter__(self) -> Progress:
        self._started = time.time()
        print(format_line(self.job, 0, self.total, self.unit, 0.0), file=self.stream, flush=True)
        self._printed = 0
        self._thread = threading.Thread(target=self._loop, name=f"pulse-progress-{self.job}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if exc[0] is None:
            # Reports are fire-and-forget: give the last ones a moment to land before the final line.
            deadline = time.time() + 3.0
            while self.total is not None and time.time() < deadline and (self._safe_done() or 0) < self.total:
                time.sleep(0.1)
            self._print(force=True)
        self._ray.kill(self.counter)

    def done(self) -> int:
        return self._snapshot()[0]

    def _snapshot(self) -> tuple[int, int, float, str]:
        """(count, where this run started counting, when it did, latest note)."""
        return tuple(self._ray.get(self.counter.snapshot.remote(), timeout=30))

    def _safe_done(self) -> int | None:
        try:
            return self.done()
        except Exception:  # the counter is best effort; the job's result never depends on it
            return None

    def _print(self, force: bool = False) -> None:
        try:
            done, since, since_time, note = self._snapshot()
        except Exception:  # the counter is best effort; the job's result never depends on it
            return
        if force or done != self._printed:
            now = time.time()
            counting = (since, now - since_time) if since_time else None
            line = format_line(self.job, done, self.total, self.unit, now - self._started, counting, note)
            print(line, file=self.stream, flush=True)
            self._printed = done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print()


class _Counter:
    def __init__(self):
        self.count = 0
        self.since = 0
        self.since_time = 0.0
        self.note = ""

    def add(self, n: int, note: str = "") -> None:
        self.count += n
        self.note = note or self.note

    def restart_at(self, done: int) -> None:
        self.count = self.since = done
        self.since_time = time.time()

    def snapshot(self) -> tuple[int, int, float, str]:
        return self.count, self.since, self.since_time, self.note
