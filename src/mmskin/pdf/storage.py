"""Image storage: content-addressed files under ``DATASET/images/``, native bytes where possible.

A picture that is exactly one embedded raster keeps its original bytes (JPEG untouched) or is decoded once and
written by PIL; everything else is rendered from the page (or cropped from a scanned page image).

    >>> from mmskin.pdf.storage import store_image
    >>> rel = store_image(Path("data/derm"), png_bytes, "png")      # images/ab/abcd….png
"""

from __future__ import annotations

import io
from pathlib import Path

from ..records import store_content
from .page import MAX_PIXELS, Box


def store_image(root: Path, data: bytes, ext: str) -> str:
    return store_content(root, data, ext)


def pil_to_bytes(img, photo: bool) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if photo:
        img.save(buf, format="JPEG", quality=92, optimize=False)
        return buf.getvalue(), "jpg"
    img.save(buf, format="PNG", compress_level=1)  # fast; level 6 saves ~15 % disk at 4x the time
    return buf.getvalue(), "png"


def native_image(doc, xref: int):
    """(bytes, ext, PIL image or None) of an embedded image at its native resolution, as RGB/grey."""
    import pymupdf
    from PIL import Image

    filt = doc.xref_get_key(xref, "Filter")[1]
    smask = (
        int(doc.xref_get_key(xref, "SMask")[1].split()[0] or 0)
        if doc.xref_get_key(xref, "SMask")[0] == "xref"
        else 0
    )
    ext = "jpeg" if "DCTDecode" in filt else ("jpx" if "JPXDecode" in filt else "")
    if ext == "jpeg" and not smask:
        info = doc.extract_image(xref)  # the stored JPEG bytes, untouched
        if info.get("ext") in ("jpeg", "jpg") and info.get("colorspace", 0) in (1, 3):
            return info["image"], "jpg", None
    # anything else is decoded once and written by PIL (PyMuPDF's own PNG writer is several times slower)
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is None:
        # a stencil mask (/ImageMask, often CCITT fax): alpha only; PyMuPDF renders it as a grey PNG
        info = doc.extract_image(xref)
        return info["image"], info["ext"], None
    if smask:
        try:
            pix = pymupdf.Pixmap(pix, pymupdf.Pixmap(doc, smask))
        except Exception:
            pass  # a broken mask: keep the colour image
    if pix.colorspace is not None and pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    mode = {1: "L", 3: "RGB"}.get(pix.n - pix.alpha, "RGB")
    img = Image.frombytes(mode + ("A" if pix.alpha else ""), (pix.width, pix.height), pix.samples_mv)
    if pix.alpha:  # flatten transparency onto white, as the page shows it
        bg = Image.new(mode, img.size, 255 if mode == "L" else (255, 255, 255))
        bg.paste(img.convert(mode), mask=img.getchannel("A"))
        img = bg
    data, ext = pil_to_bytes(img, photo=ext in ("jpeg", "jpg", "jpx"))
    return data, ext, img


def capped_dpi(bbox: Box, dpi: float, max_pixels: int = MAX_PIXELS) -> float:
    """``dpi``, or less so that ``bbox`` (points) rendered at it has at most ``max_pixels`` pixels."""
    inches = max(1e-6, (bbox[2] - bbox[0]) / 72.0) * max(1e-6, (bbox[3] - bbox[1]) / 72.0)
    return min(float(dpi), 0.995 * (max_pixels / inches) ** 0.5)


def render_region(display, bbox: Box, dpi: float, max_pixels: int = MAX_PIXELS):
    """The page region ``bbox`` as a PIL image at ``dpi`` (lower where it would exceed ``max_pixels``).

    ``display``: the page's display list (``pg.get_displaylist()``, made once per page: building it costs as
    much as rendering), or the page itself."""
    import pymupdf
    from PIL import Image

    zoom = max(1, int(capped_dpi(bbox, dpi, max_pixels))) / 72
    if isinstance(display, pymupdf.Page):
        display = display.get_displaylist()
    pix = display.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, clip=pymupdf.Rect(bbox))
    mode = "L" if pix.n == 1 else "RGB"
    return Image.frombytes(mode, (pix.width, pix.height), pix.samples_mv)


def crop_scan(scan, bbox: Box):
    simg, scale = scan
    return simg.crop(tuple(int(round(v * scale)) for v in bbox))
