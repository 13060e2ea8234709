"""Connecting to Ray: an existing cluster when an address is given, else an embedded local one.

pulse speaks, Ray whispers: unless ``--verbose`` (``PULSE_VERBOSE=1``), Ray's start-up notices,
worker output and Ray Data's progress blocks are kept out of the terminal (they still go to the
session's log files under the Ray temp dir); each job prints its own progress and summary.
"""

from __future__ import annotations

import os
import tempfile

from pulse.config import StrictModel


class RayOptions(StrictModel):
    """Where jobs run. ``address: null`` starts an embedded local Ray (or joins ``RAY_ADDRESS``)."""

    address: str | None = None
    num_cpus: int | None = None
    """Logical CPUs of an embedded Ray; above the physical count so Data and Train workers don't starve."""
    temp_dir: str | None = None
    log_to_driver: bool = False
    """Stream worker stdout/stderr to this terminal (always on with ``--verbose``)."""


VERBOSE_ENV = "PULSE_VERBOSE"


def set_verbose(verbose: bool) -> None:
    """``--verbose``: show Ray's own logs; kept in the environment so child processes agree."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def quiet_ray_data() -> None:
    """Keep Ray Data's execution notices and progress blocks off the console (not its log file)."""
    import logging

    from ray.data import DataContext

    verbose = is_verbose()
    DataContext.get_current().enable_progress_bars = verbose
    level = logging.INFO if verbose else logging.ERROR
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(level)


def quiet_ray_serve() -> None:
    """Keep Ray Serve's driver-side INFO lines (``Started Serve``, ``Application ... is ready``) off the
    console unless ``--verbose``; pulse prints its own line with the URL."""
    import logging

    logging.getLogger("ray.serve").setLevel(logging.INFO if is_verbose() else logging.WARNING)


PARQUET_V2_ENV = "RAY_DATA_USE_DATASOURCE_V2"


def use_parquet_reader_v1() -> None:
    """Read Parquet through Ray Data's V1 datasource unless ``RAY_DATA_USE_DATASOURCE_V2`` says otherwise.

    Ray 2.60's default V2 reader lists files in a task that starts fresh ``FooterReader`` actors
    for every ``read_parquet`` and kills them after: measured on 2 cores, 10-15 s per read of three
    local files against 0.2 s for V1 (a 4-source training mixture: 62 s -> 0.9 s per pass). pulse
    reads many small datasets (each stage's inputs, every mixture source and repeat), so it takes
    V1; a user who wants V2's footer-level pruning sets the variable.
    """
    from ray.data import DataContext

    if PARQUET_V2_ENV not in os.environ:
        DataContext.get_current().use_datasource_v2 = False


RAYLET_NOTICES = ("worker processes have been started on node",)
"""Raylet notices that are about Ray's worker pool, not about the job (they stay in raylet.out)."""


def quiet_raylet_notices() -> None:
    """Drop the raylet's worker-pool notices from the driver's terminal unless ``--verbose``.

    The raylet pushes them through the driver's error channel, which prints them with
    ``ray._private.worker.print_to_stdstream`` whatever ``log_to_driver`` says. Every other raylet
    message (out-of-memory kills, worker crashes) still reaches the terminal.
    """
    from ray._private import worker

    printer = worker.print_to_stdstream
    if getattr(printer, "pulse_quiet", False) or is_verbose():
        return

    def print_unless_notice(data, ignore_prefix: bool):
        if data.get("pid") == "raylet":
            lines = [line for line in data.get("lines", []) if not any(n in line for n in RAYLET_NOTICES)]
            if not lines:
                return
            data = {**data, "lines": lines}
        printer(data, ignore_prefix=ignore_prefix)

    print_unless_notice.pulse_quiet = True
    worker.print_to_stdstream = print_unless_notice


def init_ray(options: RayOptions | None = None):
    """Start or join Ray once per process; returns the ``ray`` module."""
    import ray

    options = options or RayOptions()
    verbose = is_verbose()
    log_to_driver = options.log_to_driver or verbose
    logging_level = "INFO" if verbose else "ERROR"
    quiet_ray_data()
    quiet_ray_serve()
    quiet_raylet_notices()
    use_parquet_reader_v1()
    if ray.is_initialized():
        return ray
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(
            address=address,
            log_to_driver=log_to_driver,
            configure_logging=True,
            logging_level=logging_level,
        )
        return ray
    num_cpus = options.num_cpus or max(4, 2 * (os.cpu_count() or 2))
    temp_dir = options.temp_dir or tempfile.mkdtemp(prefix="pulse-ray-", dir="/tmp")
    # Workers inherit the driver's environment at start; pass what S3 access needs explicitly.
    env_vars = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    ray.init(
        num_cpus=num_cpus,
        runtime_env={"env_vars": env_vars} if env_vars else None,
        include_dashboard=False,
        _temp_dir=temp_dir,
        log_to_driver=log_to_driver,
        configure_logging=True,
        logging_level=logging_level,
    )
    # Child processes (Train controller, Serve) must find this cluster, not another one on the host.
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    return ray
