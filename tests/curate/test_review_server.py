"""`mmskin review DATASET --serve`: the web app in headless Chromium with real key presses and clicks (CDP over
a pipe, tests/curate/cdp_client.py), every decision in the dataset's corrections store (corrections.jsonl) at once, undo, two tabs,
escaping, a screenshot that shows the page; the HTTP layer refuses paths outside the dataset, other hosts,
cross-site posts and malformed requests and goes on; a vanished image is a 404; `mmskin curate` applies the
decisions (modality, exclude, include, caption), with those of a CSV, and keeps them on a rerun."""

from __future__ import annotations

import http.client
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from cdp_client import CHROMIUM, Browser

from mmskin.cli import demo_pdf, main
from mmskin.curate.review_server import ReviewServer
from mmskin.records import write_jsonl

EVIL = "<script>document.title='pwned'</script> & <b>bold</b>"


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    plan = [("clinical", 0.95, []), ("dermoscopy", 0.41, ["review"]), ("pathology", 0.55, ["review"])]
    for i, rec in enumerate(recs):
        mod, score, flags = plan[i % 3]
        rec.update(
            modality=mod,
            modality_score=score + i / 1000,
            modality_source="model",
            flags=flags,
            flag_reasons={},
        )
    recs[1]["caption"] = EVIL  # the least confident review record: shown first
    recs[1]["modality_score"] = 0.30
    recs[1]["flags"] = ["review", "annotated"]
    recs[1]["flag_reasons"] = {"review": "modality dermoscopy at 0.41 < 0.75", "annotated": EVIL}
    recs[4]["modality_score"] = 0.35  # second in review order
    recs[-1]["image"] = "../../etc/passwd"  # refused, never served
    write_jsonl(ds / "records.jsonl", recs)
    return ds


@pytest.fixture()
def server(dataset: Path):
    srv = ReviewServer(dataset, port=0).start()
    yield srv
    srv.stop()


def _rows(ds: Path) -> dict[str, dict]:
    path = ds / "corrections.jsonl"
    if not path.is_file():
        return {}
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def _request(srv: ReviewServer, method: str, path: str, body: bytes | None = None, headers=None):
    host, port = srv.httpd.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def _post(srv: ReviewServer, obj, headers=None):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return _request(srv, "POST", "/api/decide", body, {"Content-Type": "application/json", **(headers or {})})


def test_http_layer_refuses_and_survives(server: ReviewServer, dataset: Path) -> None:
    status, data = _request(server, "GET", "/api/records")
    listing = json.loads(data)
    recs = listing["records"]
    first = recs[0]["id"]
    outside = json.loads((dataset / "records.jsonl").read_text().splitlines()[-1])["id"]
    assert (
        status == 200 and recs[0]["caption"] == EVIL
    )  # review-flagged, least confident first; JSON, not HTML
    assert [r["modality_score"] for r in recs[:4]] == sorted(r["modality_score"] for r in recs[:4])
    # paths outside the dataset: by id only, and a record pointing outside is refused
    for path in (
        "/image/../../etc/passwd",
        "/image/%2e%2e%2fetc%2fpasswd",
        "/../records.jsonl",
        "/records.jsonl",
    ):
        assert _request(server, "GET", path)[0] == 404, path
    assert [r["id"] for r in recs if _request(server, "GET", f"/image/{r['id']}")[0] == 403] == [outside]
    # malformed requests: each a 4xx, and the server goes on
    assert _post(server, b"{not json")[0] == 400
    assert _post(server, b"[1, 2]")[0] == 400
    assert _post(server, {"id": first, "modality": "xray"})[0] == 400
    assert _post(server, {"id": first, "exclude": "maybe"})[0] == 400
    assert _post(server, {"id": "nope", "modality": "other"})[0] == 404
    assert _request(server, "POST", "/api/decide", b"{}", {"Content-Type": "text/plain"})[0] == 415
    assert (
        _request(
            server,
            "POST",
            "/api/decide",
            b"x" * 10,
            {"Content-Type": "application/json", "Content-Length": "999999999"},
        )[0]
        == 413
    )
    assert _post(server, {"id": first}, {"Origin": "http://evil.example"})[0] == 403
    assert _request(server, "GET", "/api/records", None, {"Host": "evil.example"})[0] == 403
    assert not (dataset / "corrections.jsonl").exists()  # nothing refused was written
    status, data = _post(server, {"id": first, "modality": "clinical", "caption": EVIL})
    assert status == 200 and _rows(dataset)[first] == {
        "id": first,
        "modality": "clinical",
        "caption": EVIL,
        "file": "mmskin review",
    }
    # a vanished image is a 404; the listing and the rest still work
    img = dataset / json.loads((dataset / "records.jsonl").read_text().splitlines()[0])["image"]
    ok_id = json.loads((dataset / "records.jsonl").read_text().splitlines()[0])["id"]
    assert _request(server, "GET", f"/image/{ok_id}")[0] == 200
    img.unlink()
    assert _request(server, "GET", f"/image/{ok_id}")[0] == 404
    assert _request(server, "GET", "/api/decisions")[0] == 200
    # a store with a broken line (a hand edit) is not rewritten: decisions wait until it is fixed
    good = (dataset / "corrections.jsonl").read_text()
    (dataset / "corrections.jsonl").write_text(good + '{"id": "x", "modality": "xray"}\n')
    status, data = _post(server, {"id": first, "modality": "other"})
    assert status == 409 and "corrections.jsonl:2" in json.loads(data)["error"]
    assert _rows(dataset)[first]["modality"] == "clinical"


