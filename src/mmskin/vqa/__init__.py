"""VQA: MM-Skin-O generation (template or OpenAI-compatible LLM), public datasets as VQA, exports."""
