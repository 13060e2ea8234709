"""`pulse ecgbench download`: the snapshot_download call it makes, and the check that follows.

The hub cannot be reached from CI, so only ``huggingface_hub.snapshot_download`` (the network call)
is replaced: the fake records its arguments and writes what the hub would, a Parquet shard per subset.
"""

from __future__ import annotations

import json

import huggingface_hub
import pytest

from pulse.cli import main as pulse_main
from pulse.ecgbench.load import load_subset
from tests.ecgbench.conftest import fixture_rows, write_hf_subset


@pytest.fixture
def fake_hub(monkeypatch):
    calls: list[dict] = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        for pattern in kwargs["allow_patterns"]:
            if pattern.endswith("/*"):
                write_hf_subset(kwargs["local_dir"], pattern[:-2], fixture_rows("cpsc_test_sample.json"))
        return kwargs["local_dir"]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_download_builds_the_snapshot_call_and_checks_the_layout(fake_hub, tmp_path, capsys):
    root = str(tmp_path / "data" / "ECGBench")
    argv = ["ecgbench", "download", "--local-dir", root, "--subsets", "cpsc-test", "mmmu-ecg"]
    assert pulse_main([*argv, "--revision", "main"]) == 0
    assert fake_hub == [
        {
            "repo_id": "PULSE-ECG/ECGBench",
            "repo_type": "dataset",
            "local_dir": root,
            "revision": "main",
            "allow_patterns": ["README.md", "cpsc-test/*", "mmmu-ecg/*"],
        }
    ]
    assert json.loads(capsys.readouterr().out) == {
        "downloaded": 2,
        "local_dir": root,
        "next": f"--gold {root}",
    }
    assert len(load_subset(root, "cpsc-test", allow_partial=True)) == 2

    assert pulse_main(["ecgbench", "download", "--local-dir", str(tmp_path / "all")]) == 0
    assert len(fake_hub[1]["allow_patterns"]) == 1 + 9 and fake_hub[1]["revision"] is None


def test_download_failure_is_one_line(monkeypatch, tmp_path, capsys):
    def unreachable(**kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'\nretrying...")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    assert pulse_main(["ecgbench", "download", "--local-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "could not download PULSE-ECG/ECGBench" in err and "ConnectionError: Failed to resolve" in err


def test_a_release_without_the_subset_is_an_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kwargs: kwargs["local_dir"])
    assert pulse_main(["ecgbench", "download", "--local-dir", str(tmp_path), "--subsets", "arena"]) == 2
    assert "arena: no arena/test-00000-of-00001.parquet" in capsys.readouterr().err
