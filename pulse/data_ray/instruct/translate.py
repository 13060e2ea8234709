"""Translate non-English reports (PTB-XL is mostly German) into a ``report_en`` column.

The original ``report`` is kept. English reports are copied without an LLM call; a failed
translation leaves ``report_en`` null, so the record's report-based rows become
``no_english_report`` error rows downstream instead of being built from untranslated text.
"""

from __future__ import annotations

from typing import Any

from pulse.data_ray.instruct.config import TranslateConfig
from pulse.data_ray.instruct.prompts import fill, load_prompt_file

OUTPUT_COLUMN = "report_en"
PREFIXES = ("english:", "translation:", "english translation:")


def needs_translation(row: dict[str, Any], languages: list[str]) -> bool:
    return bool((row.get("report") or "").strip()) and (row.get("report_lang") or "unknown") in languages


def clean_translation(text: str | None) -> str | None:
    """The translation without a leading ``English:`` label or quotes; None when empty."""
    text = (text or "").strip()
    for prefix in PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    text = text.strip('"').strip()
    return text or None


class TranslatePrompts:
    """Pure preprocess/postprocess of the translation stage."""

    def __init__(self, cfg: TranslateConfig):
        self.cfg = cfg
        self.spec = load_prompt_file(cfg.prompts)

    def preprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        lang = row.get("report_lang") or "unknown"
        language = self.spec.get("languages", {}).get(lang, lang)
        user = fill(self.spec["user"], report=row["report"], language=language)
        messages = [{"role": "system", "content": self.spec["system"]}, {"role": "user", "content": user}]
        params = {"max_tokens": self.cfg.max_tokens, "temperature": self.cfg.temperature}
        return {**row, "messages": messages, "sampling_params": params}

    def postprocess(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: v
            for k, v in row.items()
            if k not in ("messages", "sampling_params", "generated_text", "llm_error", "usage")
        }
        out[OUTPUT_COLUMN] = None if row.get("llm_error") else clean_translation(row.get("generated_text"))
        return out


def copy_english(row: dict[str, Any]) -> dict[str, Any]:
    report = (row.get("report") or "").strip()
    return {**row, OUTPUT_COLUMN: report if report and row.get("report_lang") == "en" else None}


def translate(ds, cfg: TranslateConfig):
    """Records with ``report_en`` added (LLM for ``cfg.languages``, a copy for English)."""
    from pulse.llm import apply_llm

    prompts = TranslatePrompts(cfg)
    todo = ds.filter(lambda row: needs_translation(row, cfg.languages))
    rest = ds.filter(lambda row: not needs_translation(row, cfg.languages)).map(copy_english)
    return rest.union(apply_llm(todo, cfg.engine, prompts.preprocess, prompts.postprocess))
