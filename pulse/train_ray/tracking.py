"""Experiment tracking from rank 0: MLflow (through Ray's ``setup_mlflow``) and TensorBoard.

Both are optional. A configured backend whose package is missing fails at startup with the
package name, not after hours of training.
"""

from __future__ import annotations

from typing import Any

from pulse.train_ray.config import TrackingConfig


def check_tracking_available(cfg: TrackingConfig) -> None:
    """Raise ``ImportError`` naming the package a configured backend needs."""
    if cfg.mlflow_tracking_uri:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ImportError(
                "tracking.mlflow_tracking_uri is set but mlflow is not installed: pip install mlflow"
            ) from None
    if cfg.tensorboard_dir:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ImportError(
                "tracking.tensorboard_dir is set but tensorboardX is not installed: pip install tensorboardX"
            ) from None


class Tracker:
    """Logs scalar metrics per step to whichever backends are configured (rank 0 only)."""

    def __init__(self, cfg: TrackingConfig, run_config: dict[str, Any], enabled: bool):
        self.mlflow = None
        self.writer = None
        if not enabled:
            return
        if cfg.mlflow_tracking_uri:
            from ray.air.integrations.mlflow import setup_mlflow

            self.mlflow = setup_mlflow(
                run_config,
                tracking_uri=cfg.mlflow_tracking_uri,
                experiment_name=cfg.mlflow_experiment,
                rank_zero_only=True,
            )
        if cfg.tensorboard_dir:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(cfg.tensorboard_dir)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k != "step"}
        if self.mlflow is not None:
            self.mlflow.log_metrics(scalars, step=step)
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
