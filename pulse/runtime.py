"""Connecting to Ray: an existing cluster when an address is given, else an embedded local one."""

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


def init_ray(options: RayOptions | None = None):
    """Start or join Ray once per process; returns the ``ray`` module."""
    import logging

    import ray

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    options = options or RayOptions()
    if ray.is_initialized():
        return ray
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=options.log_to_driver)
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
        log_to_driver=options.log_to_driver,
        configure_logging=True,
        logging_level="WARNING",
    )
    # Child processes (Train controller, Serve) must find this cluster, not another one on the host.
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    return ray
