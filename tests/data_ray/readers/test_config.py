from __future__ import annotations

from pathlib import Path

import pytest

from pulse.config import ConfigError, load_config
from pulse.data_ray.ingest import IngestConfig
from pulse.data_ray.readers.config import BUNDLED_ROOT, SourceConfig

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "ingest"


def test_bundled_root_resolves_into_the_package():
    src = SourceConfig(kind="cinc2021", root="bundled:cinc2021")
    assert src.resolved_root() == str(BUNDLED_ROOT / "cinc2021") and Path(src.resolved_root()).is_dir()
    assert SourceConfig(kind="mimic", root="s3://b/mimic/").resolved_root() == "s3://b/mimic"


def test_option_of_another_kind_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"sources\[\].datasets applies to kind cinc2021"):
        SourceConfig(kind="ptbxl", root="x", datasets=["g12ec"])


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_ingest_configs_load_and_open_with_their_command(path):
    cfg = load_config(IngestConfig, path, ["limit_per_source=2"])
    assert cfg.limit_per_source == 2 and all(s.limit == 2 for s in cfg.capped_sources())
    assert path.read_text().startswith("# ") and "pulse ingest --config configs/ingest/" in path.read_text()


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match=r"Unknown config key: sources\.0\.sampling"):
        load_config(
            IngestConfig, None, ["output_dir=/tmp/x", "sources=[{kind: ptbxl, root: x, sampling: 100}]"]
        )


def test_the_old_limit_key_is_refused_naming_limit_per_source():
    with pytest.raises(ConfigError, match="use limit_per_source"):
        load_config(IngestConfig, CONFIG_DIR / "bundled.yaml", ["limit=2"])
    capped = load_config(
        IngestConfig, CONFIG_DIR / "bundled.yaml", ["limit_per_source=2", "sources.0.limit=1"]
    )
    assert [s.limit for s in capped.capped_sources()][:1] == [1]
