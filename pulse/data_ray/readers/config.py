"""Per-source reader options (one entry of ``IngestConfig.sources``) and root resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from pulse import io
from pulse.config import StrictModel

Unit = dict[str, Any]
"""One read unit: the small JSON-able dict a reader's ``plan`` makes and its ``read`` takes."""
Rows = list[dict[str, Any]]
"""What a reader's ``read`` returns: ``RECORD_SCHEMA`` rows (good or error), see ``signal.make_record``."""
Storage = io.StorageOptions | None

BUNDLED_ROOT = Path(__file__).resolve().parents[2] / "assets" / "realdata"
SourceKind = Literal["ptbxl", "mimic", "code15", "cinc2021", "ecgqa"]
CincDataset = Literal["cpsc2018", "g12ec", "chapman", "ningbo", "ptbxl"]
CINC_DEFAULT_DATASETS: tuple[str, ...] = ("cpsc2018", "g12ec", "chapman", "ningbo")

# Options that only mean something for some kinds; setting one for another kind is an error.
_KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "sampling_rate": ("ptbxl",),
    "database_csv": ("ptbxl",),
    "rate_fallback": ("ptbxl",),
    "datasets": ("cinc2021",),
    "files": ("code15", "ecgqa"),
    "chunk_size": ("code15",),
}


class SourceConfig(StrictModel):
    """One raw dataset in its native layout.

    ``root`` is a local folder, an ``s3://`` prefix, or ``bundled:<name>`` for the real records
    shipped in ``pulse/assets/realdata/<name>`` (so shipped configs work from any cwd).
    """

    kind: SourceKind
    root: str
    limit: int | None = Field(default=None, ge=0)
    """Read at most this many records (QA rows for ecgqa) from this source."""
    sampling_rate: Literal[100, 500] = 500
    """ptbxl: read ``records100/`` (100 Hz) or ``records500/`` (500 Hz)."""
    rate_fallback: bool = False
    """ptbxl: when the chosen rate's file is missing, read the other rate instead of an error row."""
    database_csv: str = "ptbxl_database.csv"
    """ptbxl: the metadata table, relative to root."""
    datasets: list[CincDataset] | None = None
    """cinc2021: which member databases to read (by record prefix: A/Q cpsc2018, E g12ec,
    JS chapman (JS00001-JS10646) or ningbo (higher ids), HR ptbxl). Default: all but ptbxl, whose
    HR records are read by the native PTB-XL reader (with reports and superclasses) instead."""
    files: list[str] | None = None
    """code15: HDF5 globs relative to root (default ``exams_part*.hdf5``); ecgqa: JSON globs
    relative to root (default ``ptbxl/template/*/*.json``, ECG-QA's PTB-XL layout)."""
    chunk_size: int = Field(default=64, ge=1)
    """code15: exams per read task (rows are sliced out of one HDF5 part)."""
    max_nonfinite_fraction: float = Field(default=0.01, ge=0.0, le=1.0)
    """Above this fraction of NaN/inf samples a record is an error row (``nan_signal``); below it
    the gaps are linearly interpolated and counted in ``extra``."""

    @model_validator(mode="after")
    def _options_match_kind(self) -> SourceConfig:
        for option, kinds in _KIND_OPTIONS.items():
            if option in self.model_fields_set and self.kind not in kinds:
                raise ValueError(f"sources[].{option} applies to kind {' / '.join(kinds)}, not {self.kind}")
        return self

    def resolved_root(self) -> str:
        """``root`` with ``bundled:`` expanded to the package's realdata folder."""
        if self.root.startswith("bundled:"):
            return str(BUNDLED_ROOT / self.root[len("bundled:") :].strip("/"))
        return self.root.rstrip("/") if self.root.startswith("s3://") else self.root

    def cinc_datasets(self) -> tuple[str, ...]:
        return tuple(self.datasets) if self.datasets is not None else CINC_DEFAULT_DATASETS
