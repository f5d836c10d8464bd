"""``mmskin review DATASET --serve``: a local web page to work through a dataset, one record at a time.

The standard library's threading HTTP server, bound to 127.0.0.1 unless told otherwise (no dependency, nothing
reachable from outside by default). The page (``data/curate/review/``: HTML, CSS, JS; no third-party code, no
network) shows the review-flagged records first (least confident first), the image large, the caption,
modality with its confidence, flags with their reasons, and the curator's decision. Keys set the modality,
exclude or include, edit the caption, undo, and move on.

Every decision is written at once to the dataset's corrections store ``corrections.jsonl``
(:mod:`mmskin.curate.corrections`: rewritten atomically under the store's lock, from the store as it is on disk,
so two tabs, two decisions in flight or a curate importing a CSV never lose one another's lines); ``mmskin curate
DATASET`` applies it on every run. A review is not a build: it does not take the dataset's writer lock, so a
curate may run while the page is open (it applies the decisions saved before it started). A store with a broken
line is not rewritten: a decision is then refused (409) until the line is fixed. Undo restores the record's
decision as it was before this tab's last change.

Endpoints: ``GET /`` (page), ``/app.js``, ``/app.css``, ``/api/records`` (records in review order with the
decisions), ``/api/decisions`` (the decisions only, polled so a second tab stays current), ``/image/<id>`` (a
record's image, only from inside the dataset); ``POST /api/decide`` ``{"id", "modality"?, "exclude"?,
"caption"?}`` (a key present with null clears that part). Every text reaches the page as JSON and is put into
it with ``textContent``; requests with another Host (DNS rebinding) or a cross-site Origin are refused; a
malformed request is answered 4xx and the server goes on; a vanished image is a 404 the page shows as such.

    mmskin review data/derm --serve                 # http://127.0.0.1:8765/
    >>> server = ReviewServer(Path("data/derm"), port=0); server.start(); server.url; server.stop()
"""

from __future__ import annotations

import json
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..records import EXCLUDING_FLAGS, MODALITIES, RecordError, resolve_in_root
from ..resources import data_path
from ..stage import Problems
from .corrections import (
    REVIEW_FILE,
    STORE,
    Decision,
    read_store,
    set_decision,
    store_lock,
    update_store,
    write_store,
)
from .html import flags_of, load_dataset_records
from .review import review_order

MAX_BODY = 256 * 1024  # a decision is a few hundred bytes; a caption a few KB
STATIC = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/app.css": ("app.css", "text/css"),
}
CSP = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'"
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class BadRequest(Exception):
    """A request the server refuses: (HTTP status, one-line reason)."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    """What the page needs of a record (plain JSON values; the page escapes them all)."""
    src = rec.get("source") if isinstance(rec.get("source"), dict) else {}
    evidence = rec.get("modality_evidence") if isinstance(rec.get("modality_evidence"), dict) else {}
    return {
        "id": rec["id"],
        "caption": rec.get("caption") or "",
        "caption_raw": rec.get("caption_raw") or "",
        "modality": rec.get("modality"),
        "modality_score": rec.get("modality_score"),
        "modality_source": rec.get("modality_source"),
        "probs": evidence.get("fused") or {},
        "flags": flags_of(rec),
        "flag_reasons": rec.get("flag_reasons") if isinstance(rec.get("flag_reasons"), dict) else {},
        "where": f"{src.get('file', '?')} p.{src.get('page', '?')}"
        + (f" fig {rec.get('figure_label')}{rec.get('panel') or ''}" if rec.get("figure_label") else ""),
        "size": [rec.get("width"), rec.get("height")],
    }


class ReviewState:
    """The dataset's records (read once) and its corrections store (read and written under its lock)."""

    def __init__(self, dataset: Path):
        self.dataset = Path(dataset)
        self.problems = Problems()
        records, _ = load_dataset_records(self.dataset, self.problems)
        self.records = sorted(records, key=review_order)
        self.by_id = {r["id"]: r for r in self.records}
        self.lock = threading.Lock()

    def decisions(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            store = read_store(self.dataset, Problems())
        return {k: store.decision(k).as_dict() for k in store.entries}

    def listing(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.name,
            "corrections": STORE,
            "modalities": list(MODALITIES),
            "excluding": list(EXCLUDING_FLAGS),
            "records": [_public(r) for r in self.records],
            "decisions": self.decisions(),
        }

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply one decision to the corrections file; returns the record's decision before and after."""
        rid = body.get("id")
        if not isinstance(rid, str) or rid not in self.by_id:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"unknown record id {rid!r}")
        with self.lock, store_lock(self.dataset):
            problems = Problems()
            store = read_store(self.dataset, problems)
            if problems:
                raise BadRequest(HTTPStatus.CONFLICT, f"fix the corrections store first: {problems[0]}")
            update_store(store, self.records, None)  # a first store keeps the human modalities records carry
            before = store.decision(rid)
            after = _changed(before, body)
            set_decision(store, rid, after, REVIEW_FILE)
            store.authoritative = True  # a new store, or one read whole
            write_store(self.dataset, store)
        return {"id": rid, "before": before.as_dict(), "after": after.as_dict()}

    def image(self, rid: str) -> Path:
        rec = self.by_id.get(rid)
        if rec is None:
            raise BadRequest(HTTPStatus.NOT_FOUND, "unknown record")
        try:
            path = resolve_in_root(self.dataset, rec["image"])
        except RecordError as e:
            raise BadRequest(HTTPStatus.FORBIDDEN, str(e)) from None
        if path.suffix.lower() not in IMAGE_TYPES:
            raise BadRequest(HTTPStatus.FORBIDDEN, "not an image file")
        if not path.is_file():
            raise BadRequest(HTTPStatus.NOT_FOUND, "image file missing")
        return path


