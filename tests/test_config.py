import pytest

from pulse.config import ConfigError, StrictModel, load_config, write_run_info


class Inner(StrictModel):
    lr: float = 1e-3
    name: str = "x"


class Outer(StrictModel):
    inner: Inner = Inner()
    steps: int = 3


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\ninner:\n  name: y\n")
    cfg = load_config(Outer, path, ["inner.lr=2e-5", "steps=7"])
    assert cfg.steps == 7 and cfg.inner.lr == 2e-5 and cfg.inner.name == "y"


def test_unknown_key_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown config key: inner.lrr"):
        load_config(Outer, None, ["inner.lrr=1"])
    path = tmp_path / "c.yaml"
    path.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match="Unknown config key: stepz"):
        load_config(Outer, path)


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match="steps"):
        load_config(Outer, None, ["steps=abc"])


def test_run_info_written(tmp_path):
    import json

    write_run_info(Outer(), str(tmp_path), "unit")
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["config"]["steps"] == 3 and "ray" in info["versions"]


class Source(StrictModel):
    kind: str
    limit: int | None = None


class WithList(StrictModel):
    sources: list[Source]


def test_list_index_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sources:\n  - {kind: a}\n  - {kind: b}\n")
    cfg = load_config(WithList, path, ["sources.1.limit=5"])
    assert cfg.sources[1].limit == 5 and cfg.sources[0].limit is None
    with pytest.raises(ConfigError, match="not an index"):
        load_config(WithList, path, ["sources.7.limit=5"])


class _Step(StrictModel):
    config: str
    overrides: list[str] = []


class _Chain(StrictModel):
    train: _Step = _Step(config="train/tiny-cpu.yaml", overrides=["max_steps=60", "lr=2e-3"])
    render: _Step = _Step(config="render/demo.yaml")


def test_overriding_one_field_of_a_defaulted_section_keeps_its_other_defaults():
    """``pulse demo train.overrides=[max_steps=4]``: the section's default config stays."""
    cfg = load_config(_Chain, None, ["train.overrides=[max_steps=4]"])
    assert cfg.train == _Step(config="train/tiny-cpu.yaml", overrides=["max_steps=4"])
    assert cfg.render == _Step(config="render/demo.yaml")
    with pytest.raises(ConfigError, match=r"Unknown config key: train\.bogus"):
        load_config(_Chain, None, ["train.bogus=1"])
