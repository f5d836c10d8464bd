"""Shared pieces of the static HTML that curate writes (review sheets, dataset card).

Everything a page shows that came from a PDF (captions, file names, flags) goes through :func:`esc`; pages are
self-contained (thumbnails copied next to them as small JPEGs, no script or network access needed to view them).
A bad line or image is one problem in the caller's :class:`~mmskin.stage.Problems`; the pages go on without it.

    >>> from mmskin.curate.html import Pages, page
    >>> pages = Pages.open("review", Path("data/derm"), Path("review"), problems)
    >>> pages.records, pages.thumbs.get(pages.records[0])
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..records import RecordError, atomic_write_bytes, iter_jsonl, resolve_in_root
from ..stage import Problems, StageError

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin:.2em 0 .6em} h2{font-size:1.2em;margin:1.4em 0 .5em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0 1em} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{width:236px;border:1px solid #ccc;border-radius:6px;padding:6px;background:#fafafa;font-size:12px}
.card.review{border:2px solid #d9480f;background:#fff4e6}
.card img{display:block;max-width:224px;max-height:224px;margin:0 auto 4px}
.card .missing{height:120px;display:flex;align-items:center;justify-content:center;background:#eee;color:#900}
.cap{max-height:9em;overflow:auto;white-space:pre-wrap;word-wrap:break-word}
.meta{color:#555;font-family:ui-monospace,Menlo,monospace;font-size:11px;word-break:break-all}
.flag{display:inline-block;background:#e7e7e7;border-radius:3px;padding:0 4px;margin:1px}
.flag.review{background:#d9480f;color:#fff}
.pager{margin:.8em 0} .pager a,.pager span{margin-right:1em}
pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:12px}
img.plot{max-width:100%;border:1px solid #eee;margin:.3em}
"""


def esc(value: Any) -> str:
    """HTML-escape anything (captions come from arbitrary PDFs)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, css_href: str | None = None) -> str:
    """A complete HTML document; CSS inline unless ``css_href`` is given."""
    style = f'<link rel="stylesheet" href="{esc(css_href)}">' if css_href else f"<style>{CSS}</style>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{esc(title)}</title>{style}</head>\n'
        f"<body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def load_dataset_records(dataset: Path, problems: Problems) -> tuple[list[dict[str, Any]], int]:
    """Records of ``dataset/records.jsonl``, skipping lines that are not JSON objects with an id and an image
    (each one problem ``records.jsonl:LINE``); schema problems in other fields are tolerated (a report must work
    on any dataset). Returns the records and the number of lines skipped."""
    path = Path(dataset) / "records.jsonl"
    errors: list[str] = []
    records = [rec for _, rec in iter_jsonl(path, errors, check=_record_problem)]
    prefix = f"{path}:"
    for msg in errors:  # iter_jsonl writes "FILE:LINE: reason"
        line, _, reason = msg[len(prefix) :].partition(": ")
        problems.add(f"{path}:{line}", reason)
    return records, len(errors)


@dataclass
class Pages:
    """What a page writer (review sheets, dataset card) starts from: the folders, the records, a thumbnailer."""

    dataset: Path
    out: Path
    records: list[dict[str, Any]]
    bad_lines: int  # records.jsonl lines skipped (each one problem)
    thumbs: Thumbs

    @classmethod
    def open(cls, command: str, dataset: Path | None, out: Path | None, problems: Problems) -> Pages:
        """Check the folders, create ``out`` and read the records. StageError (exit status 2) when ``dataset``
        has no records.jsonl."""
        if dataset is None or out is None:
            raise ConfigError(f"{command}: a dataset folder and an output folder are needed")
        dataset, out = Path(dataset), Path(out)
        if not (dataset / "records.jsonl").is_file():
            raise StageError(dataset, "no records.jsonl (not a dataset folder)", exit_code=2)
        out.mkdir(parents=True, exist_ok=True)
        records, bad_lines = load_dataset_records(dataset, problems)
        return cls(dataset, out, records, bad_lines, Thumbs(dataset, out, problems))


def _record_problem(rec: Any) -> list[str]:
    ok = isinstance(rec, dict) and isinstance(rec.get("id"), str) and isinstance(rec.get("image"), str)
    return [] if ok else ["not a record (needs string 'id' and 'image')"]


def read_json_file(path: Path, problems: Problems) -> Any | None:
    """A JSON file's content, None when absent; a malformed file is a problem and gives None."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems.add(path, f"unreadable JSON ({e})")
        return None


def modality_of(rec: dict[str, Any]) -> str:
    m = rec.get("modality")
    return m if isinstance(m, str) and m else "unclassified"


def flags_of(rec: dict[str, Any]) -> list[str]:
    f = rec.get("flags")
    return [str(x) for x in f] if isinstance(f, list) else []


