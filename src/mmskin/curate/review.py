"""Contact sheets for the manual check of modality (``mmskin review DATASET --out DIR``).

Writes ``DIR/index.html`` (counts per class, links), one paged sheet per class (``clinical``, ``dermoscopy``,
``pathology``, ``other`` and ``unclassified`` for records without a modality) with the records flagged ``review``
first (then least confident first), and ``DIR/corrections.csv``: a template ``id,modality`` listing every
review-flagged record with its predicted modality. Edit the modality column (clinical, dermoscopy, pathology,
other), delete rows you agree with if you like, then apply it:

    mmskin review data/derm --out review/
    # edit review/corrections.csv
    mmskin curate data/derm --corrections review/corrections.csv

    >>> from mmskin.curate.review import ReviewConfig, run
    >>> run(ReviewConfig(dataset=Path("data/derm"), out=Path("review"))).summary
    'review: review/index.html'
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import option
from ..records import MODALITIES
from ..stage import Problems, Reporter, StageResult
from .html import (
    Pages,
    card,
    count_table,
    esc,
    flags_of,
    modality_of,
    page,
    pager,
    write_text,
)

CLASSES = (*MODALITIES, "unclassified")
PER_PAGE = 200


@dataclass
class ReviewConfig:
    """Settings of ``mmskin review``."""

    dataset: Path | None = option(None, "a curated dataset folder", cli=False, required=True)
    out: Path | None = option(None, "folder for index.html and the sheets (contact sheets)", metavar="DIR")
    per_page: int = option(PER_PAGE, "records per contact sheet page", cli=False)
    serve: bool = option(False, "run the local review web app instead of writing contact sheets")
    host: str = option("127.0.0.1", "address the web app listens on (loopback only unless you change it)")
    port: int = option(8765, "port of the web app (0: any free port)")


def review_order(rec: dict[str, Any]) -> tuple[int, float, str]:
    """Review-flagged records first, least confident first; then the others, least confident first."""
    score = rec.get("modality_score")
    s = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else -1.0
    return (0 if "review" in flags_of(rec) else 1, s, str(rec.get("id")))


def corrections_template(records: list[dict[str, Any]]) -> str:
    """CSV text ``id,modality`` with the review-flagged records and their predicted modality."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "modality"])
    for rec in sorted(records, key=review_order):
        if "review" in flags_of(rec):
            m = rec.get("modality")
            w.writerow([rec["id"], m if m in MODALITIES else ""])
    return buf.getvalue()


def _sheet_name(cls: str, i: int) -> str:
    return f"{cls}.html" if i == 0 else f"{cls}-{i + 1}.html"


def run(config: ReviewConfig, reporter: Reporter | None = None) -> StageResult:
    """Write the review contact sheets and the corrections template under ``config.out`` (or, with
    ``config.serve``, run the web app until interrupted: :func:`serve`).

    An unusable image or line is one problem (its card shows a placeholder); StageError (exit status 2) when
    the dataset folder has no records.jsonl."""
    if config.serve:
        return serve(config, reporter)
    problems = Problems(reporter)
    pages = Pages.open("review", config.dataset, config.out, problems)
    dataset, out, records, thumbs = pages.dataset, pages.out, pages.records, pages.thumbs
    per_page = config.per_page
    by_class: dict[str, list[dict[str, Any]]] = {c: [] for c in CLASSES}
    for rec in records:
        by_class.setdefault(modality_of(rec), []).append(rec)

    rows = []
    for cls, recs in by_class.items():
        recs.sort(key=review_order)
        n_review = sum("review" in flags_of(r) for r in recs)
        n_pages = max(1, -(-len(recs) // per_page))
        for i in range(n_pages):
            chunk = recs[i * per_page : (i + 1) * per_page]
            cards = "".join(card(r, thumbs.get(r), review="review" in flags_of(r)) for r in chunk)
            nav = pager(i, n_pages, lambda k, c=cls: _sheet_name(c, k), up="index.html")
            body = (
                f"<p>{len(recs)} records, {n_review} flagged <b>review</b> (shown first, least confident first). "
                f'Corrections go in <a href="corrections.csv">corrections.csv</a>.</p>'
                f'{nav}<div class="grid">{cards or "<p>none</p>"}</div>{nav}'
            )
            write_text(out / _sheet_name(cls, i), page(f"Review: {cls}", body))
        rows.append(
            f'<tr><td><a href="{esc(_sheet_name(cls, 0))}">{esc(cls)}</a></td>'
            f'<td class="n">{len(recs)}</td><td class="n">{n_review}</td></tr>'
        )

    n_review_all = sum("review" in flags_of(r) for r in records)
    write_text(out / "corrections.csv", corrections_template(records))
    flags = Counter(f for r in records for f in flags_of(r))
    body = (
        f"<p>Dataset <code>{esc(dataset.resolve())}</code>: {len(records)} records; "
        f"{n_review_all} flagged <b>review</b>. mmskin {esc(__version__)}.</p>"
        "<table><tr><th>class</th><th>records</th><th>review</th></tr>" + "".join(rows) + "</table>"
        "<h2>How to correct</h2><ol><li>Open each class sheet; orange cards are flagged <b>review</b>.</li>"
        '<li>Edit <a href="corrections.csv">corrections.csv</a> (<code>id,modality</code>; modality one of '
        f"{esc(', '.join(MODALITIES))}); it lists the review-flagged records with their predicted class.</li>"
        f"<li>Run <code>mmskin curate {esc(dataset)} --corrections corrections.csv</code>.</li></ol>"
        + count_table("flag", sorted(flags.items(), key=lambda kv: (-kv[1], kv[0])))
    )
    index = out / "index.html"
    write_text(index, page("mmskin review: modality contact sheets", body))
    counts = {"records": len(records), "review": n_review_all, "errors": len(problems)}
    return StageResult("review", counts, problems, f"review: {index}", {"index": index})


def serve(config: ReviewConfig, reporter: Reporter | None = None) -> StageResult:
    """Run ``mmskin review DATASET --serve`` until Ctrl+C; the summary counts the decisions in the store."""
    from ..console import stderr
    from ..stage import StageError
    from .corrections import STORE, read_store
    from .review_server import ReviewServer

    if config.dataset is None or not (Path(config.dataset) / "records.jsonl").is_file():
        raise StageError(config.dataset or "", "no records.jsonl (not a dataset folder)", exit_code=2)
    try:
        server = ReviewServer(Path(config.dataset), config.host, config.port)
    except OSError as e:
        raise StageError(
            f"{config.host}:{config.port}", f"cannot listen ({e.strerror or e})", exit_code=2
        ) from None
    problems = Problems(reporter)
    problems.take(server.state.problems)  # records.jsonl lines that are not records
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        stderr(f"warning: listening on {config.host}: anyone who can reach it can change the corrections")
    stderr(
        f"review: {server.url} ({len(server.state.records)} records; decisions -> {config.dataset}/{STORE})"
    )
    stderr("press Ctrl+C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    n = len(read_store(Path(config.dataset), Problems()).entries)
    counts = {"records": len(server.state.records), "decisions": n, "errors": len(problems)}
    return StageResult("review", counts, problems, f"review: {n} records with decisions in {STORE}")
