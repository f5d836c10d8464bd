"""Static HTML report of evaluation results: tables per modality and dataset, bar plots with 95% intervals.

    mmskin report results/vqa_skinvl.json results/vqa_llavamed.json results/zs_ham10000.json --out report/

Reads any mix of ``mmskin eval vqa`` results (``overall`` / ``by_modality``) and ``eval zeroshot`` / ``eval probe``
results (``task``, ``benchmark``, ``model``, ``metrics``, ``ci95``, ``confusion``), with the provenance block of
today's files or the ``mmskin_version``/``compat`` keys of older ones. A file that is not readable JSON of either
kind is a problem naming it, and is listed in the report; the others are rendered. Writes ``OUT/index.html`` and
one PNG per plot (matplotlib, Agg backend), each file atomically.

    >>> from pathlib import Path
    >>> from mmskin.evaluate.report import ResultsReportConfig, run
    >>> run(ResultsReportConfig([Path("results/vqa.json")], Path("report"))).extra["index"]   # doctest: +SKIP
    PosixPath('report/index.html')
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import ConfigError, option
from ..records import atomic_write_bytes
from ..stage import Problem, Problems, Reporter, StageResult
from .metrics import KEYS

VQA_KEYS = KEYS  # the results contract, one definition
VQA_PLOT_KEYS = ("bleu1", "bleu4", "meteor", "rougeL", "bertscore_f1", "recall")
CLS_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "auroc",
    "auprc",
    "ece",
)
CLS_PLOT_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")


@dataclass
class Run:
    path: Path
    kind: str  # "vqa" | "zeroshot" | "probe"
    label: str  # model name
    dataset: str
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _ci(v: Any) -> tuple[float, float] | None:
    if isinstance(v, list | tuple) and len(v) == 2 and all(_num(x) is not None for x in v):
        return float(v[0]), float(v[1])
    return None


def load_run(path: Path) -> Run:
    """One results file as a :class:`Run`; ValueError with a one-line reason when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    prov = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    if isinstance(data.get("overall"), dict) and isinstance(data.get("by_modality", {}), dict):
        if _num(data["overall"].get("n")) is None:
            raise ValueError("VQA results without overall.n")
        model = (
            data.get("model") or prov.get("model") or _input_name(prov, ("predictions",)) or Path(path).stem
        )
        dataset = data.get("dataset") or _input_name(prov, ("data", "predictions")) or "VQA"
        return Run(Path(path), "vqa", str(model), str(dataset), data)
    task = data.get("task")
    if task in ("zeroshot", "probe") and isinstance(data.get("metrics"), dict):
        model = data.get("model") or Path(path).stem
        if isinstance(model, dict):
            model = model.get("name") or Path(path).stem
        return Run(Path(path), str(task), str(model), str(data.get("benchmark") or "?"), data)
    raise ValueError(
        "unknown results format (expected eval vqa's overall/by_modality or a zeroshot/probe task with metrics)"
    )


