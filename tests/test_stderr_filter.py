"""pulse speaks, Ray whispers: Ray's C++ noise on fd 2 is dropped, everything else arrives, in time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from pulse import stderr_filter

REPO = Path(__file__).resolve().parents[1]
NOISE_LINE = (
    "[2026-01-01 10:00:00,123 E 2177 2177] core_worker.cc:2465: Actor with class name: "
    "'MapWorker(ReadRange->MapBatches(Add))' and ID: '128e24a5' has constructor arguments in the object "
    "store and max_restarts > 0. If the arguments in the object store go out of scope or are lost, the "
    "actor restart will fail. See https://github.com/ray-project/ray/issues/53727 for more details.\n"
)

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pulse.stderr_filter import install

    print("installed" if install() else "not installed", flush=True)
    os.write(2, NOISE.encode())  # as Ray's C++ core worker writes it: straight to fd 2
    os.write(2, b"pulse: a normal line\\n")
    os.write(2, b"a partial line...")  # then quiet: it must not wait for its newline
    time.sleep(0.3)
    os.write(2, b" and its end\\n")
    if sys.argv[1] == "abort":
        os.write(2, b"last words before a C++ abort\\n")
        os.abort()
    raise RuntimeError("the job failed")
    """
)


def run(code: str, *args: str, verbose: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PULSE_VERBOSE": "1" if verbose else "0"}
    return subprocess.run(
        [sys.executable, "-c", f"NOISE = {NOISE_LINE!r}\n{code}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_noise_is_dropped_and_normal_lines_and_the_traceback_arrive():
    result = run(SCRIPT, "raise")
    assert result.returncode == 1 and result.stdout == "installed\n"
    assert "constructor arguments" not in result.stderr
    assert result.stderr.startswith("pulse: a normal line\na partial line... and its end\nTraceback"), (
        result.stderr
    )
    assert result.stderr.endswith("RuntimeError: the job failed\n"), result.stderr


def test_verbose_shows_the_noise_too():
    result = run(SCRIPT, "raise", verbose=True)
    assert result.returncode == 1 and result.stdout == "not installed\n"
    assert result.stderr.startswith(NOISE_LINE + "pulse: a normal line\n"), result.stderr
    assert result.stderr.endswith("RuntimeError: the job failed\n")


def test_last_lines_arrive_when_the_process_dies_abruptly():
    """The filter is its own process: a C++ abort() cannot take the final lines with it."""
    result = run(SCRIPT, "abort")
    assert result.returncode < 0  # killed by SIGABRT, no atexit
    assert result.stderr.endswith("and its end\nlast words before a C++ abort\n"), result.stderr
    assert "constructor arguments" not in result.stderr


def copy_through(chunks, pause_s: float) -> str:
    """What ``copy_lines`` writes for ``chunks`` written ``pause_s`` apart by another thread."""
    noise = tuple(n.encode() for n in stderr_filter.NOISE)
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()

    def writer():
        for chunk in chunks:
            os.write(write_in, chunk)
            time.sleep(pause_s)
        os.close(write_in)

    thread = threading.Thread(target=writer)
    thread.start()
    stderr_filter.copy_lines(read_in, write_out, noise)
    thread.join()
    os.close(read_in)
    os.close(write_out)
    with os.fdopen(read_out, "rb") as out:
        return out.read().decode()


def test_copy_lines_drops_a_noise_line_whole_even_when_it_comes_in_pieces(monkeypatch):
    monkeypatch.setattr(stderr_filter, "PARTIAL_WAIT_S", 30.0)  # pieces of a line, not a quiet partial
    line = NOISE_LINE.encode()
    chunks = [b"one\n" + line[:40], line[40:100], line[100:] + b"two\nthr", b"ee\n", b"no newline"]
    assert copy_through(chunks, pause_s=0.05) == "one\ntwo\nthree\nno newline"


def test_copy_lines_passes_a_quiet_partial_line_and_then_the_rest_of_it():
    rest = b"has constructor arguments in the object store and max_restarts > 0\n"  # looks like noise
    chunks = [b"a prompt: ", rest, NOISE_LINE.encode() + b"next\n"]
    assert copy_through(chunks, pause_s=1.0) == "a prompt: " + rest.decode() + "next\n"


CLI = textwrap.dedent(
    """
    import os, sys
    from pulse import cli, stderr_filter

    sys.argv = ["pulse", *sys.argv[1:]]
    code = cli.main()
    print("filtered" if stderr_filter._ACTIVE else "not filtered", flush=True)
    os.write(2, NOISE.encode() + b"after the job\\n")
    sys.exit(code)
    """
)


def test_the_cli_filters_job_commands_unless_verbose_or_print_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("records_dir: a\nroutes: [templates\n")
    quiet = run(CLI, "build", "--config", str(bad))
    assert quiet.returncode == 2 and quiet.stdout == "filtered\n"
    assert quiet.stderr.startswith(f"pulse build: {bad}: not valid YAML") and quiet.stderr.endswith(
        "\nafter the job\n"
    )
    assert "constructor arguments" not in quiet.stderr
    loud = run(CLI, "build", "-v", "--config", str(bad))
    assert loud.returncode == 2 and loud.stdout == "not filtered\n" and NOISE_LINE in loud.stderr
    printed = run(CLI, "build", "--config", "configs/build/templates.yaml", "--print-config")
    assert printed.returncode == 0 and printed.stdout.endswith("not filtered\n")
