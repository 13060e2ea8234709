import json
import math

from pulse.demo_learning import (
    answer_items,
    chance,
    heart_rate_accuracy,
    heart_rate_items,
    learned_tasks,
    print_learning_table,
    write_heart_rate_llava,
)
from pulse.models.tiny_llava import LlavaBuildConfig, build_tiny_llava


def test_heart_rate_llava_json_is_importable_llava(tmp_path):
    from pulse.data_ray.llava_format.job import LlavaImportConfig, run

    path, images = write_heart_rate_llava(str(tmp_path / "hr"), 6, seed=0)
    with open(path) as handle:
        records = json.load(handle)
    assert len(records) == 6 and records[0]["conversations"][0]["value"].startswith("<image>\n")
    summary = run(LlavaImportConfig(input=path, images={"folder": images}, output_dir=str(tmp_path / "out")))
    assert summary.rows_ok == 6 and summary.rows_error == 0


def test_accuracy_uses_strict_class_extraction():
    items = heart_rate_items(3, seed=1)
    gold = [it["answer"] for it in items]
    assert heart_rate_accuracy(gold, items) == 100.0
    assert heart_rate_accuracy(["normal or tachycardia"] * 3, items) == 0.0
    assert chance({"accuracy": 10.0}, 8) == ("accuracy", 12.5) and chance({"auc": 50.0}, None)[0] == "AUC"


def test_untrained_model_answers_every_item(capsys):
    model, processor = build_tiny_llava(LlavaBuildConfig())
    items = heart_rate_items(4, seed=2)
    answers = answer_items(model.eval(), processor, items, max_new_tokens=3, batch_size=3)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
    rows = [
        {"task": "hr", "metric": "accuracy", "n": 4, "trained": 75.0, "untrained": 0.0, "chance": 100 / 3},
        {"task": "own-x", "metric": "AUC", "n": 4, "trained": math.nan, "untrained": 50.0, "chance": 50.0},
    ]
    print_learning_table(rows)
    out = capsys.readouterr().out
    assert "| hr | accuracy | 4 | 75.0 | 0.0 | 33.3 |" in out and "nan*" in out and "* nan:" in out
    assert "untrained model): hr" in out
    same = {"task": "own-y", "metric": "accuracy", "n": 2, "trained": 50.0, "untrained": 50.0, "chance": 12.5}
    assert learned_tasks([*rows, same]) == ["hr"]  # above chance but no better than untrained: not learned