def test_concurrent_decisions_lose_nothing(server: ReviewServer, dataset: Path) -> None:
    ids = [r["id"] for r in json.loads(_request(server, "GET", "/api/records")[1])["records"]]
    mods = ["clinical", "dermoscopy", "pathology", "other"]
    threads = [
        threading.Thread(target=_post, args=(server, {"id": rid, "modality": mods[i % 4]}))
        for i, rid in enumerate(ids)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = _rows(dataset)
    assert {rid: rows[rid]["modality"] for rid in ids} == {rid: mods[i % 4] for i, rid in enumerate(ids)}
    assert not list(dataset.glob(".corrections.jsonl.*"))  # atomic writes leave no temp file


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_review_in_headless_chromium(server: ReviewServer, dataset: Path, tmp_path: Path) -> None:
    recs = json.loads(_request(server, "GET", "/api/records")[1])["records"]
    ids = [r["id"] for r in recs]
    second_img = dataset / next(
        json.loads(line)["image"]
        for line in (dataset / "records.jsonl").read_text().splitlines()
        if json.loads(line)["id"] == ids[1]
    )
    second_img.unlink()  # the image of the second record vanished after the server started
    b = Browser()
    try:
        page = b.page(server.url)
        page.wait(f"document.getElementById('counter').textContent.startsWith('1 / {len(ids)}')")
        # the first record: escaped caption and reasons, the script never ran
        assert page.js("document.getElementById('caption').textContent") == EVIL
        assert EVIL in page.js("document.getElementById('flags').textContent")
        assert page.js("document.title") != "pwned" and "<b>" not in page.js(
            "document.body.innerHTML.split('id=\"caption\"')[1].slice(0, 200)"
        )
        assert page.wait("document.getElementById('img').naturalWidth > 0")

        page.key("2")  # dermoscopy, saved at once, and on to the next record
        page.wait("document.getElementById('counter').textContent.startsWith('2 /')")
        assert _rows(dataset)[ids[0]]["modality"] == "dermoscopy"
        page.wait("document.getElementById('missing').hidden === false")  # the vanished image, shown as such
        page.key("u")  # undo: the line goes, and we are back on the first record
        page.wait("document.getElementById('counter').textContent.startsWith('1 /')")
        assert ids[0] not in _rows(dataset)

        page.key("x")  # exclude
        page.wait("document.getElementById('counter').textContent.startsWith('2 /')")
        assert _rows(dataset)[ids[0]]["exclude"] is True
        page.key("ArrowLeft")
        page.key("e")
        page.wait("document.activeElement && document.activeElement.id === 'caption-edit'")
        page.js("document.getElementById('caption-edit').select()")
        page.type("Plaque, H&E x40")
        page.key("Enter", modifiers=2)  # Ctrl+Enter saves
        page.wait("document.getElementById('decision').textContent.includes('caption edited')")
        assert _rows(dataset)[ids[0]]["caption"] == "Plaque, H&E x40"
        page.click("button[data-act='include']")  # a real click: include overrides the earlier exclude
        page.wait("document.getElementById('counter').textContent.startsWith('2 /')")
        assert _rows(dataset)[ids[0]]["exclude"] is False

        # a second tab decides another record; the first tab sees it, and the store keeps both
        tab2 = b.page(server.url)
        tab2.wait(f"document.getElementById('counter').textContent.startsWith('1 / {len(ids)}')")
        tab2.focus()
        tab2.key("j")
        tab2.key("j")
        tab2.key("3")
        tab2.wait("document.getElementById('status').textContent.startsWith('saved')")
        page.focus()
        page.wait("document.getElementById('counter').textContent.includes('2 decided')", timeout=10)
        rows = _rows(dataset)
        assert rows[ids[2]]["modality"] == "pathology" and rows[ids[0]]["caption"] == "Plaque, H&E x40"

        page.key("k")
        page.wait("document.getElementById('decision').textContent.includes('INCLUDED')")
        page.wait(
            "document.getElementById('img').complete && document.getElementById('img').naturalWidth > 0"
        )
        shot = page.screenshot()
    finally:
        b.close()
    (tmp_path / "review.png").write_bytes(shot)  # kept in pytest's temp folder to look at
    from PIL import Image

    px = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=np.float32)
    assert px.shape[1] == 1280 and px.shape[0] >= 600
    grey = px.mean(2)
    assert grey.std() > 20 and (grey < 128).mean() > 0.01  # text and a picture, not a blank page
    left = px[80:700, 40:700]  # the image panel: the record's picture, in colour
    assert left.std() > 25 and np.abs(left[..., 0] - left[..., 2]).mean() > 5


