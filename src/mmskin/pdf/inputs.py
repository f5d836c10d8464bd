"""What the build reads: PDF files named on the command line or found in folders, opened safely.

A file that is not a readable PDF (missing, empty, random bytes, encrypted, truncated) raises :class:`InputError`
with a one-line reason; the build reports it and goes on with the other files.

    >>> from mmskin.pdf.inputs import collect_pdfs, open_pdf
    >>> files, missing = collect_pdfs(["books/", "atlas.pdf"])
    >>> doc = open_pdf(files[0])
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A file that cannot be read as a PDF; the message is the reason."""


def open_pdf(path: Path):
    import pymupdf

    if not path.is_file():
        raise InputError("not a file")
    if path.stat().st_size == 0:
        raise InputError("empty file")
    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF" not in head:
        raise InputError("not a PDF (no %PDF header)")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as e:  # pymupdf raises FileDataError / RuntimeError for broken files
        raise InputError(f"cannot open PDF ({str(e).splitlines()[0][:120]})") from None
    if doc.needs_pass:
        doc.close()
        raise InputError("encrypted PDF (password required)")
    if doc.is_repaired:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 2048))
            tail = f.read()
        if b"%%EOF" not in tail:
            doc.close()
            raise InputError("truncated PDF (no %%EOF at the end; the file was cut short)")
    if doc.page_count == 0:
        doc.close()
        raise InputError("PDF has no pages (truncated or damaged)")
    return doc


def collect_pdfs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """PDF files named or found (recursively, *.pdf) under the inputs, and the inputs that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() == ".pdf"))
        elif p.exists():
            files.append(p)
        else:
            missing.append(str(p))
    seen: set[Path] = set()
    uniq = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq, missing
