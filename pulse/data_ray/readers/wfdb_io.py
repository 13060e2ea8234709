"""Reading one WFDB record (``.hea`` + ``.dat``/``.mat``) from a local or ``s3://`` path.

The files are fetched through ``pulse.io`` into a private scratch folder and decoded with
``wfdb`` itself, so every WFDB storage format (16, 212, 24, MATLAB v4 ``.mat`` with a byte
offset, ...) and the gain/baseline conversion are wfdb's, and local and S3 inputs take exactly
the same path.

Header recovery: 11 Georgia (G12EC) headers from the older CinC 2020/2021 release name the
record ``E00271.mat`` on the record line instead of ``E00271``. ``wfdb`` rejects that line
(``HeaderSyntaxError``: a record name may not contain a dot), although the rest of the header
is valid and the ``.mat`` next to it is intact. :func:`repair_header` strips the data-file
extension from the record name when it is exactly "<record>.<ext>", and the row's ``extra``
records ``header_fixes: ["record_name_had_extension"]``. Nothing else is rewritten.
"""

from __future__ import annotations

import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pulse import io
from pulse.data_ray.readers.signal import Decoded, ReadError, finish_signal, unit_scale_to_mv

# Bytes per sample of the WFDB storage formats, for the truncation check.
_BYTES_PER_SAMPLE = {8: 1, 16: 2, 24: 3, 32: 4, 61: 2, 80: 1, 160: 2, 212: 1.5, 310: 4 / 3, 311: 4 / 3}


@dataclass
class WfdbRecord:
    """A decoded record: ``signal`` is leads x samples in millivolts, in file channel order."""

    name: str
    signal: np.ndarray
    channel_names: list[str]
    fs: float
    comments: list[str]
    base_datetime: str | None = None
    header_fixes: list[str] = field(default_factory=list)


def repair_header(text: str, record_name: str) -> tuple[str, list[str]]:
    """Fix known, harmless header defects; returns (text, names of the fixes applied)."""
    lines = text.lstrip("\ufeff").splitlines()
    fixes: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        first, _, rest = stripped.partition(" ")
        stem, dot, _ext = first.partition(".")
        if dot and stem == record_name:
            lines[i] = f"{stem} {rest}"
            fixes.append("record_name_had_extension")
        break
    return "\n".join(lines) + "\n", fixes


def parse_comments(comments: list[str]) -> dict[str, str]:
    """``# Age: 56`` style header comments as a dict (keys lower-cased)."""
    out: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _fetch(path: str, storage: io.StorageOptions | None) -> bytes:
    try:
        return io.read_bytes(path, storage)
    except FileNotFoundError:
        raise ReadError("missing_file", path) from None
    except OSError as exc:
        if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
            raise ReadError("missing_file", path) from None
        raise ReadError("unreadable_file", f"{path}: {exc}") from None


def _check_length(header, data: dict[str, bytes]) -> None:
    """Raise ``truncated_signal`` when a data file is shorter than its header promises."""
    per_file: dict[str, list[int]] = {}
    offsets: dict[str, int] = {}
    for file_name, fmt, offset in zip(
        header.file_name, header.fmt, header.byte_offset or [None] * header.n_sig, strict=True
    ):
        per_file.setdefault(file_name, []).append(int(fmt))
        offsets[file_name] = int(offset or 0)
    for file_name, fmts in per_file.items():
        if any(int(f) not in _BYTES_PER_SAMPLE for f in fmts):
            continue
        expected = offsets[file_name] + int(header.sig_len * sum(_BYTES_PER_SAMPLE[int(f)] for f in fmts))
        actual = len(data[file_name])
        if actual < expected:
            raise ReadError("truncated_signal", f"{file_name}: {actual} of {expected} bytes")


def read_wfdb(header_path: str, storage: io.StorageOptions | None = None) -> WfdbRecord:
    """Read one single-segment WFDB record given the path of its ``.hea`` file.

    Raises:
        ReadError: ``missing_file``, ``unreadable_header``, ``truncated_signal`` or
            ``unreadable_signal`` (the row's error reason).
    """
    import wfdb

    directory, base = posixpath.split(header_path) if io.is_remote(header_path) else _split_local(header_path)
    record_name = base[: -len(".hea")] if base.endswith(".hea") else base
    header_text, fixes = repair_header(
        _fetch(io.join(directory, record_name + ".hea"), storage).decode("ascii", errors="ignore"),
        record_name,
    )
    with tempfile.TemporaryDirectory(prefix="pulse-wfdb-") as scratch:
        local = str(Path(scratch, record_name))
        Path(local + ".hea").write_text(header_text)
        try:
            header = wfdb.rdheader(local)
        except Exception as exc:  # wfdb raises HeaderSyntaxError, ValueError, IndexError...
            raise ReadError("unreadable_header", f"{record_name}.hea: {type(exc).__name__}: {exc}") from None
        if getattr(header, "n_seg", None) or not header.file_name:
            raise ReadError("unreadable_header", f"{record_name}.hea: not a single-segment record")
        data: dict[str, bytes] = {}
        for file_name in dict.fromkeys(header.file_name):
            data[file_name] = _fetch(io.join(directory, file_name), storage)
            Path(scratch, file_name).write_bytes(data[file_name])
        _check_length(header, data)
        try:
            record = wfdb.rdrecord(local, physical=True)
        except Exception as exc:
            raise ReadError("unreadable_signal", f"{record_name}: {type(exc).__name__}: {exc}") from None
    scales = np.array([unit_scale_to_mv(u) for u in record.units or [""] * record.n_sig])
    signal = record.p_signal.T * scales[:, None]
    when = " ".join(str(x) for x in (record.base_date, record.base_time) if x is not None) or None
    return WfdbRecord(
        name=record_name,
        signal=signal,
        channel_names=list(record.sig_name),
        fs=float(record.fs),
        comments=list(record.comments or []),
        base_datetime=when,
        header_fixes=fixes,
    )


def _split_local(path: str) -> tuple[str, str]:
    p = Path(path)
    return str(p.parent), p.name


def finished_signal(record: WfdbRecord, target_fs: float | None, max_nonfinite_fraction: float) -> Decoded:
    """``finish_signal`` of a WFDB record: (signal in standard lead order, lead names, fs, notes)."""
    return finish_signal(
        record.signal,
        record.channel_names,
        record.fs,
        target_fs=target_fs,
        max_nonfinite_fraction=max_nonfinite_fraction,
    )
