"""MM-Skin's own functions, taken from the verbatim copies of its scripts, for equality checks (never for results).

MM-Skin's scripts (``../shared/data/mmskin/reference``: VQA_test.py, ZS_classification.py, SFT_classification.py,
llava_conversation.py) import a ``llava`` fork, torch, seaborn and helpers that are not published, so they cannot
be imported. Their pure functions can still be run as written: this module parses a script with :mod:`ast`, takes
the named top-level functions (or, for the zero-shot answer parse, the statements of the loop that does it) and
executes exactly that source with the few names they use (nltk, rouge, pandas, scikit-learn, a seeded ``random``).
The tests and ``benchmarks/evaluate/eval_compat.py`` compare mmskin's compat code with what these return.

    >>> ref = ReferenceScripts(Path("../shared/data/mmskin/reference"))
    >>> ref.vqa()["calculate_bleu"](["a red papule"], ["a red scaly papule"])["bleu-3"]
    >>> ref.zeroshot_parse()("It is melanoma.", ["Nevus", "Melanoma"])       # ('Melanoma', 'It is melanoma.')
    >>> ref.conversation().conv_templates["mistral_instruct"]

Executing the scripts' code is safe only because they are the verbatim files named in ``SOURCE.md``; point this at
nothing else.
"""

from __future__ import annotations

import ast
import importlib.util
import random
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

VQA_FUNCTIONS = (
    "calculate_bleu",
    "calculate_rouge",
    "calculate_meteor",
    "calculate_recall",
    "get_modality_from_image",
)
# mmskin's metric keys -> VQA_test.py's names (its evaluation_metrics.csv columns after the modality prefix)
VQA_KEYS = {
    "bleu1": "bleu-1",
    "bleu2": "bleu-2",
    "bleu3": "bleu-3",
    "bleu4": "bleu-4",
    "meteor": "meteor",
    "rouge1": "rouge-1",
    "rouge2": "rouge-2",
    "rougeL": "rouge-l",
    "recall": "recall",
}


class ReferenceMissing(FileNotFoundError):
    """The reference scripts are not there (``../shared/data`` absent): callers skip."""


def _functions(tree: ast.Module, names: tuple[str, ...], where: Path) -> list[ast.stmt]:
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{where}: no top-level function {', '.join(missing)}")
    return [found[n] for n in names]


def _run(nodes: list[ast.stmt], where: Path, namespace: dict[str, Any]) -> dict[str, Any]:
    code = compile(ast.fix_missing_locations(ast.Module(body=nodes, type_ignores=[])), str(where), "exec")
    exec(code, namespace)  # noqa: S102 - the verbatim reference scripts, for equality checks only
    return namespace


def _assigns(stmt: ast.stmt, name: str) -> bool:
    return isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    )


