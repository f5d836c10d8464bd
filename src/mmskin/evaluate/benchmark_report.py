"""The report of ``mmskin benchmark``: MM-Skin's tables, models side by side, as Markdown and static HTML.

Laid out like the paper: open VQA as one block per modality (rows: models; columns: BLEU-1..4, METEOR, ROUGE-1/2/L,
BERTScore P/R/F1, recall), zero-shot and linear-probe classification as one table per metric (rows: models;
columns: datasets). Every cell is a percentage with its bootstrap 95 % interval; every number's signature (the
metric's recipe, the parse or probe protocol, the model's decoding and prompt) is listed under its table (and is
the cell's tooltip in HTML). Skipped, failed and unconfigured datasets are listed with their reason.

    md, html = write_report(Path("bench"), json.loads(Path("bench/benchmark.json").read_text()))
"""

from __future__ import annotations

import html as html_lib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import atomic_write_bytes

LABELS = {
    "bleu1": "BLEU-1",
    "bleu2": "BLEU-2",
    "bleu3": "BLEU-3",
    "bleu4": "BLEU-4",
    "meteor": "METEOR",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bertscore_p": "BERTScore P",
    "bertscore_r": "BERTScore R",
    "bertscore_f1": "BERTScore F1",
    "recall": "Recall",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro F1",
    "auroc": "AUROC",
}


@dataclass
class Cell:
    text: str
    signature: str = ""


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)  # what it applies to -> signature


def cell(value: Any, ci: Any = None, signature: str = "") -> Cell:
    """A percentage with one or two decimals and its interval; an em dash when there is no number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return Cell("—", signature)
    text = f"{100 * value:.2f}"
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci):
        text += f" ({100 * ci[0]:.2f}–{100 * ci[1]:.2f})"
    return Cell(text, signature)


def _load(out: Path, rec: dict[str, Any]) -> dict[str, Any] | None:
    if rec.get("status") not in ("done", "cached"):
        return None
    try:
        return json.loads((out / rec["results"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _model_note(res: dict[str, Any]) -> str:
    """The model side of a signature: decoding, prompt and image handling, from the results' provenance."""
    model = (res.get("provenance") or {}).get("model") or {}
    if not isinstance(model, dict):
        return ""
    bits = [f"{k}:{model[k]}" for k in ("decoding", "prompt", "image_aspect_ratio") if model.get(k)]
    return "|".join(bits)


def vqa_tables(spec: dict[str, Any], models: list[str], results: dict[tuple, dict]) -> list[Table]:
    """One block per modality (overall first, then the paper's modalities, then any other)."""
    runs = {m: results.get(("vqa", m)) for m in models}
    present = [r for r in runs.values() if r]
    if not present:
        return []
    keys = [k for k in spec["metrics"] if any(r["overall"].get(k) is not None for r in present)]
    seen = {g for r in present for g in r.get("by_modality", {})}
    groups = (
        ["overall"] + [g for g in spec["modalities"] if g in seen] + sorted(seen - set(spec["modalities"]))
    )
    tables = []
    for g in groups:
        t = Table(f"Open VQA, {g}", ["model", "n"] + [LABELS.get(k, k) for k in keys])
        for m in models:
            r = runs[m]
            if not r:
                t.rows.append([Cell(m), Cell("—")] + [Cell("—") for _ in keys])
                continue
            scores = r["overall"] if g == "overall" else r.get("by_modality", {}).get(g, {})
            ci = (
                r.get("ci95", {}).get("overall", {})
                if g == "overall"
                else r.get("ci95", {}).get("by_modality", {}).get(g, {})
            )
            note = _model_note(r)
            sig = r.get("signature", {})
            t.rows.append(
                [Cell(m, note), Cell(str(scores.get("n", "—")))]
                + [
                    cell(scores.get(k), ci.get(k), "|".join(x for x in (sig.get(k, ""), note) if x))
                    for k in keys
                ]
            )
        if g == "overall":  # the metrics' recipes (the same for every model), then each model's decoding
            for k in keys:
                t.signatures[LABELS.get(k, k)] = next(
                    r["signature"][k] for r in present if k in r["signature"]
                )
            t.signatures.update({f"model {m}": _model_note(runs[m]) for m in models if runs[m]})
        tables.append(t)
    return tables


def _cls_value(kind: str, res: dict[str, Any], metric: str, parse: str) -> tuple[Any, Any, str]:
    block = res.get("mmskin_parse", {}) if parse == "mmskin" else res
    sig = res.get("signature", {}).get("mmskin_parse" if parse == "mmskin" else "metrics", "")
    note = _model_note(res)
    return (
        block.get("metrics", {}).get(metric),
        block.get("ci95", {}).get(metric),
        "|".join(x for x in (sig, note) if x),
    )


def cls_tables(
    kind: str, spec: dict[str, Any], models: list[str], datasets: list[str], results: dict
) -> list[Table]:
    """One table per metric: rows models (zero-shot: MM-Skin's parse, then ours), columns datasets."""
    if not any(results.get((kind, m, d)) for m in models for d in datasets):
        return []
    parses = [("mmskin", ""), ("ours", " (longest match)")] if kind == "zeroshot" else [("", "")]
    tables = []
    for metric in spec["metrics"]:
        t = Table(
            f"{'Zero-shot' if kind == 'zeroshot' else 'Linear probe'}: {LABELS.get(metric, metric)}",
            ["model", *datasets],
        )
        for m in models:
            for parse, suffix in parses:
                row = [Cell(m + suffix)]
                for d in datasets:
                    res = results.get((kind, m, d))
                    if res is None:
                        row.append(Cell("—"))
                        continue
                    value, ci, sig = _cls_value(kind, res, metric, parse)
                    row.append(cell(value, ci, sig))
                    if not tables:  # every metric of a dataset shares its signature: listed once
                        t.signatures[f"{d} · {m}{suffix} (n={res.get('n')})"] = sig
                t.rows.append(row)
        tables.append(t)
    return tables