def _input_name(prov: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    inputs = prov.get("inputs")
    if isinstance(inputs, dict):
        for key in keys:
            item = inputs.get(key)
            if isinstance(item, dict) and item.get("path"):
                return Path(str(item["path"])).name
    return None


def _fmt(v: float | None, ci: tuple[float, float] | None = None) -> str:
    if v is None:
        return '<td class="na">—</td>'
    cell = f"{v:.4f}"
    if ci:
        cell += f'<br><span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>'
    return f"<td>{cell}</td>"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "plot"


def _save_png(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _bar_plot(
    title: str,
    groups: list[str],
    series: list[tuple[str, list[float | None], list[tuple[float, float] | None]]],
    path: Path,
    ylabel: str = "score",
) -> None:
    """Grouped bars (one group per x label, one bar per series) with interval error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n_series = max(len(series), 1)
    width = 0.8 / n_series
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) * max(1, n_series) ** 0.5 + 2), 3.4))
    for k, (name, vals, cis) in enumerate(series):
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        lo = np.array([0.0 if (c is None or a is None) else max(a - c[0], 0.0) for a, c in zip(vals, cis)])
        hi = np.array([0.0 if (c is None or a is None) else max(c[1] - a, 0.0) for a, c in zip(vals, cis)])
        ax.bar(x + (k - (n_series - 1) / 2) * width, v, width, yerr=[lo, hi], capsize=2, label=name)
    ax.set_xticks(x, groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    _save_png(fig, path)
    plt.close(fig)


def _vqa_section(runs: list[Run], out: Path) -> list[str]:
    parts = ["<h2>Open VQA</h2>"]
    datasets = sorted({r.dataset for r in runs})
    for ds in datasets:
        drs = [r for r in runs if r.dataset == ds]
        parts.append(f"<h3>Dataset: {html.escape(ds)}</h3>")
        modalities = ["overall"] + sorted({m for r in drs for m in (r.data.get("by_modality") or {})})
        keys = [k for k in VQA_KEYS if any(_num(r.data["overall"].get(k)) is not None for r in drs)]
        for mod in modalities:
            parts.append(f"<h4>{html.escape(mod)}</h4><table><tr><th>model</th><th>n</th>")
            parts.append("".join(f"<th>{k}</th>" for k in keys) + "</tr>")
            for r in drs:
                scores = r.data["overall"] if mod == "overall" else (r.data.get("by_modality") or {}).get(mod)
                if not isinstance(scores, dict):
                    continue
                ci_all = r.data.get("ci95") or {}
                ci = (
                    ci_all.get("overall", {})
                    if mod == "overall"
                    else (ci_all.get("by_modality") or {}).get(mod, {})
                )
                ci = ci if isinstance(ci, dict) else {}
                n = _num(scores.get("n"))
                parts.append(f"<tr><td>{html.escape(r.label)}</td><td>{'' if n is None else int(n)}</td>")
                parts.append("".join(_fmt(_num(scores.get(k)), _ci(ci.get(k))) for k in keys) + "</tr>")
            parts.append("</table>")
        # one plot per dataset: bars per modality for each model, a panel per headline metric
        for key in [k for k in VQA_PLOT_KEYS if k in keys]:
            series = []
            for r in drs:
                vals, cis = [], []
                ci_all = r.data.get("ci95") or {}
                for mod in modalities:
                    sc = (
                        r.data["overall"]
                        if mod == "overall"
                        else (r.data.get("by_modality") or {}).get(mod, {})
                    )
                    ci = (
                        ci_all.get("overall", {})
                        if mod == "overall"
                        else (ci_all.get("by_modality") or {}).get(mod, {})
                    )
                    vals.append(_num((sc or {}).get(key)))
                    cis.append(_ci((ci or {}).get(key)) if isinstance(ci, dict) else None)
                series.append((r.label, vals, cis))
            png = f"vqa_{_slug(ds)}_{key}.png"
            _bar_plot(f"{ds}: {key} by modality (95% CI)", modalities, series, out / png)
            parts.append(f'<img src="{png}" alt="{html.escape(ds)} {key}">')
        parts.append(_signatures(drs))
    return parts


def _signatures(runs: list[Run]) -> str:
    rows = []
    for r in runs:
        prov = r.data.get("provenance") if isinstance(r.data.get("provenance"), dict) else {}
        sig = r.data.get("signature")
        sig_txt = ""
        if isinstance(sig, dict):
            uniq: dict[str, list[str]] = {}
            for k, s in sig.items():
                uniq.setdefault(str(s), []).append(str(k))
            sig_txt = "<br>".join(
                f"{html.escape(', '.join(ks))}: <code>{html.escape(s)}</code>" for s, ks in uniq.items()
            )
        elif sig is not None:
            sig_txt = f"<code>{html.escape(json.dumps(sig, ensure_ascii=False))}</code>"
        meta = ", ".join(f"{k}={html.escape(str(v))}" for k, v in _provenance_summary(prov).items())
        rows.append(
            f"<tr><td>{html.escape(r.label)}</td><td>{html.escape(r.path.name)}</td><td>{meta}</td>"
            f"<td>{sig_txt}</td></tr>"
        )
    return (
        "<details><summary>signatures and provenance</summary><table><tr><th>model</th><th>file</th>"
        "<th>provenance</th><th>signature</th></tr>" + "".join(rows) + "</table></details>"
    )


def _provenance_summary(prov: dict[str, Any]) -> dict[str, Any]:
    """compat, seed and mmskin version from the provenance block, or from an older file's own keys."""
    config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
    found = {
        "compat": config.get("compat", prov.get("compat")),
        "seed": prov.get("seed"),
        "mmskin": prov.get("mmskin", prov.get("mmskin_version")),
    }
    return {k: v for k, v in found.items() if v is not None}


def _cls_section(runs: list[Run], out: Path) -> list[str]:
    parts: list[str] = []
    for task, title in (
        ("probe", "Linear probe (the paper's SFT)"),
        ("zeroshot", "Zero-shot classification"),
    ):
        trs = [r for r in runs if r.kind == task]
        if not trs:
            continue
        parts.append(f"<h2>{title}</h2>")
        keys = [k for k in CLS_KEYS if any(_num(r.data["metrics"].get(k)) is not None for r in trs)]
        parts.append("<table><tr><th>benchmark</th><th>model</th><th>n</th>")
        parts.append("".join(f"<th>{k}</th>" for k in keys) + "</tr>")
        for r in sorted(trs, key=lambda r: (r.dataset, r.label)):
            ci = r.data.get("ci95") if isinstance(r.data.get("ci95"), dict) else {}
            n = _num(r.data.get("n"))
            parts.append(
                f"<tr><td>{html.escape(r.dataset)}</td><td>{html.escape(r.label)}</td>"
                f"<td>{'' if n is None else int(n)}</td>"
            )
            parts.append(
                "".join(_fmt(_num(r.data["metrics"].get(k)), _ci(ci.get(k))) for k in keys) + "</tr>"
            )
        parts.append("</table>")
        benchmarks = sorted({r.dataset for r in trs})
        plot_keys = [k for k in CLS_PLOT_KEYS if k in keys]
        for key in plot_keys:
            models = sorted({r.label for r in trs})
            series = []
            for m in models:
                vals, cis = [], []
                for b in benchmarks:
                    hit = next((r for r in trs if r.label == m and r.dataset == b), None)
                    ci = (hit.data.get("ci95") or {}) if hit else {}
                    vals.append(_num(hit.data["metrics"].get(key)) if hit else None)
                    cis.append(_ci(ci.get(key)) if isinstance(ci, dict) else None)
                series.append((m, vals, cis))
            png = f"{task}_{key}.png"
            _bar_plot(f"{title}: {key} (95% CI)", benchmarks, series, out / png)
            parts.append(f'<img src="{png}" alt="{task} {key}">')
        for r in trs:
            parts.append(_confusion(r))
        parts.append(_signatures(trs))
    return parts


def _confusion(r: Run) -> str:
    conf = r.data.get("confusion")
    if not isinstance(conf, dict):
        return ""
    labels, matrix = conf.get("labels"), conf.get("matrix")
    if not (isinstance(labels, list) and isinstance(matrix, list) and len(matrix) == len(labels)):
        return ""
    head = "".join(f"<th>{html.escape(str(x))}</th>" for x in labels)
    body = "".join(
        f"<tr><th>{html.escape(str(lab))}</th>"
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for lab, row in zip(labels, matrix)
        if isinstance(row, list)
    )
    return (
        f"<details><summary>confusion: {html.escape(r.label)} on {html.escape(r.dataset)} "
        f"(rows true, columns predicted)</summary><table><tr><th></th>{head}</tr>{body}</table></details>"
    )


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;
margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;text-align:right}
th:first-child,td:first-child{text-align:left}.ci{color:#777;font-size:11px}.na{color:#aaa}img{max-width:48%;
margin:4px}code{font-size:11px}.err{color:#a00}"""


@dataclass
class ResultsReportConfig:
    """Settings of ``mmskin report RESULTS.json… --out DIR``."""

    inputs: list[Path] = option([], "results files of mmskin eval (vqa, zeroshot, probe)", cli=False)
    out: Path | None = option(None, "folder for index.html and the plots", required=True)


def run(config: ResultsReportConfig, reporter: Reporter | None = None) -> StageResult:
    """Render the results files into ``out/index.html`` (+ PNG plots); a file that cannot be read is a problem
    and is named in the page. ``extra["index"]`` is the page's path."""
    if config.out is None:
        raise ConfigError("--out DIR is required")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = Problems(reporter)
    runs: list[Run] = []
    for p in config.inputs:
        try:
            runs.append(load_run(Path(p)))
        except ValueError as e:
            problems.add(p, str(e))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>mmskin results</title><style>{CSS}</style>",
        f"</head><body><h1>mmskin results</h1><p>{len(runs)} results file(s); mmskin {__version__}. "
        "Values are fractions in [0, 1]; brackets hold 95% bootstrap intervals.</p>",
    ]
    vqa = [r for r in runs if r.kind == "vqa"]
    if vqa:
        parts += _vqa_section(vqa, out)
    parts += _cls_section(runs, out)
    if problems:
        parts.append("<h2>Files not rendered</h2><ul>")
        parts += [f'<li class="err">{html.escape(str(e))}</li>' for e in problems]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    index = out / "index.html"
    atomic_write_bytes(index, "\n".join(parts).encode("utf-8"))
    counts = {"files": len(config.inputs), "rendered": len(runs)}
    summary = f"report: {index} ({len(problems)} errors)"
    return StageResult("report results", counts, problems, summary, {"index": index})


class _Callback(Reporter):
    def __init__(self, on_error: Callable[[str], None]) -> None:
        self.on_error = on_error

    def problem(self, p: Problem) -> None:
        self.on_error(str(p))


def write_results_report(paths: list[Path], out: Path, on_error: Callable[[str], None] | None = None) -> Path:
    """:func:`run` for callers of the older signature: returns the index path; each file that cannot be read is
    passed to ``on_error`` as ``"PATH: reason"``."""
    reporter = _Callback(on_error) if on_error is not None else None
    return run(ResultsReportConfig(list(paths), Path(out)), reporter).extra["index"]