class ReferenceScripts:
    """The reference folder; each accessor parses its script once."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / "VQA_test.py").is_file():
            raise ReferenceMissing(f"{self.folder}: MM-Skin's reference scripts are not there")

    def _tree(self, script: str) -> tuple[ast.Module, Path]:
        path = self.folder / script
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), path

    def vqa(self) -> dict[str, Any]:
        """VQA_test.py's metric functions and its modality lookup, as written (nltk, rouge, pandas)."""
        import nltk
        import nltk.translate.meteor_score  # noqa: F401 - the script reaches it as nltk.translate.meteor_score
        import pandas as pd
        from nltk.translate.bleu_score import corpus_bleu
        from rouge import Rouge

        tree, path = self._tree("VQA_test.py")
        ns = {"corpus_bleu": corpus_bleu, "Rouge": Rouge, "nltk": nltk, "pd": pd}
        return _run(_functions(tree, VQA_FUNCTIONS, path), path, ns)

    def vqa_metrics(
        self, predictions: list[str], ground_truths: list[str], functions: dict | None = None
    ) -> dict:
        """VQA_test.py's per-modality block on one group of pairs, keyed as mmskin (:data:`VQA_KEYS`); BERTScore
        left out (its scorer is not published)."""
        fns = functions or self.vqa()
        rouge = fns["calculate_rouge"](predictions, ground_truths)
        raw = {
            **fns["calculate_bleu"](predictions, ground_truths),
            "meteor": fns["calculate_meteor"](predictions, ground_truths),
            "recall": fns["calculate_recall"](predictions, ground_truths),
            **{k: rouge[k]["f"] for k in ("rouge-1", "rouge-2", "rouge-l")},
        }
        return {ours: raw[theirs] for ours, theirs in VQA_KEYS.items()}

    def zeroshot_parse(self):
        """``parse(answer, classes) -> (class or None, answer after the script's replace)``: the statements of
        ZS_classification.py's loop from ``predicted_diagnosis = None`` to the end of its ``for disease`` loop."""
        tree, path = self._tree("ZS_classification.py")
        (fn,) = _functions(tree, ("eval_model",), path)
        loop = next(
            n
            for n in ast.walk(fn)
            if isinstance(n, ast.For) and any(_assigns(s, "predicted_diagnosis") for s in n.body)
        )
        start = next(i for i, s in enumerate(loop.body) if _assigns(s, "predicted_diagnosis"))
        end = next(
            i
            for i, s in enumerate(loop.body)
            if isinstance(s, ast.For) and isinstance(s.target, ast.Name) and s.target.id == "disease"
        )
        ret = ast.parse("return predicted_diagnosis, predicted_answer").body
        args = ast.arguments(
            posonlyargs=[],
            args=[ast.arg("predicted_answer"), ast.arg("possible_diseases")],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        )
        wrapper = ast.FunctionDef(
            name="parse", args=args, body=loop.body[start : end + 1] + ret, decorator_list=[], type_params=[]
        )
        return _run([wrapper], path, {})["parse"]

    def zeroshot_question(self, classes: list[str]) -> str:
        """The question ZS_classification.py asks (its f-string, evaluated with ``possible_diseases=classes``)."""
        tree, path = self._tree("ZS_classification.py")
        (fn,) = _functions(tree, ("eval_model",), path)
        node = next(n for n in ast.walk(fn) if _assigns(n, "question") and isinstance(n.value, ast.JoinedStr))
        expr = compile(ast.Expression(node.value), str(path), "eval")
        return eval(expr, {}, {"possible_diseases": list(classes)})  # noqa: S307 - the script's own f-string

    def process_categories(self, seed: int):
        """ZS_classification.py's ground-truth pick with its ``random`` replaced by ``random.Random(seed)``."""
        tree, path = self._tree("ZS_classification.py")
        return _run(_functions(tree, ("process_categories",), path), path, {"random": random.Random(seed)})[
            "process_categories"
        ]

    def experiment_targets(self, script: str = "ZS_classification.py") -> dict[str, dict[str, int]]:
        """``{experiment: targets}`` of the script's ``get_experiment_setting`` (ZS_ or SFT_classification.py)."""
        tree, path = self._tree(script)
        (fn,) = _functions(tree, ("get_experiment_setting",), path)
        names = [
            c.comparators[0].value
            for c in ast.walk(fn)
            if isinstance(c, ast.Compare) and isinstance(c.comparators[0], ast.Constant)
        ]
        get = _run(
            [fn], path, {"PATH_DATAFRAME_TRANSFERABILITY_CLASSIFICATION": "", "print": lambda *a: None}
        )
        return {e: get["get_experiment_setting"](e)["targets"] for e in names}

    def probe_fit(self):
        """SFT_classification.py's ``fit_model`` and ``pool_features`` as written; its unpublished
        ``binary_metrics``/``prob_metrics`` are stand-ins that return the rounded predictions and probabilities, and
        its grid search runs in one process (``n_jobs``, ``verbose`` dropped)."""
        import numpy as np
        from sklearn.base import clone
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        tree, path = self._tree("SFT_classification.py")
        ns = {
            "np": np,
            "Pipeline": Pipeline,
            "StandardScaler": StandardScaler,
            "LogisticRegression": LogisticRegression,
            "RandomForestClassifier": RandomForestClassifier,
            # n_jobs and verbose change no number: one process, no progress lines
            "GridSearchCV": lambda *a, n_jobs=None, verbose=0, **k: GridSearchCV(*a, **k),
            "StratifiedKFold": StratifiedKFold,
            "clone": clone,
            "print": lambda *a, **k: None,
            "binary_metrics": lambda y, p, label_set=None, return_arrays=False: {"preds_rounded": p},
            "prob_metrics": lambda y, p, label_set=None, return_arrays=False: {"preds": p, "targets": y},
        }
        return _run(_functions(tree, ("pool_features", "fit_model"), path), path, ns)["fit_model"]

    def conversation(self) -> ModuleType:
        """llava_conversation.py imported as it is (it needs only the standard library and PIL)."""
        path = self.folder / "llava_conversation.py"
        spec = importlib.util.spec_from_file_location("mmskin_reference_llava_conversation", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    @cached_property
    def expand2square(self):
        """llava_conversation.py's ``expand2square`` (nested in ``Conversation.process_image``), as written."""
        tree, path = self._tree("llava_conversation.py")
        fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "expand2square")
        from PIL import Image

        return _run([fn], path, {"Image": Image})["expand2square"]


ANSWER_TEMPLATES = (
    "{a}",
    "The diagnosis is {a}.",
    "Based on the image, the most likely diagnosis is {a}.",
    "This appears to be {a}, although {b} cannot be excluded.",
    "{a} or {b}",
    "The lesion shows features consistent with {a}; another possibility is {b}.",
    "Diagnosis: {A}",
    "It is difficult to determine; the differential includes {a}, {b} and {c}.",
    "I cannot determine the diagnosis from this image.",
    "The image shows a skin lesion with scarring and irregular pigmentation.",
    "From the following categories: {all}, the answer is {a}.",
    "{a}s are common; this one is {b}.",
    "Actinic keratosis",
    "The lesion is an actinic keratosis.",
    "Findings suggest Actinic Keratosis with {b}.",
)


def fake_zeroshot_answers(classes: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` seeded answers that look like a VLM's zero-shot outputs over ``classes``: a class named plainly, in
    lower or upper case, next to a second or third class, inside longer words, the class list echoed, none at all."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, c = (rng.choice(classes) for _ in range(3))
        case = rng.choice((str, str.lower, str.upper, str.title))
        t = rng.choice(ANSWER_TEMPLATES)
        out.append(t.format(a=case(a), b=case(b), c=c.lower(), A=a.upper(), all=", ".join(classes)))
    return out
