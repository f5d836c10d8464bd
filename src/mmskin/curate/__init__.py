"""Curate: caption cleaning, modality, demographics, filters, near-duplicates and splits (fills record fields,
never deletes a record)."""
