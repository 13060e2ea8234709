"""pulse speaks, Ray whispers: keep the known noise that Ray's C++ core writes to fd 2 off the terminal.

Some of Ray's warnings come from its C++ core worker inside the pulse process and go straight to
file descriptor 2, where Python's ``logging`` filters (``pulse.runtime``) cannot reach them.
:func:`install` (the ``pulse`` CLI calls it for job commands, never with ``--verbose``) points fd 2
at a pipe and starts a small filter process that copies every line through to the real stderr,
except the lines that contain one of :data:`NOISE`. Nothing else is dropped.

- Immediate: lines pass as they arrive (Python's ``sys.stderr`` is line-buffered, and C++ logging
  writes whole lines); a partial line (a prompt, a ``\\r`` progress update) passes once nothing more
  has come for :data:`PARTIAL_WAIT_S`, and the rest of that line then passes unfiltered.
- Nothing lost on failure: the filter is its own process, so it drains the pipe even when pulse
  dies abruptly (a C++ ``abort()``, a segfault, ``SIGKILL``). A thread inside pulse would die with it
  and lose exactly the last lines, the ones that explain a crash. At an ordinary exit (an uncaught
  exception included) an ``atexit`` hook flushes ``sys.stderr``, gives fd 2 back to the real stderr
  and waits up to :data:`EXIT_WAIT_S` for the filter to write what is left, so the shell prompt
  comes after the last line. The filter runs in its own session: Ctrl-C reaches pulse, not it.
- Inherited: processes that pulse starts while the filter is on inherit fd 2 (the pipe), so their
  stderr passes through the same filter (only :data:`NOISE` lines are dropped, nothing reordered
  within one writer). That is intended: Ray's daemons and workers of an embedded ``ray.init`` write
  their own output to log files under the session folder, and a child's error text still arrives.
  A child that outlives pulse keeps the filter alive until it closes its stderr (the filter exits
  at end of file), so its last lines still arrive; ``EXIT_WAIT_S`` bounds how long pulse waits.
- While it is on, stderr is a pipe, not a terminal (``sys.stderr.isatty()`` is False); pulse does
  not look, and Ray's coloured worker prefixes only show with ``--verbose``, when it is off.

This file imports only the standard library at the top: the filter process runs it as a script.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys

NOISE: tuple[str, ...] = (
    # Ray's core worker (core_worker.cc, Ray >= 2.47) on every actor pool Ray Data starts: "Actor with
    # class name: 'MapWorker(...)' ... has constructor arguments in the object store and max_restarts
    # > 0. If the arguments in the object store go out of scope or are lost, the actor restart will
    # fail. See https://github.com/ray-project/ray/issues/53727". pulse's constructor arguments are a
    # few KB of config that its driver holds for the whole job, so the restart caveat does not apply.
    "has constructor arguments in the object store and max_restarts > 0",
)
"""Substrings of the lines the filter drops; keep each one specific, with its reason above it."""

PARTIAL_WAIT_S = 0.05
EXIT_WAIT_S = 5.0


def is_noise(line: bytes, noise: tuple[bytes, ...]) -> bool:
    return any(pattern in line for pattern in noise)


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``; a reader that has gone away is not an error (the pipe is still drained)."""
    while data:
        try:
            data = data[os.write(fd, data) :]
        except InterruptedError:
            continue
        except OSError:
            return


def copy_lines(read_fd: int, write_fd: int, noise: tuple[bytes, ...]) -> None:
    """Copy ``read_fd`` to ``write_fd`` until end of file, dropping the lines that contain ``noise``."""
    pending = b""  # the start of a line whose newline has not come yet
    decided: bool | None = None  # whether the rest of a line whose start already went passes too
    while True:
        ready, _, _ = select.select([read_fd], [], [], PARTIAL_WAIT_S if pending else None)
        if not ready:  # a partial line and then quiet: a prompt or a progress update
            if decided is None:
                decided = not is_noise(pending, noise)
            if decided:
                _write_all(write_fd, pending)
            pending = b""
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        out = []
        for line in lines:
            if decided if decided is not None else not is_noise(line, noise):
                out.append(line + b"\n")
            decided = None
        _write_all(write_fd, b"".join(out))
    if pending and (decided if decided is not None else not is_noise(pending, noise)):
        _write_all(write_fd, pending)


class StderrFilter:
    """The installed filter: fd 2 is the pipe into ``process`` until :meth:`close` (run at exit)."""

    def __init__(self, process, saved_fd: int):
        self.process = process
        self.saved_fd = saved_fd
        self.closed = False

    def close(self, timeout: float = EXIT_WAIT_S) -> None:
        """Flush, give fd 2 back to the real stderr and let the filter write what is left."""
        global _ACTIVE
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        if _ACTIVE is self:
            _ACTIVE = None
        # TimeoutExpired: a child of pulse still holds the pipe; the filter carries on without us.
        with contextlib.suppress(Exception):
            self.process.wait(timeout)


_ACTIVE: StderrFilter | None = None


def install(noise: tuple[str, ...] = NOISE) -> StderrFilter | None:
    """Filter this process's fd 2 (see module doc); ``None`` with ``--verbose`` or when fd 2 is not open.

    Idempotent: a second call returns the filter already installed.
    """
    global _ACTIVE
    import atexit
    import subprocess

    from pulse.runtime import is_verbose

    if _ACTIVE is not None:
        return _ACTIVE
    if is_verbose():
        return None
    try:
        saved_fd = os.dup(2)
    except OSError:
        return None
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    try:
        # -I: neither the script's folder (pulse/, whose io.py would shadow the standard library's)
        # nor PYTHON* variables; -S: no site-packages. The filter needs only the standard library.
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), *noise],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=saved_fd,
            start_new_session=True,
        )
    except OSError:
        os.close(saved_fd)
        os.close(write_fd)
        return None
    finally:
        os.close(read_fd)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _ACTIVE = StderrFilter(process, saved_fd)
    atexit.register(_ACTIVE.close)
    return _ACTIVE


def _main(argv: list[str]) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session already keeps Ctrl-C away; be sure
    copy_lines(0, 2, tuple(pattern.encode() for pattern in argv))


if __name__ == "__main__":
    _main(sys.argv[1:])
