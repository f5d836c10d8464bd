"""Train stage: LoRA fine-tuning of Hugging Face image-text-to-text models (SkinVL) and merging.

    from mmskin.train.sft import run            # run(TrainRun, reporter) -> StageResult: mmskin train
    from mmskin.train.merge import run          # run(MergeConfig, reporter) -> StageResult: mmskin merge

Read ``config.py`` (the settings), ``data.py`` (samples and label masking), ``sft.py`` (the run's named steps),
``card.py`` (the model card) and ``merge.py``.
"""
