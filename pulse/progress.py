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


def format_line(job: str, done: int, total: int | None, unit: str, seconds: float) -> str:
    """One progress line: count (of total), rate and, with a total, the time left."""
    rate = done / seconds if seconds > 0 else 0.0
    count = f"{done}/{total}" if total is not None else f"{done}"
    line = f"[{job}] {count} {unit} ({rate:.1f}/s"
    if total is not None and rate > 0 and done < total:
        line += f", ETA {format_seconds((total - done) / rate)}"
    return line + f", {format_seconds(seconds)} elapsed)"


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def report(counter: Any, n: int) -> None:
    """Called inside a Ray task/actor: add ``n`` finished items (no-op without a counter)."""
    if counter is not None and n:
        counter.add.remote(int(n))


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
        return int(self._ray.get(self.counter.value.remote(), timeout=30))

    def _safe_done(self) -> int | None:
        try:
            return self.done()
        except Exception:  # the counter is best effort; the job's result never depends on it
            return None

    def _print(self, force: bool = False) -> None:
        done = self._safe_done()
        if done is None:
            return
        if force or done != self._printed:
            print(
                format_line(self.job, done, self.total, self.unit, time.time() - self._started),
                file=self.stream,
                flush=True,
            )
            self._printed = done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print()


class _Counter:
    def __init__(self):
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n

    def value(self) -> int:
        return self.count
