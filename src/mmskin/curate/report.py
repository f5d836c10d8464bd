"""The dataset card: ``mmskin report DATASET --out DIR`` writes a static HTML page with plots and a gallery.

``DIR/index.html`` shows counts per modality, book (``source.file``), flag, split, age group and sex; PNG plots
(matplotlib, Agg) of modality and sex counts and of caption length and age distributions; provenance (dataset
path, ``build_info.json`` and ``curate_info.json`` as written by the stages, mmskin and library versions); and
links to a paged thumbnail gallery per modality (``DIR/gallery/<modality>-<k>.html``, 48 per page, prev/next
links) with each record's caption and flags. Works on an uncurated dataset too: missing fields count as
"unclassified" (modality) or "unknown".

    mmskin report data/derm --out card/

    >>> from mmskin.curate.report import CardConfig, run
    >>> run(CardConfig(dataset=Path("data/derm"), out=Path("card"))).summary
    'report: card/index.html (0 errors)'

``write_dataset_card(dataset, out, on_error=...)`` is the same as a thin call (problems to a callback).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import option
from ..provenance import provenance
from ..records import AGE_GROUPS, MODALITIES, SPLITS, atomic_write_bytes
from ..stage import Problem, Problems, Reporter, StageResult
from .html import (
    Pages,
    Thumbs,
    card,
    count_table,
    esc,
    flags_of,
    modality_of,
    page,
    pager,
    read_json_file,
    write_text,
)

PER_PAGE = 48
CLASSES = (*MODALITIES, "unclassified")
PACKAGES = ("matplotlib", "pillow", "pyyaml")


@dataclass
class CardConfig:
    """Settings of the dataset card (``mmskin report DATASET --out DIR``)."""

    dataset: Path | None = option(None, "a dataset folder (curated or not)", cli=False, required=True)
    out: Path | None = option(
        None, "folder for index.html, plots and the gallery", metavar="DIR", required=True
    )


def _field(rec: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    v = rec.get(key)
    return v if isinstance(v, str) and v in allowed else "unknown"


def _ordered(counts: Counter[str], first: tuple[str, ...]) -> list[tuple[str, int]]:
    head = [(k, counts[k]) for k in first if counts.get(k)]
    rest = sorted(((k, v) for k, v in counts.items() if k not in first), key=lambda kv: (-kv[1], kv[0]))
    return head + rest


def _caption_words(rec: dict[str, Any]) -> int:
    cap = rec.get("caption") if isinstance(rec.get("caption"), str) else ""
    return len(cap.split())


def _plots(records: list[dict[str, Any]], out: Path) -> list[tuple[str, str]]:
    """Write the PNG plots; returns (file relative to out, title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[tuple[str, str]] = []

    def save(fig: Any, name: str, title: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=96)
        plt.close(fig)
        atomic_write_bytes(out / "plots" / name, buf.getvalue())
        plots.append((f"plots/{name}", title))

    def bars(counts: list[tuple[str, int]], name: str, title: str, color: str) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        if counts:
            ax.bar([k for k, _ in counts], [v for _, v in counts], color=color)
            ax.tick_params(axis="x", labelrotation=20)
        else:
            ax.text(0.5, 0.5, "no records", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_ylabel("records")
        save(fig, name, title)

    def hist(
        values: list[float], name: str, title: str, xlabel: str, color: str, bins: int | list[float]
    ) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        if values:
            ax.hist(values, bins=bins, color=color, edgecolor="white")
        else:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("records")
        save(fig, name, title)

    mod = Counter(modality_of(r) for r in records)
    bars(_ordered(mod, CLASSES), "modality.png", "Records per modality", "#4c72b0")
    sex = Counter(_field(r, "sex", ("male", "female")) for r in records)
    bars(_ordered(sex, ("female", "male", "unknown")), "sex.png", "Sex (from captions)", "#dd8452")
    lengths = [_caption_words(r) for r in records]
    hist(lengths, "caption_length.png", "Caption length", "words in cleaned caption", "#55a868", 30)
    ages = [
        float(r["age"])
        for r in records
        if isinstance(r.get("age"), int | float) and not isinstance(r.get("age"), bool)
    ]
    hist(
        ages,
        "age.png",
        f"Age (from captions; {len(ages)} stated)",
        "years",
        "#c44e52",
        list(range(0, 105, 5)),
    )
    return plots


def _gallery_name(cls: str, i: int) -> str:
    return f"{cls}-{i + 1}.html"


def _gallery(records: list[dict[str, Any]], out: Path, thumbs: Thumbs) -> dict[str, int]:
    by_class: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_class.setdefault(modality_of(rec), []).append(rec)
    pages: dict[str, int] = {}
    for cls, recs in by_class.items():
        recs.sort(key=lambda r: (str((r.get("source") or {}).get("file", "")), str(r.get("id"))))
        n_pages = max(1, -(-len(recs) // PER_PAGE))
        pages[cls] = n_pages
        for i in range(n_pages):
            chunk = recs[i * PER_PAGE : (i + 1) * PER_PAGE]
            cards = "".join(card(r, thumbs.get(r), thumb_prefix="../") for r in chunk)
            nav = pager(i, n_pages, lambda k, c=cls: _gallery_name(c, k), up="../index.html")
            body = f'<p>{len(recs)} records.</p>{nav}<div class="grid">{cards}</div>{nav}'
            write_text(out / "gallery" / _gallery_name(cls, i), page(f"Gallery: {cls}", body))
    return pages


def card_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts the card shows (also written to ``DIR/summary.json`` for scripts)."""
    ages = [
        r["age"] for r in records if isinstance(r.get("age"), int | float) and not isinstance(r["age"], bool)
    ]
    return {
        "records": len(records),
        "modality": dict(_ordered(Counter(modality_of(r) for r in records), CLASSES)),
        "book": dict(
            _ordered(Counter(str((r.get("source") or {}).get("file", "unknown")) for r in records), ())
        ),
        "flag": dict(_ordered(Counter(f for r in records for f in flags_of(r)), ())),
        "unflagged": sum(not flags_of(r) for r in records),
        "split": dict(_ordered(Counter(_field(r, "split", SPLITS) for r in records), (*SPLITS, "unknown"))),
        "sex": dict(
            _ordered(Counter(_field(r, "sex", ("male", "female")) for r in records), ("female", "male"))
        ),
        "age_group": dict(
            _ordered(Counter(_field(r, "age_group", AGE_GROUPS) for r in records), (*AGE_GROUPS, "unknown"))
        ),
        "age_stated": len(ages),
        "caption_words_mean": round(sum(map(_caption_words, records)) / len(records), 2) if records else 0.0,
        "no_caption": sum(_caption_words(r) == 0 for r in records),
    }


def run(config: CardConfig, reporter: Reporter | None = None) -> StageResult:
    """Write the dataset card under ``config.out``: counts, plots, gallery, provenance.

    An unusable image, line or info file is one problem (the card goes on without it); StageError (exit status 2)
    when the dataset folder has no records.jsonl."""
    problems = Problems(reporter)
    pages = Pages.open("report", config.dataset, config.out, problems)
    dataset, out, records, bad_lines = pages.dataset, pages.out, pages.records, pages.bad_lines
    summary = card_summary(records)
    plots = _plots(records, out)
    gallery = _gallery(records, out, pages.thumbs)
    infos = {
        name: read_json_file(dataset / name, problems) for name in ("build_info.json", "curate_info.json")
    }
    summary["provenance"] = provenance("report", config=config, packages=PACKAGES)
    summary["dataset"] = str(dataset.resolve())
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode())
    index = out / "index.html"
    write_text(
        index,
        page(
            f"mmskin dataset card: {dataset.name}",
            _card_body(config, summary, plots, gallery, infos, bad_lines),
        ),
    )
    counts = {
        "records": summary["records"],
        "plots": len(plots),
        "lines_skipped": bad_lines,
        "errors": len(problems),
    }
    return StageResult(
        "report", counts, problems, f"report: {index} ({len(problems)} errors)", {"index": index}
    )


def _card_body(
    config: CardConfig,
    summary: dict[str, Any],
    plots: list[tuple[str, str]],
    pages: dict[str, int],
    infos: dict[str, Any],
    bad_lines: int,
) -> str:
    """The card page's HTML body: gallery links, count tables, plots, provenance."""
    dataset, out = Path(config.dataset or "."), Path(config.out or ".")
    gallery_links = "".join(
        f'<li><a href="gallery/{esc(_gallery_name(c, 0))}">{esc(c)}</a> '
        f"({summary['modality'].get(c, 0)} records, {pages[c]} page{'s' if pages[c] > 1 else ''})</li>"
        for c in CLASSES
        if c in pages
    )
    tables = (
        count_table("modality", summary["modality"].items(), summary["records"])
        + count_table("book (source.file)", summary["book"].items())
        + count_table("flag", [*summary["flag"].items(), ("(no flag)", summary["unflagged"])])
        + count_table("split", summary["split"].items())
        + count_table("sex", summary["sex"].items())
        + count_table("age group", summary["age_group"].items())
    )
    plot_html = "".join(
        f'<img class="plot" src="{esc(p)}" alt="{esc(t)}" title="{esc(t)}">' for p, t in plots
    )
    curated = "yes" if infos["curate_info.json"] is not None else "no (run <code>mmskin curate</code>)"

    def shown(value: Any) -> str:
        return esc(json.dumps(value, indent=1, sort_keys=True)) if value is not None else "absent"

    prov = (
        f"<p>Dataset: <code>{esc(dataset.resolve())}</code>. Curated: {curated}. "
        f"Lines skipped as unreadable: {bad_lines}.</p>"
        f"<h3>provenance</h3><pre>{shown(summary['provenance'])}</pre>"
        + "".join(f"<h3>{name}</h3><pre>{shown(info)}</pre>" for name, info in infos.items())
        + f"<p>Command: <code>{esc(' '.join(['mmskin', 'report', str(dataset), '--out', str(out)]))}</code></p>"
    )
    return (
        f"<p>{summary['records']} records from {len(summary['book'])} book(s); "
        f"{summary['age_stated']} with a stated age; mean caption length {summary['caption_words_mean']} words.</p>"
        f"<h2>Gallery</h2><ul>{gallery_links or '<li>no records</li>'}</ul>"
        f"<h2>Counts</h2>{tables}<h2>Plots</h2>{plot_html}<h2>Provenance</h2>{prov}"
    )


class _CallbackReporter(Reporter):
    """Hands each problem, as one ``WHERE: REASON`` line, to a callback."""

    def __init__(self, on_error: Callable[[str], None]) -> None:
        self.on_error = on_error

    def problem(self, p: Problem) -> None:
        self.on_error(str(p))


def write_dataset_card(dataset: Path, out: Path, on_error: Callable[[str], None] | None = None) -> Path:
    """Write the dataset card under ``out``; returns ``out/index.html``. Each problem goes to ``on_error`` as one
    ``WHERE: REASON`` line (default: ``error: WHERE: REASON`` on stderr). A thin call of :func:`run`."""
    from ..console import ConsoleReporter

    reporter = _CallbackReporter(on_error) if on_error is not None else ConsoleReporter(quiet=True)
    return run(CardConfig(dataset=Path(dataset), out=Path(out)), reporter).extra["index"]
