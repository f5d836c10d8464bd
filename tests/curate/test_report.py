"""Dataset card (``mmskin report DATASET --out DIR``): counts, plots, paged gallery, provenance; loaded in headless
Chromium (page loads, every image decodes, the screenshot is not blank). Chromium is started in its own process
group with a timeout and killed with its group in every case."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cdp_client import CHROMIUM, HEADLESS

from mmskin.cli import demo_pdf, main
from mmskin.curate.report import PER_PAGE, CardConfig, run, write_dataset_card
from mmskin.records import write_jsonl

EVIL = "<b>bold</b> & <script>document.title='pwned'</script>"


def build(tmp: Path) -> Path:
    assert main(["build", str(demo_pdf()), "--out", str(tmp), "--workers", "1", "--quiet"]) == 0
    return tmp


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = build(tmp_path_factory.mktemp("curated"))
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    # curate fields filled by hand (test setup), as `mmskin curate` would
    mods = ["clinical", "clinical", "clinical", "dermoscopy", "pathology", "pathology", "other"]
    for i, rec in enumerate(recs):
        rec.update(
            modality=mods[i % len(mods)], modality_score=0.5 + i / 40, split=("train", "val", "test")[i % 3]
        )
        rec["flags"] = ["review"] if i % 4 == 0 else []
    recs[0].update(age=45.0, age_group="adult", sex="female", demographics_evidence="45-year-old woman")
    recs[1].update(age=8.0, age_group="child", sex="male", demographics_evidence="8-year-old boy")
    recs[2]["caption"] = EVIL
    write_jsonl(ds / "records.jsonl", recs)
    (ds / "curate_info.json").write_text(json.dumps({"tool": "mmskin curate", "seed": 0}))
    return ds


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")


def parse(page: Path) -> _Page:
    p = _Page()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def test_card_on_curated_dataset(curated: Path, tmp_path: Path) -> None:
    out = tmp_path / "card"
    assert main(["report", str(curated), "--out", str(out)]) == 0
    index = out / "index.html"
    html = index.read_text()
    summary = json.loads((out / "summary.json").read_text())
    n = summary["records"]
    assert n == len((curated / "records.jsonl").read_text().splitlines())
    assert summary["modality"]["clinical"] == sum(1 for i in range(n) if i % 7 in (0, 1, 2))
    assert summary["flag"]["review"] == len(range(0, n, 4))
    assert summary["sex"] == {"female": 1, "male": 1, "unknown": n - 2}
    assert summary["age_stated"] == 2 and summary["book"] == {"sample_textbook.pdf": n}
    for plot in ("modality", "sex", "caption_length", "age"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "curate_info.json" in html and "mmskin curate" in html and "build_info.json" in html
    # every local link and image of every page exists on disk
    pages = [index, *sorted((out / "gallery").glob("*.html"))]
    assert len(pages) == 1 + 4
    for page in pages:
        p = parse(page)
        for ref in p.imgs + p.links:
            target = (page.parent / ref.split("#")[0]).resolve()
            assert target.is_file(), f"{page.name}: {ref}"
    gallery = (out / "gallery" / "clinical-1.html").read_text()
    assert "&lt;script&gt;" in gallery and "<script>document" not in gallery
    assert "45-year-old" not in gallery and "age 45" in gallery and "sex female" in gallery


def test_card_on_uncurated_dataset_and_paging(tmp_path: Path) -> None:
    ds = build(tmp_path / "raw")
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    # enough records for several gallery pages (same images, new ids)
    many = [dict(r, id=f"{r['id']}-{k}") for k in range(6) for r in recs]
    write_jsonl(ds / "records.jsonl", many)
    out = write_dataset_card(ds, tmp_path / "card").parent
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modality"] == {"unclassified": len(many)}
    assert summary["split"] == {"unknown": len(many)} and summary["sex"] == {"unknown": len(many)}
    n_pages = -(-len(many) // PER_PAGE)
    assert n_pages >= 2
    pages = sorted((out / "gallery").glob("unclassified-*.html"))
    assert len(pages) == n_pages
    assert sum(len(parse(p).imgs) for p in pages) == len(many)
    first, last = pages[0].read_text(), (out / "gallery" / f"unclassified-{n_pages}.html").read_text()
    assert 'href="unclassified-2.html" rel="next"' in first and "<span>prev</span>" in first
    assert 'rel="prev"' in last and "<span>next</span>" in last
    assert "curate_info.json</h3><pre>absent" in (out / "index.html").read_text()
    assert summary["provenance"]["stage"] == "report" and "matplotlib" in summary["provenance"]["packages"]


def test_card_reports_bad_images_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = build(tmp_path / "bad")
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    recs[0]["image"] = "../outside.png"
    (ds / "images" / "junk.png").write_bytes(b"\x89PNG broken")
    recs[1]["image"] = "images/junk.png"
    write_jsonl(ds / "records.jsonl", recs)
    with open(ds / "records.jsonl", "a") as f:
        f.write("{truncated\n")
    (ds / "build_info.json").write_text("{not json")
    index = write_dataset_card(ds, tmp_path / "card")
    err = capsys.readouterr().err
    assert "escapes the dataset root" in err and "junk.png" in err and "not JSON" in err
    assert "build_info.json: unreadable JSON" in err
    html = index.read_text()
    assert "Lines skipped as unreadable: 1" in html
    gallery = (index.parent / "gallery" / "unclassified-1.html").read_text()
    assert gallery.count("image unavailable") == 2
    assert len(parse(index.parent / "gallery" / "unclassified-1.html").imgs) == len(recs) - 2

    # the same as a stage run: every problem an item, the summary line the command prints
    result = run(CardConfig(dataset=ds, out=tmp_path / "card2"))
    assert result.exit_code == 1 and result.counts["errors"] == len(result.problems) == 4
    assert result.summary == f"report: {tmp_path / 'card2' / 'index.html'} (4 errors)"
    assert f"{ds / 'records.jsonl'}:{len(recs) + 1}" in [p.where for p in result.problems]


def _run_chromium(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium in a fresh profile and process group; the whole group is killed afterwards."""
    assert CHROMIUM
    profile = tempfile.mkdtemp(prefix="mmskin-chromium-")
    cmd = [
        CHROMIUM,
        *HEADLESS,
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {timeout} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # renderer/zygote children included
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_card_in_headless_chromium(curated: Path, tmp_path: Path) -> None:
    out = tmp_path / "card"
    index = write_dataset_card(curated, out)
    # a probe copy of each page, in the same folder so relative paths resolve, whose script writes into the DOM
    # how many images decoded (naturalWidth > 0) once everything has loaded
    probe_js = (
        "<script>window.addEventListener('load',()=>{const im=[...document.images];"
        "document.body.setAttribute('data-probe',im.length+'/'+im.filter(i=>i.complete&&i.naturalWidth>0).length)})"
        "</script></body>"
    )
    for page in [index, out / "gallery" / "clinical-1.html", out / "gallery" / "pathology-1.html"]:
        probe = page.with_name(f"_probe_{page.name}")
        probe.write_text(page.read_text().replace("</body>", probe_js))
        res = _run_chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()])
        m = re.search(r'data-probe="(\d+)/(\d+)"', res.stdout)
        assert m, f"no probe result for {page.name}: rc={res.returncode} {res.stderr[-500:]}"
        total, ok = int(m.group(1)), int(m.group(2))
        assert total > 0 and ok == total, f"{page.name}: {ok}/{total} images decoded"
        title = re.search(r"<title>(.*?)</title>", res.stdout, re.S)
        assert title and title.group(1) != "pwned"  # the caption's script never ran
        probe.unlink()
    shot = tmp_path / "shot.png"
    res = _run_chromium(
        ["--window-size=1200,1600", "--hide-scrollbars", f"--screenshot={shot}", index.as_uri()]
    )
    assert shot.is_file(), res.stderr[-500:]
    import numpy as np
    from PIL import Image

    px = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert px.shape == (1600, 1200)
    assert px.std() > 10  # text, tables and plots, not a blank page
    assert (px < 128).mean() > 0.005
