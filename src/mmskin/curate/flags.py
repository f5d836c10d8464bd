"""Which flags curate sets on a record, and why: one pure decision per record.

:func:`decide_flags` maps what curate measured for one record (:class:`Evidence`: the image pass's results and
the body regions its caption names) to ``{flag: one-line reason}``. It reads no file and changes nothing, so it is
tested as a table (``tests/curate/test_flags.py``). ``duplicate`` is decided across records
(:mod:`mmskin.curate.dedupe`, then :func:`duplicate_flag`); :func:`merge_flags` joins curate's flags with those
other stages set. Which flags are curate's comes from the flag table (``data/flags.yaml``, ``records.FLAGS``).

    >>> from mmskin.curate.flags import Evidence, decide_flags
    >>> decide_flags(record, Evidence(model=result, width=120, height=90), config)
    {'low_resolution': 'shorter side 90 px < 150'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..records import CURATE_FLAGS

if TYPE_CHECKING:
    from .pipeline import CurateConfig

# curate recomputes CURATE_FLAGS on every run (set_by includes curate); other flags on a record are kept as they are
__all__ = ["CURATE_FLAGS", "Evidence", "decide_flags", "duplicate_flag", "merge_flags"]


@dataclass(frozen=True)
class Evidence:
    """What curate measured for one record; the input of :func:`decide_flags`."""

    model: dict[str, Any]  # the modality model's result: modality, score, probs, image_probs, cues
    error: str | None = None  # why the image could not be read (then nothing below was measured)
    annotation: dict[str, str] = field(
        default_factory=dict
    )  # annotation cue -> reason (filters.annotation_cues)
    faces: int = 0  # faces detected (searched only in clinical and other pictures)
    width: int = 0  # pixels of the decoded image
    height: int = 0
    regions: tuple[str, ...] = ()  # intimate body regions the cleaned caption names (text.intimate_regions)

    @classmethod
    def of(cls, image: dict[str, Any], regions: list[str] | tuple[str, ...] = ()) -> Evidence:
        """From one result of the image pass (``image_pass.image_task``) and the caption's regions."""
        if "error" in image:
            return cls(image["modality"], error=image["error"], regions=tuple(regions))
        return cls(
            image["modality"],
            annotation=image["annotation"],
            faces=len(image["faces"]),
            width=image["width"],
            height=image["height"],
            regions=tuple(regions),
        )


def decide_flags(record: dict[str, Any], evidence: Evidence, config: CurateConfig) -> dict[str, str]:
    """Curate's flags for one record, each with its reason (``duplicate`` aside).

    ``record`` is read for its final ``modality``, ``modality_source`` and cleaned ``caption``; ``config`` for
    ``min_side``, ``max_marks`` and ``review_below``.
    """
    reasons: dict[str, str] = {}
    if evidence.error is not None:
        reasons["unreadable_image"] = evidence.error
    else:
        reasons.update(_image_flags(evidence, config))
    if record.get("modality_source") != "human" and (why := _review_reason(evidence, config)):
        reasons["review"] = why
    if evidence.regions and record["modality"] == "clinical":
        prev = reasons.get("sensitive")
        why = "caption names " + ", ".join(evidence.regions)
        reasons["sensitive"] = f"{prev}; {why}" if prev else why
    if record["modality"] == "other":
        reasons["non_dermatology"] = "modality other (chart, drawing, radiology, ...)"
    if not record["caption"].strip():
        reasons["no_caption"] = "empty caption after cleaning"
    return reasons


def _image_flags(evidence: Evidence, config: CurateConfig) -> dict[str, str]:
    """The marks on the picture (annotated, marked, panel_letter, scale_bar), low_resolution and sensitive
    (faces), from a readable image. Only many marks inside the picture exclude it (``annotated``); a panel
    letter, a ruler, an ink ring or a few arrows only inform."""
    from .filters import overlay_count

    reasons: dict[str, str] = {}
    a = evidence.annotation
    marks = overlay_count(a)
    if marks > config.max_marks:
        reasons["annotated"] = f"{a['overlay']} inside the picture (more than {config.max_marks})"
    elif pointers := [a[k] for k in ("overlay", "marker_circle") if k in a]:
        reasons["marked"] = "; ".join(pointers)
    if "panel_letter" in a:
        reasons["panel_letter"] = a["panel_letter"]
    if "ruler" in a:
        reasons["scale_bar"] = a["ruler"]
    short = min(evidence.width, evidence.height)
    if short < config.min_side:
        reasons["low_resolution"] = f"shorter side {short} px < {config.min_side}"
    if evidence.faces:
        reasons["sensitive"] = f"{evidence.faces} face{'s' if evidence.faces > 1 else ''} detected"
    return reasons


def _review_reason(evidence: Evidence, config: CurateConfig) -> str | None:
    """Why a human should check the model's modality, or None."""
    m = evidence.model
    imgp = m["image_probs"]
    top_img = max(imgp, key=imgp.get)
    if evidence.error is not None:
        return "image unreadable: modality from the caption alone"
    if m["score"] < config.review_below:
        return f"modality {m['modality']} at {m['score']:.2f} < {config.review_below}"
    if top_img != m["modality"]:
        by = "caption cues" if not m.get("figure") else "caption cues or the figure's other panels"
        return f"{by} overrode the image ({top_img} {imgp[top_img]:.2f})"
    return None


def duplicate_flag(duplicate_of: str | None) -> dict[str, str]:
    """The ``duplicate`` flag of a record that is a near-duplicate of ``duplicate_of`` (none when it is None)."""
    return {"duplicate": f"near-duplicate of {duplicate_of}"} if duplicate_of else {}


def merge_flags(record: dict[str, Any], decided: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``(flags, flag_reasons)`` for a record: the flags other stages set are kept, curate's are ``decided``."""
    kept = [f for f in record.get("flags", []) if f not in CURATE_FLAGS]
    reasons = {k: v for k, v in (record.get("flag_reasons") or {}).items() if k not in CURATE_FLAGS}
    reasons.update(decided)
    return sorted(set(kept) | set(reasons)), dict(sorted(reasons.items()))
