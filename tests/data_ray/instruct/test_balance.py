from __future__ import annotations

from pulse.data_ray.instruct.balance import balance_row, keep_probabilities


def rows(cell: tuple[str, str, str], n: int) -> list[dict]:
    source, task, qtype = cell
    return [
        {"id": f"{source}/{i}#k", "source": source, "task": task, "qtype": qtype, "error": None}
        for i in range(n)
    ]


def test_cells_over_the_cap_shrink_to_about_the_cap_deterministically():
    big, small = rows(("g12ec", "rhythm", "close"), 2000), rows(("ptbxl", "report", "open"), 50)
    probabilities = keep_probabilities({"g12ec/rhythm/close": 2000, "ptbxl/report/open": 50}, cap=200)
    assert probabilities == {"g12ec/rhythm/close": 0.1, "ptbxl/report/open": 1.0}
    kept_big = [r for r in big if balance_row(r, probabilities)["error"] is None]
    assert 150 <= len(kept_big) <= 250
    assert all(balance_row(r, probabilities)["error"] is None for r in small)
    again = [r for r in big if balance_row(r, probabilities)["error"] is None]
    assert again == kept_big
    dropped = next(balance_row(r, probabilities) for r in big if r not in kept_big)
    assert dropped["error"].startswith("balance_cap: g12ec/rhythm/close")


def test_no_cap_keeps_everything():
    probabilities = keep_probabilities({"a/b/c": 10}, cap=None)
    assert all(balance_row(r, probabilities)["error"] is None for r in rows(("a", "b", "c"), 10))
