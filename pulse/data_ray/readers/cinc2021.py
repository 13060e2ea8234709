"""PhysioNet/CinC Challenge 2021 format: CPSC 2018, Georgia G12EC, Chapman-Shaoxing, Ningbo.

``<root>/**/<record>.hea`` + ``<record>.mat`` (the challenge's ``training/<db>/gN/`` tree or a
flat folder). Header comments carry ``# Age:``, ``# Sex:`` and ``# Dx:`` (comma-separated
SNOMED-CT codes); ``labels`` are those codes, ``labels_std`` their challenge abbreviations.

The member database comes from the record-name prefix, as in the challenge: ``A``/``Q``
(CPSC 2018 and its extra set) -> ``cpsc2018``, ``E`` -> ``g12ec``, ``JS`` with number <= 10646
-> ``chapman`` (Chapman-Shaoxing, JS00001-JS10646) and above -> ``ningbo``, ``HR`` -> ``ptbxl``.
``S`` (St Petersburg INCART) and ``I`` (PTB) are not read (12-lead but not part of pulse).

``HR`` records are PTB-XL records. They are skipped by default: the native PTB-XL reader reads
the same signals with the report text, ``strat_fold`` split and superclasses, and reading both
would duplicate records. Listing ``ptbxl`` in ``datasets`` reads them here as
``ptbxl/<ecg_id>`` (the same id the native reader gives), labelled from ``# Dx:`` only, with a
hashed split and no report or superclasses.
"""

from __future__ import annotations

import re
from typing import Any

from pulse import io
from pulse.data_ray.readers.config import Rows, SourceConfig, Storage, Unit
from pulse.data_ray.readers.labels import snomed_to_std
from pulse.data_ray.readers.signal import ReadError, RecordRef, hash_split, parse_age, parse_sex
from pulse.data_ray.readers.wfdb_io import finished_signal, parse_comments, read_wfdb

CHAPMAN_LAST_ID = 10646
_NAME = re.compile(r"^(?P<prefix>[A-Z]+)(?P<number>\d+)$")


def member_dataset(record_name: str) -> str | None:
    """The pulse dataset a CinC-2021 record belongs to, from its name (see module doc)."""
    match = _NAME.match(record_name)
    if not match:
        return None
    prefix, number = match["prefix"], int(match["number"])
    if prefix in {"A", "Q"}:
        return "cpsc2018"
    if prefix == "E":
        return "g12ec"
    if prefix == "JS":
        return "chapman" if number <= CHAPMAN_LAST_ID else "ningbo"
    if prefix == "HR":
        return "ptbxl"
    return None


def native_id(record_name: str, dataset: str) -> str:
    """Native id within the dataset: the record name, or the PTB-XL ecg_id for HR records."""
    if dataset == "ptbxl":
        return str(int(record_name[2:]))
    return record_name


def plan(source: SourceConfig, storage: io.StorageOptions | None = None) -> list[dict[str, Any]]:
    """One unit per header whose member database is selected, sorted by record name."""
    root = source.resolved_root()
    wanted = set(source.cinc_datasets())
    units = []
    for path in io.list_files(root, "*.hea", storage):
        name = path.rsplit("/", 1)[-1][: -len(".hea")]
        dataset = member_dataset(name)
        if dataset in wanted:
            units.append({"header_path": path, "name": name, "dataset": dataset})
    units.sort(key=lambda u: u["name"])
    return units[: source.limit] if source.limit is not None else units


def read(source: SourceConfig, unit: Unit, storage: Storage = None, target_fs: float | None = None) -> Rows:
    """The record row (or error row) of one CinC-2021 header."""
    dataset = unit["dataset"]
    ref = RecordRef(f"{dataset}/{native_id(unit['name'], dataset)}", dataset, unit["header_path"])
    try:
        record = read_wfdb(ref.source_path, storage)
        decoded = finished_signal(record, target_fs, source.max_nonfinite_fraction)
    except ReadError as exc:
        return [ref.error(exc)]
    meta = parse_comments(record.comments)
    codes = [c.strip() for c in meta.get("dx", "").split(",") if c.strip()]
    labels_std, unmapped = snomed_to_std(codes)
    extra: dict[str, Any] = {"cinc_record": record.name}
    for key in ("rx", "hx", "sx"):
        if meta.get(key) and meta[key].lower() != "unknown":
            extra[key] = meta[key]
    if unmapped:
        extra["unmapped_dx"] = unmapped
    if record.header_fixes:
        extra["header_fixes"] = record.header_fixes
    return [
        ref.record(
            decoded,
            split=hash_split(ref.record_id),
            age=parse_age(meta.get("age")),
            sex=parse_sex(meta.get("sex")),
            labels=codes,
            labels_std=labels_std,
            extra=extra,
        )
    ]
