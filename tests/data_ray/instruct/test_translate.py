from __future__ import annotations

from pulse.data_ray.instruct.config import TranslateConfig
from pulse.data_ray.instruct.translate import (
    TranslatePrompts,
    clean_translation,
    copy_english,
    needs_translation,
)


def record(report: str | None, lang: str | None) -> dict:
    return {"record_id": "ptbxl/6001", "report": report, "report_lang": lang}


def test_which_reports_are_translated():
    languages = TranslateConfig().languages
    assert needs_translation(record("sinusrhythmus lagetyp normal", "de"), languages)
    assert not needs_translation(record("sinus rhythm. normal ecg.", "en"), languages)
    assert not needs_translation(record(None, None), languages)
    assert copy_english(record("sinus rhythm.", "en"))["report_en"] == "sinus rhythm."
    assert copy_english(record("sinusrhythmus", "de"))["report_en"] is None


def test_translation_prompt_and_output_keep_the_original():
    prompts = TranslatePrompts(TranslateConfig())
    row = prompts.preprocess(record("sinusrhythmus p-verbreiterung", "de"))
    assert "from German into English" in row["messages"][-1]["content"]
    assert "sinusrhythmus p-verbreiterung" in row["messages"][-1]["content"]
    out = prompts.postprocess(
        {**row, "generated_text": 'English: "Sinus rhythm, broad P waves."', "llm_error": None}
    )
    assert (
        out["report_en"] == "Sinus rhythm, broad P waves."
        and out["report"] == "sinusrhythmus p-verbreiterung"
    )
    assert "messages" not in out and "generated_text" not in out
    failed = prompts.postprocess({**row, "generated_text": None, "llm_error": "http_500: boom"})
    assert failed["report_en"] is None
    assert clean_translation("   ") is None
