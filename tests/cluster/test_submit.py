"""``pulse submit``: the entrypoint, runtime_env, config checks and auth headers it builds.

The submission itself (upload, job id, log following, token auth) runs against a real
two-node Ray in test_multinode.py.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest

from pulse import submit
from pulse.config import ConfigError
from pulse.submit import build_submission

REPO = Path(__file__).resolve().parents[2]


def test_entrypoint_runs_the_job_script_with_config_relative_to_working_dir():
    sub = build_submission("ingest", str(REPO / "pulse/configs/ingest/bundled.yaml"), ["limit=5", "a.b=x y"])
    assert shlex.split(sub.entrypoint) == [
        "python",
        "jobs/ingest.py",
        "--config",
        "configs/ingest/bundled.yaml",
        "limit=5",
        "a.b=x y",
    ]


def test_shipped_config_names_and_remote_configs():
    shipped = build_submission("ingest", "configs/ingest/bundled.yaml", [])
    assert "--config configs/ingest/bundled.yaml" in shipped.entrypoint
    remote = build_submission("render", "s3://bucket/render.yaml", [])
    assert "--config s3://bucket/render.yaml" in remote.entrypoint


def test_config_outside_the_working_dir_is_refused(tmp_path):
    outside = tmp_path / "mine.yaml"
    outside.write_text("output_dir: x\n")
    with pytest.raises(ConfigError, match="outside the working_dir"):
        build_submission("render", str(outside), [])


def test_runtime_env_ships_the_checkout_with_pinned_requirements():
    sub = build_submission("train", None, [], env={"PULSE_TAG": "ci"})
    env = sub.runtime_env
    assert env["working_dir"] == str(REPO)
    assert {"/.git", "/outputs", "**/__pycache__"} <= set(env["excludes"])
    assert env["env_vars"]["PULSE_TAG"] == "ci" and env["env_vars"]["PYTHONUNBUFFERED"] == "1"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert env["pip"]["packages"] == pyproject["dependencies"]
    assert any(p.startswith("ray[") and "==" in p for p in env["pip"]["packages"])
    with_extra = build_submission("train", None, [], extras=("deepspeed",)).runtime_env["pip"]["packages"]
    assert with_extra[-1].startswith("deepspeed")
    assert "pip" not in build_submission("train", None, [], pip="none").runtime_env


def test_installed_metadata_gives_the_same_pins_without_a_pyproject(tmp_path):
    from_metadata = submit.pinned_requirements(tmp_path)
    assert "torch==2.13.0" in from_metadata and any(r.startswith("ray[") for r in from_metadata)
    assert not any("pytest" in r for r in from_metadata), "extras stay out unless asked for"


def test_unknown_job_and_foreign_working_dir(tmp_path):
    with pytest.raises(ConfigError, match="Unknown job"):
        build_submission("deploy", None, [])
    with pytest.raises(ConfigError, match=r"no jobs/render\.py"):
        build_submission("render", None, [], working_dir=tmp_path)


def test_validate_config_fails_before_upload():
    with pytest.raises(ConfigError, match="Unknown config key: limitt"):
        submit.validate_config("ingest", "configs/ingest/bundled.yaml", ["limitt=3"], REPO)
    submit.validate_config("ingest", "configs/ingest/bundled.yaml", ["limit_per_source=3"], REPO)


def test_auth_headers(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    assert submit.auth_headers() == {}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert submit.auth_headers() == {"Authorization": "Bearer from-env"}
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert submit.auth_headers(str(token_file)) == {"Authorization": "Bearer from-file"}
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("default-path")
    assert submit.auth_headers() == {"Authorization": "Bearer default-path"}
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert submit.auth_headers() == {}
    with pytest.raises(ConfigError, match="does not exist"):
        monkeypatch.delenv("RAY_AUTH_MODE")
        submit.auth_headers(str(tmp_path / "missing"))


def test_env_flags(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert submit.parse_env(["AWS_REGION", "A=b=c"]) == {"AWS_REGION": "eu-west-1", "A": "b=c"}
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_HERE"):
        submit.parse_env(["NOT_SET_HERE"])


def test_cli_rejects_a_bad_override_without_contacting_a_cluster(capsys):
    from pulse.cli import main

    code = main(
        [
            "submit",
            "ingest",
            "-c",
            "configs/ingest/bundled.yaml",
            "--address",
            "http://127.0.0.1:9",
            "bogus=1",
        ]
    )
    assert code == 2
    assert "Unknown config key: bogus" in capsys.readouterr().err


def test_cli_reports_an_unreachable_cluster(capsys):
    from pulse.cli import main

    code = main(["submit", "ingest", "-c", "configs/ingest/bundled.yaml", "--address", "http://127.0.0.1:9"])
    assert code == 1
    assert "could not submit to http://127.0.0.1:9" in capsys.readouterr().err


def test_ray_uploads_every_pulse_module_of_the_checkout():
    """Ray's own upload walker (gitignore-style excludes + .gitignore) keeps every pulse/**/*.py.

    An unanchored ``build`` exclude once dropped ``pulse/data_ray/build/`` from the working_dir.
    """
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    env = build_submission("build", None, []).runtime_env
    root = Path(env["working_dir"])
    uploaded: set[str] = set()
    _dir_travel(
        root,
        [_get_excludes(root, env["excludes"])],
        lambda p: uploaded.add(p.relative_to(root).as_posix()),
        include_gitignore=True,
    )
    modules = {p.relative_to(root).as_posix() for p in (root / "pulse").rglob("*.py")}
    assert modules and modules <= uploaded, sorted(modules - uploaded)[:5]
    assert {"jobs/build.py", "jobs/_entry.py", "pyproject.toml"} <= uploaded
    assert not any(p.startswith((".git/", "outputs/")) for p in uploaded)
    assert not any("__pycache__" in p for p in uploaded)
    excluded = _get_excludes(root, env["excludes"])
    for pattern in env["excludes"]:
        if pattern.startswith("/"):  # root-only: the same name deeper in the package is uploaded
            nested = root / "pulse" / "some_stage" / pattern.lstrip("/").replace("*", "x") / "job.py"
            assert not excluded(nested), f"exclude {pattern!r} would drop {nested.relative_to(root)}"
        else:
            assert pattern.startswith("**/"), f"unanchored exclude {pattern!r} matches at every depth"
