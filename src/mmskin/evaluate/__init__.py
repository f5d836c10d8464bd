"""Evaluate: open-VQA metrics, zero-shot and linear-probe classification, model adapters, results reports."""
