"""Review contact sheets: one page per class, review-flagged first, captions escaped, thumbnails self-contained,
corrections.csv template, bad image paths reported and skipped."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mmskin.cli import demo_pdf, main
from mmskin.curate.review import ReviewConfig, run
from mmskin.records import write_jsonl

EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("ds")
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    assert len(recs) >= 8
    # curate fields filled by hand (test setup): a spread of classes, scores and review flags
    plan = [
        ("clinical", 0.95, []),
        ("clinical", 0.55, ["review"]),
        ("dermoscopy", 0.6, ["review", "annotated"]),
        ("pathology", 0.99, []),
        ("pathology", 0.51, ["review"]),
        ("other", 0.9, ["non_dermatology"]),
    ]
    for rec, (mod, score, flags) in zip(recs, plan):
        rec.update(modality=mod, modality_score=score, flags=flags)
    recs[1]["caption"] = EVIL
    # a record whose image path escapes the dataset root, and one whose image file is not an image
    recs[-1]["image"] = "../../etc/passwd"
    bad = ds / "images" / "broken.png"
    bad.write_bytes(b"not a png")
    recs[-2]["image"] = "images/broken.png"
    write_jsonl(ds / "records.jsonl", recs)
    return ds


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.imgs.append(dict(attrs)["src"] or "")
        if tag == "script":
            self.scripts += 1


def test_write_review(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "review"
    result = run(ReviewConfig(dataset=dataset, out=out))
    assert result.extra["index"] == out / "index.html" and result.summary == f"review: {out / 'index.html'}"
    # one problem per bad image, naming it; the rest went on
    text = [str(p) for p in result.problems]
    assert len(text) == 2 and result.exit_code == 1 and result.counts["errors"] == 2
    assert any("escapes the dataset root" in t for t in text) and any("broken.png" in t for t in text)
    for cls in ("clinical", "dermoscopy", "pathology", "other", "unclassified"):
        assert (out / f"{cls}.html").is_file()
    clinical = (out / "clinical.html").read_text()
    # review-flagged record first on its sheet, and the hostile caption escaped
    recs = [json.loads(line) for line in (dataset / "records.jsonl").read_text().splitlines()]
    first_card = clinical.index('class="card review"')
    assert first_card < clinical.index('class="card"')
    assert recs[1]["id"] in clinical[first_card : first_card + 400]
    assert "<script>alert" not in clinical and "&lt;script&gt;" in clinical
    # every page's images are local files that exist (self-contained), and no page has scripts
    for page in out.glob("*.html"):
        p = _Links()
        p.feed(page.read_text())
        assert p.scripts == 0
        for src in p.imgs:
            assert not src.startswith(("/", "http", "file:")) and (out / src).is_file(), src
    n_imgs = sum(
        len(_imgs(out / f"{c}.html"))
        for c in ("clinical", "dermoscopy", "pathology", "other", "unclassified")
    )
    assert n_imgs == len(recs) - 2  # the two bad images show a placeholder instead
    # thumbnails are small JPEGs
    thumbs = list((out / "thumbs").glob("*.jpg"))
    assert thumbs and all(t.read_bytes()[:2] == b"\xff\xd8" for t in thumbs)
    from PIL import Image

    assert all(max(Image.open(t).size) <= 224 for t in thumbs)
    # corrections template: review-flagged ids with their predicted modality
    rows = list(csv.DictReader((out / "corrections.csv").open()))
    assert [r["id"] for r in rows] == [recs[4]["id"], recs[1]["id"], recs[2]["id"]]  # least confident first
    assert {r["id"]: r["modality"] for r in rows} == {
        recs[1]["id"]: "clinical",
        recs[2]["id"]: "dermoscopy",
        recs[4]["id"]: "pathology",
    }


def _imgs(page: Path) -> list[str]:
    p = _Links()
    p.feed(page.read_text())
    return p.imgs


def test_review_paginates(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(ReviewConfig(dataset=dataset, out=out, per_page=1))
    assert (out / "clinical.html").is_file() and (out / "clinical-2.html").is_file()
    assert 'rel="next"' in (out / "clinical.html").read_text()
    assert 'rel="prev"' in (out / "clinical-2.html").read_text()


def test_review_skips_malformed_lines(tmp_path: Path, dataset: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    lines = (dataset / "records.jsonl").read_text().splitlines()
    (ds / "records.jsonl").write_text(lines[0] + "\n{not json\n[1, 2]\n")
    (ds / "images").symlink_to(dataset / "images")
    result = run(ReviewConfig(dataset=ds, out=tmp_path / "out"))
    where = {p.where: p.reason for p in result.problems}
    assert where[f"{ds / 'records.jsonl'}:2"].startswith("not JSON")
    assert where[f"{ds / 'records.jsonl'}:3"].startswith("not a record")
    assert (tmp_path / "out" / "corrections.csv").read_text() == "id,modality\n"