def build_tables(out: Path, info: dict[str, Any]) -> list[tuple[str, list[Table]]]:
    """The report's sections: (title, tables) per task, from the records and their results files."""
    from .benchmark import definition

    spec = definition()
    models = [m["name"] for m in info["models"]]
    results: dict[tuple, dict] = {}
    order: dict[str, list[str]] = {
        "zeroshot": list(spec["zeroshot"]["datasets"]),
        "probe": list(spec["probe"]["datasets"]),
    }
    for rec in info["tasks"]:
        kind, dataset = rec["kind"], rec["dataset"]
        if kind != "vqa" and dataset not in order[kind]:
            order[kind].append(dataset)
        res = _load(out, rec) if "model" in rec else None
        if res is not None:
            results[(kind, rec["model"]) if kind == "vqa" else (kind, rec["model"], dataset)] = res
    return [
        (spec["vqa"]["title"], vqa_tables(spec["vqa"], models, results)),
        (
            spec["zeroshot"]["title"],
            cls_tables("zeroshot", spec["zeroshot"], models, order["zeroshot"], results),
        ),
        (spec["probe"]["title"], cls_tables("probe", spec["probe"], models, order["probe"], results)),
    ]


def _status_lines(info: dict[str, Any]) -> list[str]:
    """One line per dataset not run (skipped, failed, not configured, not requested), naming the models."""
    grouped: dict[tuple, list[str]] = {}
    for r in info["tasks"]:
        if r["status"] not in ("done", "cached"):
            grouped.setdefault((r["status"], r["kind"], r["dataset"], r.get("reason", "")), []).append(
                r.get("model")
            )
    lines = []
    for (status, kind, dataset, reason), models in grouped.items():
        who = [m for m in models if m]
        names = (
            ""
            if not who
            else " (all models)"
            if len(who) == len(info["models"]) > 1
            else f" ({', '.join(who)})"
        )
        lines.append(f"{status}: {kind} {dataset}{names}" + (f": {reason}" if reason else ""))
    return lines


def to_markdown(info: dict[str, Any], sections: list[tuple[str, list[Table]]]) -> str:
    prov = info["provenance"]
    out = [
        f"# {info['benchmark']} benchmark: {', '.join(m['name'] for m in info['models'])}",
        "",
        f"mmskin {prov['mmskin']} · compat {prov['config']['compat']} · seed {prov['seed']} · config "
        f"`{prov['config_file']}` (sha256 {prov['config_sha256'][:12]}) · values in %, 95 % bootstrap intervals in "
        "brackets",
    ]
    for title, tables in sections:
        out += ["", f"## {title}"]
        if not tables:
            out += ["", "(no results)"]
        for t in tables:
            out += [
                "",
                f"### {t.title}",
                "",
                "| " + " | ".join(t.header) + " |",
                "|" + "---|" * len(t.header),
            ]
            out += ["| " + " | ".join(c.text for c in row) + " |" for row in t.rows]
            if t.signatures:
                out += ["", "Signatures:", ""] + [f"- {k}: `{v}`" for k, v in t.signatures.items()]
    status = _status_lines(info)
    if status:
        out += ["", "## Not run", ""] + [f"- {s}" for s in status]
    return "\n".join(out) + "\n"


CSS = (
    "body{font:14px system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:.5em 0 1em}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "th{background:#f3f3f3}code{font-size:12px}details{margin-bottom:1em}.na{color:#999}"
)


def to_html(info: dict[str, Any], sections: list[tuple[str, list[Table]]], markdown_name: str) -> str:
    esc = html_lib.escape
    prov = info["provenance"]
    title = f"{info['benchmark']} benchmark: {', '.join(m['name'] for m in info['models'])}"
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{esc(title)}</title><style>{CSS}</style><h1>{esc(title)}</h1>"
    ]
    parts.append(
        f"<p>mmskin {esc(prov['mmskin'])} · compat {esc(prov['config']['compat'])} · seed {prov['seed']} · values in %, "
        f"95 % bootstrap intervals in brackets · hover a number for its signature · <a href='{esc(markdown_name)}'>"
        "Markdown</a></p>"
    )
    for section, tables in sections:
        parts.append(f"<h2>{esc(section)}</h2>" + ("" if tables else "<p class=na>(no results)</p>"))
        for t in tables:
            parts.append(
                f"<h3>{esc(t.title)}</h3><table><tr>"
                + "".join(f"<th>{esc(h)}</th>" for h in t.header)
                + "</tr>"
            )
            for row in t.rows:
                cells = "".join(
                    f"<td title='{esc(c.signature, quote=True)}'{' class=na' if c.text == '—' else ''}>{esc(c.text)}</td>"
                    for c in row
                )
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
            if t.signatures:
                items = "".join(f"<li>{esc(k)}: <code>{esc(v)}</code></li>" for k, v in t.signatures.items())
                parts.append(f"<details><summary>signatures</summary><ul>{items}</ul></details>")
    status = _status_lines(info)
    if status:
        parts.append("<h2>Not run</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in status) + "</ul>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, info: dict[str, Any]) -> tuple[Path, Path]:
    """``OUT/report.md`` and ``OUT/report.html`` (atomically); returns their paths."""
    sections = build_tables(out, info)
    md, page = out / "report.md", out / "report.html"
    atomic_write_bytes(md, to_markdown(info, sections).encode("utf-8"))
    atomic_write_bytes(page, to_html(info, sections, md.name).encode("utf-8"))
    return md, page
