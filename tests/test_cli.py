"""The ``pulse`` console script: user errors are one line with exit code 2, ``--version``, ``--verbose``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from pulse import cli
from pulse.cli import main as pulse_main
from pulse.config import CONFIG_DIR


def one_line_error(capsys, prefix: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(prefix), err
    return err.strip()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        pulse_main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"pulse \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_invalid_yaml_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("records_dir: a\nroutes: [templates\noutput_dir: c\n")
    assert pulse_main(["build", "--config", str(bad)]) == 2
    err = one_line_error(capsys, f"pulse build: {bad}: not valid YAML at line ")
    assert "column" in err


def test_folder_as_config_is_one_line(tmp_path, capsys):
    assert pulse_main(["render", "--config", str(tmp_path)]) == 2
    one_line_error(capsys, f"pulse render: --config {tmp_path} is a folder, not a YAML file")
    assert pulse_main(["render", "--config", "configs/render"]) == 2  # a shipped folder
    one_line_error(capsys, "pulse render: --config configs/render is a folder, not a YAML file")


def test_validation_errors_are_one_line(capsys):
    assert pulse_main(["render", "--config", "configs/render/demo.yaml", "nope=1", "limit=0"]) == 2
    err = one_line_error(capsys, "pulse render: Invalid RenderConfig:")
    assert "Unknown config key: nope" in err and "limit:" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_s3_is_one_line_with_a_storage_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = pulse_main(
        [
            "render",
            "--config",
            "configs/render/demo.yaml",
            "input_dir=s3://nowhere/in",
            f"output_dir={tmp_path}",
        ]
    )
    assert code == 2
    err = one_line_error(capsys, "pulse render: cannot reach the object store: ")
    assert "bucket 'nowhere'" in err and "storage: section" in err and "AWS_ENDPOINT_URL" in err


def test_unauthorised_s3_is_one_line_with_a_storage_hint(s3_bucket, tmp_path, monkeypatch, capsys):
    from moto import settings

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto now checks credentials
    code = pulse_main(
        ["build", "--config", "configs/build/templates.yaml", f"output_dir={s3_bucket}/out", "records_dir=x"]
    )
    assert code == 2
    err = one_line_error(capsys, "pulse build: the object store refused access: ")
    assert s3_bucket.removeprefix("s3://") in err and "AWS_ACCESS_KEY_ID" in err and "storage:" in err


def test_closed_stdout_is_no_traceback():
    """``pulse build --print-config | head -0``: the reader is gone before pulse writes."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pulse.cli",
            "build",
            "--config",
            "configs/build/templates.yaml",
            "--print-config",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 2
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_closed_stdout_in_process(monkeypatch):
    read, write = os.pipe()
    os.close(read)
    saved = os.dup(1)
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        assert pulse_main(["build", "--config", "configs/build/templates.yaml", "--print-config"]) == 2
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def test_verbose_flag_reaches_the_runtime(monkeypatch, capsys):
    from pulse.runtime import VERBOSE_ENV, is_verbose

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    assert pulse_main(["build", "--config", "configs/build/templates.yaml", "--print-config"]) == 0
    assert not is_verbose()
    assert (
        pulse_main(["build", "--verbose", "--config", "configs/build/templates.yaml", "--print-config"]) == 0
    )
    assert is_verbose()
    monkeypatch.delenv(VERBOSE_ENV)
    assert pulse_main(["-v", "render", "--config", "configs/render/demo.yaml", "--print-config"]) == 0
    assert is_verbose()
    capsys.readouterr()


@pytest.mark.parametrize("job", sorted(cli.CONFIG_JOBS))
def test_help_names_only_configs_that_exist(job):
    module, _ = cli.CONFIG_JOBS[job]
    doc = cli.module_docstring(module) or ""
    for path in re.findall(r"configs/[\w./-]+\.yaml", doc):
        assert (CONFIG_DIR / path.removeprefix("configs/")).is_file(), f"pulse {job} --help names {path}"
