"""What the build reads: PDF files named on the command line or found in folders, opened safely.

A file that is not a readable PDF (missing, empty, random bytes, encrypted, truncated) raises :class:`InputError`
with a one-line reason; the build reports it and goes on with the other files. Every input is accounted for:
:func:`collect_pdfs` also returns the inputs that gave no PDF (a folder without any, a dangling symlink, a FIFO
named ``*.pdf``) with the reason.

    >>> from mmskin.pdf.inputs import collect_pdfs, open_pdf
    >>> files, skipped = collect_pdfs(["books/", "atlas.pdf"])
    >>> doc = open_pdf(files[0])
"""

from __future__ import annotations

import os
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


def _kind(p: Path) -> str:
    """What a path that is neither a regular file nor a folder is, for the reason a user reads."""
    import stat

    if p.is_symlink() and not p.exists():
        return f"dangling symlink (to {os.readlink(p)})"
    try:
        mode = p.stat().st_mode
    except OSError as e:
        return f"cannot read ({e.strerror})"
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return f"not a regular file ({name})"
    if stat.S_ISBLK(mode):
        return "not a regular file (a device)"
    return "not a regular file"


def _walk(top: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """The *.pdf files under ``top`` (symlinked folders followed once each), sorted; *.pdf entries that are
    not regular files become ``(path, reason)`` in ``skipped``."""
    found: list[Path] = []
    seen: set[str] = set()
    for d, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:  # a symlink loop, or a folder reached twice
            dirs[:] = []
            continue
        seen.add(real)
        for name in sorted(names):
            q = Path(d) / name
            if q.suffix.lower() != ".pdf":
                continue
            if q.is_file():
                found.append(q)
            else:
                skipped.append((str(q), _kind(q)))
    return sorted(found)


def collect_pdfs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """PDF files named or found (recursively, *.pdf) under the inputs, and ``(input, reason)`` for every input
    that gives none: a missing path, a folder without PDFs, a dangling symlink or a FIFO named *.pdf, ...
    A file named twice (or by a folder and by name) is listed once."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            found = _walk(p, skipped)
            if not found:
                skipped.append((str(p), "no PDF files in this folder (nothing ending in .pdf)"))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.is_symlink() or p.exists():
            skipped.append((str(p), _kind(p)))
        else:
            skipped.append((str(p), "no such file or directory"))
    seen: set[Path] = set()
    uniq = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq, list(dict.fromkeys(skipped))