def _changed(before: Decision, body: dict[str, Any]) -> Decision:
    """``before`` with the parts ``body`` names (a present null clears that part); BadRequest on a bad value."""
    mod, exclude, caption = before.modality, before.exclude, before.caption
    if "modality" in body:
        mod = body["modality"]
        if mod is not None and mod not in MODALITIES:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"modality must be one of {', '.join(MODALITIES)}")
    if "exclude" in body:
        exclude = body["exclude"]
        if exclude is not None and not isinstance(exclude, bool):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "exclude must be true, false or null")
    if "caption" in body:
        caption = body["caption"]
        if caption is not None and not isinstance(caption, str):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "caption must be text or null")
        caption = caption.strip() or None if caption is not None else None
    return Decision(mod, exclude, caption)


class Handler(BaseHTTPRequestHandler):
    """One request; every failure is an HTTP status with a one-line JSON reason, never a dead server."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # quiet: the terminal shows the URL and the summary, not every request

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=True).encode(), "application/json; charset=utf-8")

    def _guard(self) -> None:
        """Refuse requests for another host name (DNS rebinding) and cross-site posts."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in self.server.allowed_hosts:
            raise BadRequest(HTTPStatus.FORBIDDEN, "unexpected Host header")
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin and urlsplit(origin).netloc != self.headers.get("Host"):
            raise BadRequest(HTTPStatus.FORBIDDEN, "cross-site request")

    def _handle(self, route) -> None:
        try:
            try:
                self._guard()
                route()
            except BadRequest as e:
                self._json(e.status, {"error": str(e)})
            except (ConnectionError, TimeoutError):
                raise
            except Exception as e:  # noqa: BLE001 - one bad request must not take the server down
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}"[:300]})
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the browser went away mid-answer

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_HEAD(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        path = unquote(urlsplit(self.path).path)
        state = self.server.state
        if path in STATIC:
            name, ctype = STATIC[path]
            body = data_path("curate", "review", name).read_bytes()
            return self._send(HTTPStatus.OK, body, f"{ctype}; charset=utf-8")
        if path == "/api/records":
            return self._json(HTTPStatus.OK, state.listing())
        if path == "/api/decisions":
            return self._json(HTTPStatus.OK, state.decisions())
        if path.startswith("/image/"):
            file = state.image(path[len("/image/") :])
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            try:
                data = file.read_bytes()
            except OSError:
                raise BadRequest(HTTPStatus.NOT_FOUND, "image file missing") from None
            return self._send(HTTPStatus.OK, data, ctype)
        raise BadRequest(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self) -> None:
        if urlsplit(self.path).path != "/api/decide":
            raise BadRequest(HTTPStatus.NOT_FOUND, "no such endpoint")
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            raise BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        try:
            n = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length needed") from None
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"not JSON ({e})") from None
        if not isinstance(body, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        self._json(HTTPStatus.OK, self.server.state.decide(body))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ReviewState
    allowed_hosts: set[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):  # a closed tab is not an error
            super().handle_error(request, client_address)


class ReviewServer:
    """The review app on ``host:port`` (port 0: any free one); :meth:`start` runs it in a thread."""

    def __init__(self, dataset: Path, host: str = "127.0.0.1", port: int = 8765):
        self.state = ReviewState(dataset)
        self.httpd = _Server((host, port), Handler)
        self.httpd.state = self.state
        self.httpd.allowed_hosts = {"127.0.0.1", "localhost", "::1", host.lower()}
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host if ':' not in str(host) else f'[{host}]'}:{port}/"

    def start(self) -> ReviewServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="mmskin-review")
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread:
            self.thread.join(timeout=5)
