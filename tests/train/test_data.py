"""Training data: reading LLaVA JSON / VQA JSONL / parquet, image-root checks, mix weights, label masking."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from train_support import KINDS, SHARED, shared_rows

from mmskin.train.config import DataSource
from mmskin.train.data import IGNORE_INDEX, Collator, DataError, Sample, encode_sample, load_sources


def _processor(path: Path):
    from mmskin.models import load_processor

    return load_processor(str(path))


def _sample(row, turns=None) -> Sample:
    turns = turns or [("What is the imaging modality of this image?", "The image is a dermoscopy image.")]
    return Sample("x1", "test", turns, image_path=SHARED / row["file"])


@pytest.mark.parametrize("kind", KINDS)
def test_labels_cover_only_the_answer(kind, tiny_models):
    proc = _processor(tiny_models[kind])
    tok = proc.tokenizer
    row = shared_rows()[9]
    enc = encode_sample(proc, _sample(row), max_length=512)
    ids, labels = enc["input_ids"].tolist(), enc["labels"].tolist()
    trained = [i for i, lab in enumerate(labels) if lab != IGNORE_INDEX]
    # the trained positions are one contiguous block at the end: the answer and the end-of-turn token
    assert trained == list(range(trained[0], len(ids)))
    assert [ids[i] for i in trained] == [labels[i] for i in trained]
    answer_text = tok.decode([ids[i] for i in trained], skip_special_tokens=False)
    assert answer_text.strip().startswith("The image is a dermoscopy image.")
    # the end-of-turn token is trained (Qwen's template adds a newline after it)
    eos_at = max(i for i in trained if ids[i] == tok.eos_token_id)
    assert tok.decode(ids[eos_at + 1 :]).strip() == ""
    # the prompt, including every expanded image token, is masked
    image_id = proc.image_token_id
    image_positions = [i for i, t in enumerate(ids) if t == image_id]
    assert len(image_positions) >= 2  # expanded: 16 for tiny LLaVA, 2-4 for tiny Qwen2.5-VL
    assert all(labels[i] == IGNORE_INDEX for i in image_positions)
    assert all(lab == IGNORE_INDEX for lab in labels[: trained[0]])
    prompt = tok.decode(ids[: trained[0]], skip_special_tokens=False)
    assert "What is the imaging modality" in prompt


@pytest.mark.parametrize("kind", KINDS)
def test_collator_masks_padding(kind, tiny_models):
    proc = _processor(tiny_models[kind])
    rows = shared_rows()
    short = encode_sample(proc, _sample(rows[0], [("Modality?", "Clinical.")]), 512)
    long = encode_sample(
        proc, _sample(rows[10], [("What is the imaging modality?", "A dermoscopy image " * 5)]), 512
    )
    batch = Collator(proc)([short, long])
    n_short = len(short["input_ids"])
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"].shape[1] == len(long["input_ids"])
    assert (batch["labels"][0, n_short:] == IGNORE_INDEX).all()
    assert (batch["attention_mask"][0, n_short:] == 0).all()
    assert (batch["input_ids"][0, n_short:] == proc.tokenizer.pad_token_id).all()
    assert batch["labels"][0, :n_short].tolist() == short["labels"].tolist()
    assert batch["pixel_values"].shape[0] >= 2


def test_multi_turn_trains_every_answer_and_masks_every_question(tiny_models):
    proc = _processor(tiny_models["llava"])
    turns = [("What is the modality?", "Dermoscopy."), ("Is there ulceration?", "No ulceration.")]
    enc = encode_sample(proc, _sample(shared_rows()[9], turns), 512)
    tok = proc.tokenizer
    ids, labels = enc["input_ids"].tolist(), enc["labels"].tolist()
    trained_text = tok.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    assert "Dermoscopy." in trained_text and "No ulceration." in trained_text
    assert "ulceration?" not in trained_text and "modality" not in trained_text


def test_prompt_longer_than_max_length_is_one_line(tiny_models):
    proc = _processor(tiny_models["llava"])
    with pytest.raises(DataError, match=r"sample x1 .*max_length 8; raise max_length"):
        encode_sample(proc, _sample(shared_rows()[0]), max_length=8)


def _write(path: Path, items) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def test_missing_and_escaping_images_are_reported(tmp_path):
    rows = shared_rows()
    (tmp_path / "outside.png").write_bytes((SHARED / rows[0]["file"]).read_bytes())
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.jpg").write_bytes((SHARED / rows[0]["file"]).read_bytes())
    os.symlink(tmp_path / "outside.png", root / "link.png")
    conv = [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}]
    items = [
        {"id": "good", "image": "ok.jpg", "conversations": conv},
        {"id": "gone", "image": "nope.jpg", "conversations": conv},
        {"id": "up", "image": "../outside.png", "conversations": conv},
        {"id": "abs", "image": str(tmp_path / "outside.png"), "conversations": conv},
        {"id": "link", "image": "link.png", "conversations": conv},
        {"id": "noanswer", "image": "ok.jpg", "conversations": conv[:1]},
    ]
    path = _write(root / "data.json", items)
    samples, (rep,) = load_sources([DataSource(path=str(path))], seed=0)
    assert [s.id for s in samples] == ["good"]
    assert rep.read == 6 and rep.used == 1
    bad = "\n".join(rep.bad)
    assert all("\n" not in b and b.startswith(f"{path}: sample ") for b in rep.bad)
    assert "sample gone: image nope.jpg not found" in bad
    assert "sample up: image path '../outside.png' is absolute or escapes" in bad
    assert "sample abs: image path" in bad
    assert "sample link: image path 'link.png' resolves outside the dataset root" in bad
    assert "sample noanswer: conversations has an unanswered last turn" in bad


def test_not_an_image_is_reported(tmp_path):
    (tmp_path / "fake.png").write_text("not a png")
    conv = [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}]
    path = _write(tmp_path / "d.json", [{"id": "f", "image": "fake.png", "conversations": conv}])
    _, (rep,) = load_sources([DataSource(path=str(path))], seed=0)
    assert len(rep.bad) == 1 and "sample f: image fake.png is not a readable image" in rep.bad[0]


def test_vqa_jsonl_with_info_sidecar_and_mix_weights(tmp_path):
    rows = shared_rows()[:10]
    path = tmp_path / "pub.jsonl"
    lines = [
        json.dumps({"id": f"v{i}", "image": r["file"], "question": "Diagnosis?", "answer": "Nevus."})
        for i, r in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n{broken\n", encoding="utf-8")
    Path(f"{path}.info.json").write_text(json.dumps({"images": str(SHARED)}), encoding="utf-8")
    src = [
        DataSource(path=str(path), weight=2.0, name="pub"),
        DataSource(path=str(path), weight=0.5, name="half"),
    ]
    samples, reps = load_sources(src, seed=1)
    assert [r.used for r in reps] == [20, 5]
    assert reps[0].read == 11 and len(reps[0].bad) == 1 and "not valid JSON" in reps[0].bad[0]
    assert len(samples) == 25 and samples[0].turns == [("Diagnosis?", "Nevus.")]
    again, _ = load_sources(src, seed=1)
    assert [s.id for s in again] == [s.id for s in samples]  # the half is drawn reproducibly


def test_parquet_with_embedded_and_relative_images(tmp_path):
    pa = pytest.importorskip("pyarrow")  # an [export] extra; installed in the dev venv
    import pyarrow.parquet as pq
    from PIL import Image

    rows = shared_rows()
    data = (SHARED / rows[0]["file"]).read_bytes()
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "image": [
                {"bytes": data, "path": None},
                {"bytes": None, "path": rows[1]["file"]},
                {"bytes": None, "path": "x.jpg"},
            ],
            "question": ["Q1?", "<image>\nQ2?", "Q3?"],
            "answer": ["A1.", "A2.", "A3."],
        }
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    samples, (rep,) = load_sources([DataSource(path=str(path), image_root=str(SHARED))], seed=0)
    assert [s.id for s in samples] == ["a", "b"] and rep.format == "hf"
    assert samples[1].turns == [("Q2?", "A2.")]
    assert samples[0].open_image().size == Image.open(io.BytesIO(data)).size
    assert "sample c: image x.jpg not found" in rep.bad[0]


def test_missing_data_file_and_bad_json(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_sources([DataSource(path=str(tmp_path / "none.json"))], seed=0)
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(DataError, match=r"b.json: not valid JSON"):
        load_sources([DataSource(path=str(tmp_path / "b.json"))], seed=0)
