"""Modality: clinical photo, dermoscopy, pathology (histology) or other (charts, drawings, radiology, ...).

The image model has two linear stages over ``features.image_features`` (weights shipped as
``data/curate/modality_weights.npz``, fitted by ``scripts/train_modality.py``; numpy at runtime): stage 1 is a
scaler + multinomial logistic regression over all features for skin photo / pathology / other; stage 2 splits a
skin photo into clinical or dermoscopy with a binary logistic regression on a few scale-free cues (fine skin-surface
texture at a fixed shorter side, lesion centred in the frame, vignette), which transfer across image sources
better than the full feature set. p(clinical) = p(skin) * (1 - q), p(dermoscopy) = p(skin) * q. A single-stage
weight file (4-class ``coef``/``intercept``, no ``s2_coef``) is still read. Caption cues
(``data/curate/caption_cues.yaml``: "dermoscopy", "H&E", "x200", "CT", body sites, ...) add log-odds to the image
model's log-probabilities; an empty caption leaves the image decision alone.

    >>> from mmskin.curate.modality import ModalityModel
    >>> m = ModalityModel.load()
    >>> r = m.predict(image_rgb, caption="Dermoscopy shows an atypical pigment network.")
    >>> r.modality, r.score, r.image_probs, r.cues
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..resources import data_path, load_yaml

CLASSES: tuple[str, ...] = ("clinical", "dermoscopy", "pathology", "other")
WEIGHTS_FILE = "modality_weights.npz"  # under data/curate/
CUES_FILE = "caption_cues.yaml"


def weights_path(weights: str | Path | None = None) -> Path:
    """The modality weights file: ``weights`` when given, else the shipped one."""
    return Path(weights) if weights else data_path("curate", WEIGHTS_FILE)


@dataclass(frozen=True)
class Cue:
    name: str
    pattern: re.Pattern[str]
    cls: str
    weight: float


@dataclass
class ModalityResult:
    modality: str
    score: float  # fused probability of the chosen class
    probs: dict[str, float]  # fused
    image_probs: dict[str, float]
    cues: list[dict] = field(default_factory=list)  # [{"cue", "class", "weight", "text"}]

    def evidence(self) -> dict:
        return {"image": self.image_probs, "caption_cues": self.cues, "fused": self.probs}


def load_cues(path: Path | None = None) -> list[Cue]:
    """Caption cues from the YAML lexicon (the shipped one unless ``path``): ``{name, pattern, class, weight,
    case_sensitive}`` entries."""
    if path is None:
        path, doc = data_path("curate", CUES_FILE), load_yaml("curate", CUES_FILE)
    else:
        from ..config import read_yaml_mapping

        doc = read_yaml_mapping(path)
    cues = []
    for i, c in enumerate(doc.get("cues", [])):
        if c.get("class") not in CLASSES:
            raise ValueError(f"{path}: cue {i} has class {c.get('class')!r}, not one of {CLASSES}")
        flags = 0 if c.get("case_sensitive") else re.IGNORECASE
        pat = re.compile(rf"(?<!\w)(?:{c['pattern']})(?!\w)", flags)
        cues.append(Cue(str(c.get("name", c["pattern"])), pat, c["class"], float(c["weight"])))
    return cues


def caption_cues(text: str, cues: list[Cue]) -> list[dict]:
    """Cues that match ``text`` (each cue once), with the matched text."""
    out = []
    for c in cues:
        m = c.pattern.search(text or "")
        if m:
            out.append({"cue": c.name, "class": c.cls, "weight": c.weight, "text": m.group(0)})
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def _probs(p: np.ndarray) -> dict[str, float]:
    # rounded so that records (and reruns) are stable to the last digit
    return {c: round(float(v), 4) for c, v in zip(CLASSES, p)}


class ModalityModel:
    """Image classifier + caption cue fusion."""

    def __init__(
        self, weights: dict[str, np.ndarray], cues: list[Cue], cue_cap: float = 6.0, sha256: str = ""
    ):
        from .features import FEATURE_NAMES

        names = tuple(str(x) for x in weights["feature_names"])
        if names != FEATURE_NAMES:
            raise ValueError(
                "modality weights were fitted on other features (rerun scripts/train_modality.py)"
            )
        if tuple(str(x) for x in weights["classes"]) != CLASSES:
            raise ValueError(f"modality weights have classes {list(weights['classes'])}, expected {CLASSES}")
        self.mean = weights["mean"].astype(np.float64)
        self.scale = weights["scale"].astype(np.float64)
        self.coef = weights["coef"].astype(np.float64)
        self.intercept = weights["intercept"].astype(np.float64)
        # two-stage weights: stage 1 has 3 rows (skin photo, pathology, other), stage 2 one clinical/dermoscopy logit
        self.two_stage = "s2_coef" in weights
        n1 = len(CLASSES) - 1 if self.two_stage else len(CLASSES)
        if self.coef.shape != (n1, len(FEATURE_NAMES)) or self.intercept.shape != (n1,):
            raise ValueError(
                f"modality weights: coef {self.coef.shape}, expected ({n1}, {len(FEATURE_NAMES)})"
            )
        if self.two_stage:
            self.s2_mean = weights["s2_mean"].astype(np.float64)
            self.s2_scale = weights["s2_scale"].astype(np.float64)
            self.s2_coef = weights["s2_coef"].astype(np.float64)
            self.s2_intercept = float(np.asarray(weights["s2_intercept"]).reshape(-1)[0])
            if self.s2_coef.shape != (len(FEATURE_NAMES),):
                raise ValueError(
                    f"modality weights: s2_coef {self.s2_coef.shape}, expected ({len(FEATURE_NAMES)},)"
                )
        self.cues = cues
        self.cue_cap = cue_cap
        self.sha256 = sha256

    @classmethod
    def load(
        cls, weights: Path | None = None, cues: Path | None = None, cue_cap: float = 6.0
    ) -> ModalityModel:
        raw = weights_path(weights).read_bytes()
        import io

        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            w = {k: z[k] for k in z.files}
        return cls(w, load_cues(cues), cue_cap, hashlib.sha256(raw).hexdigest())

    @classmethod
    def load_checked(
        cls, weights: Path | None = None, cues: Path | None = None, cue_cap: float = 6.0
    ) -> tuple[ModalityModel, str | None]:
        """``(model, None)``, or, when the weights file is missing or corrupt, ``(a caption-only model, the
        reason)``: the image then says nothing (uniform probabilities), the caption cues decide, and the low
        confidence flags every record for review."""
        try:
            return cls.load(weights, cues, cue_cap), None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            reason = (
                f"modality weights unusable ({type(e).__name__}: {str(e)[:120]}); modality from captions only"
            )
            return cls.caption_only(load_cues(cues), cue_cap), reason

    @classmethod
    def caption_only(cls, cues: list[Cue], cue_cap: float = 6.0) -> ModalityModel:
        """A model whose image part is uniform: only caption cues move the decision."""
        from .features import FEATURE_NAMES

        n = len(FEATURE_NAMES)
        w = {"mean": np.zeros(n), "scale": np.ones(n), "coef": np.zeros((len(CLASSES), n))}
        w |= {"intercept": np.zeros(len(CLASSES)), "feature_names": np.array(FEATURE_NAMES)}
        return cls(w | {"classes": np.array(CLASSES)}, cues, cue_cap, sha256="")

    def image_logits(self, feats: np.ndarray) -> np.ndarray:
        """Logits over CLASSES (for the two-stage model: log-probabilities, so softmax gives the probabilities)."""
        f = feats.astype(np.float64)
        z1 = self.coef @ ((f - self.mean) / self.scale) + self.intercept
        if not self.two_stage:
            return z1
        lp1 = z1 - z1.max()
        lp1 = lp1 - np.log(np.exp(lp1).sum())  # log p(skin photo), log p(pathology), log p(other)
        s = float(self.s2_coef @ ((f - self.s2_mean) / self.s2_scale) + self.s2_intercept)
        log_q = -np.logaddexp(0.0, -s)  # log p(dermoscopy | skin photo)
        log_1q = -np.logaddexp(0.0, s)
        return np.array([lp1[0] + log_1q, lp1[0] + log_q, lp1[1], lp1[2]])

    def fuse(self, logits: np.ndarray, caption: str) -> ModalityResult:
        p_img = _softmax(logits)
        matched = caption_cues(caption, self.cues)
        bonus = np.zeros(len(CLASSES))
        for m in matched:
            bonus[CLASSES.index(m["class"])] += m["weight"]
        bonus = bonus.clip(-self.cue_cap, self.cue_cap)
        p = _softmax(np.log(np.maximum(p_img, 1e-12)) + bonus)
        k = int(np.argmax(p))
        return ModalityResult(CLASSES[k], round(float(p[k]), 4), _probs(p), _probs(p_img), matched)

    def predict(self, rgb: np.ndarray, caption: str = "") -> ModalityResult:
        from .features import image_features

        return self.fuse(self.image_logits(image_features(rgb)), caption)


@lru_cache(maxsize=1)
def default_model() -> ModalityModel:
    return ModalityModel.load()


def weights_meta(weights: Path | None = None) -> dict:
    with np.load(weights_path(weights), allow_pickle=False) as z:
        return json.loads(str(z["meta"])) if "meta" in z.files else {}


def entropy_bits(probs: dict[str, float]) -> float:
    return -sum(p * math.log2(p) for p in probs.values() if p > 0)


def figure_key(rec: dict) -> tuple | None:
    """The figure a record belongs to (its PDF, page and label), or None for a record without a label."""
    src = rec.get("source") if isinstance(rec.get("source"), dict) else {}
    label = rec.get("figure_label")
    return (src.get("sha256") or src.get("file"), src.get("page"), label) if label else None


def apply_figure_context(
    model: ModalityModel, records: list[dict], images: list[dict], weight: float
) -> None:
    """Join each panel's image probabilities with the other panels of its figure, in the image pass results.

    Panels of one figure usually share a modality, so the mean of the other panels' image probabilities is a
    prior: ``weight`` times its log is added to the panel's own image log-probabilities before the caption cues
    (the record's cleaned caption). A panel with clear evidence of its own keeps its class (a figure of a
    clinical photo beside its dermoscopy); one the image model is unsure about follows its figure. Unreadable
    images and figures of one readable record are left as they are; the fused result gains ``figure`` (the
    prior)."""
    groups: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records):
        k = figure_key(rec)
        if k is not None and "error" not in images[i]:
            groups.setdefault(k, []).append(i)
    for members in groups.values():
        if len(members) < 2 or weight <= 0:
            continue
        own = [images[i]["modality"]["image_probs"] for i in members]
        probs = np.array([[p[c] for c in CLASSES] for p in own], np.float64)
        for j, i in enumerate(members):
            prior = (probs.sum(0) - probs[j]) / (len(members) - 1)
            z = np.log(np.maximum(probs[j], 1e-6)) + weight * np.log(np.maximum(prior, 1e-3))
            r = model.fuse(z, records[i].get("caption") or "")
            images[i]["modality"] = dict(r.__dict__, image_probs=own[j], figure=_probs(prior))