@dataclass
class Thumbs:
    """Makes small JPEG copies of record images under ``out/thumbs`` (one per distinct image); an image that
    cannot be used is one problem."""

    dataset: Path
    out: Path
    problems: Problems
    max_side: int = 224
    quality: int = 80

    def __post_init__(self) -> None:
        self._done: dict[str, str | None] = {}

    def get(self, rec: dict[str, Any]) -> str | None:
        """Path of the thumbnail relative to ``out`` ("thumbs/x.jpg"), or None when the image is unusable."""
        rel = rec.get("image", "")
        if rel in self._done:
            return self._done[rel]
        self._done[rel] = result = self._make(rec, rel)
        return result

    def _make(self, rec: dict[str, Any], rel: str) -> str | None:
        from PIL import Image, UnidentifiedImageError

        try:
            src = resolve_in_root(self.dataset, rel)
        except RecordError as e:
            self.problems.add(f"record {rec.get('id')}", str(e))
            return None
        stem = Path(rel).stem or "image"
        name = f"thumbs/{stem}.jpg"
        dst = self.out / name
        try:
            if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
                return name  # a rerun reuses thumbnails made from the same content-addressed image
            with Image.open(src) as im:
                im.draft("RGB", (self.max_side, self.max_side))
                im = im.convert("RGB")
                im.thumbnail((self.max_side, self.max_side))
                import io

                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=self.quality, optimize=True)
            atomic_write_bytes(dst, buf.getvalue())
        except FileNotFoundError:
            self.problems.add(src, f"image file missing (record {rec.get('id')})")
            return None
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            self.problems.add(src, f"not a readable image ({type(e).__name__}: {e}) (record {rec.get('id')})")
            return None
        return name


def card(rec: dict[str, Any], thumb: str | None, thumb_prefix: str = "", review: bool = False) -> str:
    """One thumbnail card: image, id, modality and score, flags, caption (all escaped)."""
    flags = flags_of(rec)
    score = rec.get("modality_score")
    score_s = f"{score:.3f}" if isinstance(score, int | float) and not isinstance(score, bool) else "–"
    img = (
        f'<img src="{esc(thumb_prefix + thumb)}" alt="{esc(rec.get("id"))}" loading="lazy">'
        if thumb
        else '<div class="missing">image unavailable</div>'
    )
    flag_html = "".join(
        f'<span class="flag{" review" if f == "review" else ""}">{esc(f)}</span>' for f in flags
    )
    src = rec.get("source") if isinstance(rec.get("source"), dict) else {}
    where = f"{src.get('file', '?')} p.{src.get('page', '?')}"
    label = rec.get("figure_label")
    if label:
        where += f" fig {label}{rec.get('panel') or ''}"
    caption = rec.get("caption") or rec.get("caption_raw") or ""
    demo = []
    if rec.get("age") is not None:
        demo.append(f"age {rec['age']:g}" if isinstance(rec["age"], int | float) else f"age {rec['age']}")
    for k in ("age_group", "sex", "split"):
        if rec.get(k):
            demo.append(f"{k} {rec[k]}")
    if rec.get("duplicate_of"):
        demo.append(f"duplicate of {rec['duplicate_of']}")
    return (
        f'<div class="card{" review" if review else ""}" id="r-{esc(rec.get("id"))}">{img}'
        f'<div class="meta">{esc(rec.get("id"))} · {esc(modality_of(rec))} {esc(score_s)}<br>{esc(where)}'
        f"{'<br>' + esc(', '.join(demo)) if demo else ''}</div>"
        f'<div>{flag_html}</div><div class="cap">{esc(caption)}</div></div>'
    )


def count_table(title: str, counts: Iterable[tuple[str, int]], total: int | None = None) -> str:
    rows = "".join(f'<tr><td>{esc(k)}</td><td class="n">{v}</td></tr>' for k, v in counts)
    foot = f'<tr><th>total</th><th class="n">{total}</th></tr>' if total is not None else ""
    return f"<table><tr><th>{esc(title)}</th><th>records</th></tr>{rows}{foot}</table>"


def pager(index: int, n_pages: int, name: Callable[[int], str], up: str | None = None) -> str:
    """Prev / page k of n / next links for a static paged gallery."""
    parts = []
    if up:
        parts.append(f'<a href="{esc(up)}">index</a>')
    parts.append(
        f'<a href="{esc(name(index - 1))}" rel="prev">prev</a>' if index > 0 else "<span>prev</span>"
    )
    parts.append(f"<span>page {index + 1} of {n_pages}</span>")
    parts.append(
        f'<a href="{esc(name(index + 1))}" rel="next">next</a>'
        if index + 1 < n_pages
        else "<span>next</span>"
    )
    return f'<div class="pager">{"".join(parts)}</div>'
