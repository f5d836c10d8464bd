"""Train: LoRA fine-tuning of Hugging Face image-text-to-text models (SkinVL) and merging."""
