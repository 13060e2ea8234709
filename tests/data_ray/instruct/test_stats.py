from __future__ import annotations

import io as _stdio
from pathlib import Path

from PIL import Image

from pulse.data_ray.instruct.stats import (
    count_table,
    histogram_png,
    markdown_table,
    merge_markers,
    write_stats,
)
from pulse.data_ray.instruct.write import HIST_BINS, histogram


def marker(cells: dict[str, int], errors: dict[str, int], scores: list[float]) -> dict:
    return {
        "cells": cells,
        "splits": {"train": sum(cells.values())},
        "errors": errors,
        "judge_kept": histogram(scores),
        "judge_dropped": [0] * HIST_BINS,
    }


def test_table_a1_style_counts_with_totals():
    totals = merge_markers(
        [
            marker({"ptbxl/rhythm/close": 3, "ptbxl/report/open": 1}, {"near_duplicate": 1}, [4.0]),
            marker(
                {"ptbxl/rhythm/close": 2, "ecgqa/feature/close": 5},
                {"near_duplicate": 2, "invalid_mcq": 1},
                [5.0],
            ),
        ]
    )
    assert totals["rows_ok"] == 11 and totals["errors"] == {"invalid_mcq": 1, "near_duplicate": 3}
    rows = count_table(totals["cells"])
    assert ("ptbxl", "Heart Rhythm Analysis", "Close-ended QA", 5) in rows
    assert rows.index(("ptbxl", "Heart Rhythm Analysis", "Close-ended QA", 5)) < rows.index(
        ("ptbxl", "Clinical Report", "Open-ended QA", 1)
    )
    assert ("ptbxl", "Total", "", 6) in rows and rows[-1] == ("All", "Total", "", 11)
    assert "| ecgqa | Basic Feature Recognition | Close-ended QA | 5 |" in markdown_table(rows)


def test_histogram_bins_and_png():
    counts = histogram([0.0, 2.5, 4.99, 5.0])
    assert sum(counts) == 4 and counts[0] == 1 and counts[HIST_BINS // 2] == 1 and counts[-1] == 2
    png = histogram_png(counts, [1] * HIST_BINS, threshold=3.0)
    image = Image.open(_stdio.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 100


def test_judge_histogram_only_when_rows_were_judged(tmp_path):
    unjudged = merge_markers([marker({"ptbxl/rhythm/close": 3}, {}, [])])
    paths = write_stats(str(tmp_path), unjudged, threshold=None)
    assert "judge_hist" not in paths and not (tmp_path / "stats" / "judge_hist.png").exists()
    assert (tmp_path / "stats" / "table.md").is_file()
    judged = merge_markers([marker({"ptbxl/rhythm/close": 3}, {}, [4.0, 3.5])])
    paths = write_stats(str(tmp_path), judged, threshold=3.0)
    assert Path(paths["judge_hist"]).read_bytes().startswith(b"\x89PNG")
    write_stats(str(tmp_path), unjudged, threshold=None)  # a later unjudged build of the same folder
    assert not (tmp_path / "stats" / "judge_hist.png").exists()
