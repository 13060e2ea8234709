"""Label maps against the real challenge mapping CSVs and the organisers' own PTB-XL mapping."""

from __future__ import annotations

import ast
import csv

from pulse.data_ray.readers.config import BUNDLED_ROOT
from pulse.data_ray.readers.labels import (
    CODE15_TO_STD,
    MIMIC_PHRASES_TO_STD,
    PTBXL_TO_STD,
    map_codes,
    mimic_statements_to_std,
    ptbxl_superclasses,
    snomed_to_abbreviation,
    snomed_to_std,
    standard_vocabulary,
)
from pulse.data_ray.readers.ptbxl import diagnostic_classes


def test_every_mapped_label_is_in_the_shared_vocabulary():
    vocabulary = standard_vocabulary()
    targets = set(PTBXL_TO_STD.values()) | set(CODE15_TO_STD.values()) | {s for _, s in MIMIC_PHRASES_TO_STD}
    assert targets - vocabulary == set()


def test_snomed_mapping_reads_both_csvs():
    table = snomed_to_abbreviation()
    assert table["164889003"] == "AF"  # scored
    assert table["164865005"] == "MI"  # unscored
    assert snomed_to_std(["426177001", "999"]) == (["SB"], ["999"])


def test_ptbxl_map_agrees_with_the_challenge_relabelling_of_the_17_hr_records():
    """The CinC organisers relabelled PTB-XL records with SNOMED codes; our scp map must agree."""
    manifest = {r["record"]: set(r["dx_abbrev"].split(";")) for r in _rows("cinc2021/manifest.csv")}
    checked = 0
    for row in _rows("ptbxl/ptbxl_database_subset.csv"):
        hr = f"HR{int(row['ecg_id']):05d}"
        if hr not in manifest:
            continue
        scp = list(ast.literal_eval(row["scp_codes"]))
        assert set(map_codes(scp, PTBXL_TO_STD)) == manifest[hr], (hr, scp)
        checked += 1
    assert checked == 17


def test_ptbxl_superclasses_use_diagnostic_statements_only():
    classes = diagnostic_classes(str(BUNDLED_ROOT / "ptbxl" / "scp_statements.csv"))
    assert ptbxl_superclasses(["IMI", "ISCLA", "QWAVE", "STD_", "SR"], classes) == ["MI", "STTC"]
    assert ptbxl_superclasses(["NORM", "IRBBB", "SBRAD"], classes) == ["NORM", "CD"]
    assert ptbxl_superclasses(["LVH", "SR"], classes) == ["HYP"]
    assert ptbxl_superclasses(["SR", "PVC"], classes) == []


def test_mimic_statements_prefer_the_longer_phrase():
    got = mimic_statements_to_std(
        ["Sinus bradycardia", "Incomplete right bundle branch block", "Left axis deviation", "Abnormal ECG"]
    )
    assert got == ["SB", "IRBBB", "LAD"]


def _rows(relative: str) -> list[dict[str, str]]:
    with (BUNDLED_ROOT / relative).open(newline="") as handle:
        return list(csv.DictReader(handle))
