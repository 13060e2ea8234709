"""``pulse ecgbench download``: the HF release ``PULSE-ECG/ECGBench`` into a local folder.

The same as ``hf download PULSE-ECG/ECGBench --repo-type dataset --local-dir data/ECGBench``
(``huggingface_hub.snapshot_download``), limited to the asked subsets, then checked: every subset
must be loadable from the folder afterwards (``<subset>/test-00000-of-00001.parquet``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.ecgbench.load import resolve_source
from pulse.ecgbench.subsets import DEFAULT_ROOT, HF_REPO, SUBSETS


class DownloadError(ValueError):
    """The hub could not be reached, refused the request, or lacks the files."""


def snapshot_kwargs(local_dir: str, subsets: Sequence[str], revision: str | None = None) -> dict:
    """The ``snapshot_download`` arguments that fetch ``subsets`` (all 9 when empty) into ``local_dir``."""
    unknown = [s for s in subsets if s not in SUBSETS]
    if unknown:
        raise ValueError(f"unknown subsets {unknown}; choose from {sorted(SUBSETS)}")
    names = list(subsets) or list(SUBSETS)
    return {
        "repo_id": HF_REPO,
        "repo_type": "dataset",
        "local_dir": local_dir,
        "revision": revision,
        "allow_patterns": ["README.md", *(f"{name}/*" for name in names)],
    }


def download(local_dir: str = DEFAULT_ROOT, subsets: Sequence[str] = (), revision: str | None = None) -> dict:
    """Download the subsets and check each one resolves; returns ``{subset: parquet path}``.

    Raises:
        DownloadError: the hub could not be reached or refused the request (one-line message).
        FileNotFoundError: a subset is still missing after the download (e.g. a renamed release).
    """
    from huggingface_hub import snapshot_download

    kwargs = snapshot_kwargs(local_dir, subsets, revision)
    try:
        snapshot_download(**kwargs)
    except Exception as exc:  # network, auth and hub errors all end the command the same way
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise DownloadError(
            f"could not download {HF_REPO} into {local_dir}: {type(exc).__name__}: {detail} "
            "(check the network, HF_TOKEN and HF_ENDPOINT)"
        ) from exc
    names = list(subsets) or list(SUBSETS)
    return {name: resolve_source(local_dir, name) for name in names}
