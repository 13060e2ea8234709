import importlib.util

import pytest

from pulse.train_ray.config import TrackingConfig
from pulse.train_ray.tracking import Tracker, check_tracking_available


def test_tensorboard_events_are_written_from_rank_zero_only(tmp_path):
    rank0 = Tracker(TrackingConfig(tensorboard_dir=str(tmp_path / "tb")), {}, enabled=True)
    rank0.log({"loss": 2.5, "lr": 1e-3, "step": 1, "note": "text is skipped"}, step=1)
    rank0.close()
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    other = Tracker(TrackingConfig(tensorboard_dir=str(tmp_path / "tb1")), {}, enabled=False)
    other.log({"loss": 1.0}, step=1)
    assert not (tmp_path / "tb1").exists()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_missing_mlflow_fails_before_training():
    with pytest.raises(ImportError, match="pip install mlflow"):
        check_tracking_available(TrackingConfig(mlflow_tracking_uri="http://127.0.0.1:5000"))
