"""Evaluate: open-VQA metrics, zero-shot and linear-probe classification, model adapters, results reports.

Each task is a config dataclass and ``run(config, reporter=None) -> StageResult``:

- :mod:`.vqa` (``EvalVQAConfig``; inputs read by :mod:`.vqa_inputs`), scored by :mod:`.metrics` (one small
  class per metric and compat mode, found through ``metrics.base.REGISTRY``, each with its signature);
- :mod:`.zeroshot` (``ZeroShotConfig``) and :mod:`.probe` (``ProbeConfig``, features by :mod:`.features`),
  scored by :mod:`.classification`;
- :mod:`.report` (``ResultsReportConfig``): the HTML page of results files.

Models answer through :mod:`.predict` (``ModelConfig``, resumable predictions files) and the adapter registry of
:mod:`.adapters` (``hf:``, ``openai:``, ``dummy``); results files are written by :mod:`.results`. The command
line (:mod:`.cli`, :mod:`.cli_models`) only maps flags to these configs.

    from mmskin.evaluate.vqa import EvalVQAConfig, run
    result = run(EvalVQAConfig(predictions=Path("preds.csv"), out=Path("vqa.json")))
"""
