"""Models shared by train and evaluate: loading image-text-to-text models and processors, tiny test models."""
