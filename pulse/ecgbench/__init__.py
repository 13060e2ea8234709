"""ECGBench: load the 9 subsets, run any OpenAI-compatible model, score (paper or strict), judge, sweep.

Programmatic API:
    ``load.load_subset(source, subset)``, ``own_items.build_items(records_dir, images_dir)``,
    ``runner.run_items(items, EndpointConfig(...), out_jsonl)``, ``score.score_items(subset, gold, preds, mode)``,
    ``judge.judge_items(...)``, ``nlg.report_metrics(refs, hyps)``, ``report.markdown_table(results, ...)``,
    ``sweep.run(SweepConfig)``.
"""