def test_curate_applies_review_decisions_and_keeps_them(server: ReviewServer, dataset: Path) -> None:
    recs = [json.loads(line) for line in (dataset / "records.jsonl").read_text().splitlines()]
    recs[-1]["image"] = recs[0]["image"]  # a valid path again for curate
    write_jsonl(dataset / "records.jsonl", recs)
    a, b, c, d = recs[0]["id"], recs[1]["id"], recs[2]["id"], recs[3]["id"]
    assert _post(server, {"id": d, "modality": "other", "exclude": True})[0] == 200  # the web app
    fix = dataset.parent / "fix.csv"
    fix.write_text(
        "id,modality,exclude,caption\n"
        f"{a},pathology,yes,\n"
        f'{b},,no,"Dermoscopy of a naevus, 45-year-old woman"\n'
        f"{c},xray,,\n"
        "nope,clinical,,\n",
        encoding="utf-8",
    )
    args = ["curate", str(dataset), "--workers", "1", "--quiet"]
    assert main([*args, "--corrections", str(fix)]) == 1  # two bad lines, the rest applied

    def read() -> dict[str, dict]:
        return {r["id"]: r for r in map(json.loads, (dataset / "records.jsonl").read_text().splitlines())}

    out = read()
    assert out[a]["modality"] == "pathology" and out[a]["modality_source"] == "human"
    assert "excluded" in out[a]["flags"] and "fix.csv:2" in out[a]["flag_reasons"]["excluded"]
    assert (
        out[b]["caption"] == "Dermoscopy of a naevus, 45-year-old woman"
        and out[b]["caption_source"] == "human"
    )
    assert out[b]["age"] == 45 and out[b]["sex"] == "female" and "included" in out[b]["flags"]
    assert not set(out[b]["flags"]) & {"annotated", "sensitive", "non_dermatology", "duplicate"}
    assert out[d]["modality"] == "other" and "mmskin review" in out[d]["flag_reasons"]["excluded"]
    assert set(_rows(dataset)) == {a, b, d}  # one store: the CSV's good lines and the web app's decision
    before = (dataset / "records.jsonl").read_bytes()
    assert main(args) == 0  # without the CSV: the store alone, the same records
    assert (dataset / "records.jsonl").read_bytes() == before
    # undone (the web app clears a's decision, and b's caption): back to the model, the exclusion lifted
    assert _post(server, {"id": a, "modality": None, "exclude": None})[0] == 200
    assert _post(server, {"id": b, "caption": None})[0] == 200
    assert main(args) == 0
    out = read()
    assert out[a]["modality_source"] == "model" and "excluded" not in out[a]["flags"]
    assert "caption_source" not in out[b] and "included" in out[b]["flags"]
    assert a not in _rows(dataset) and _rows(dataset)[b]["exclude"] is False
