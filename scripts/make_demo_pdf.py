"""Build the bundled demo textbook in src/mmskin/data/demo: the PDF, its expected figures, its attribution.

The demo is a five-page "dermatology atlas" made only of US-public-domain (National Cancer Institute) and CC
BY material, laid out like a real textbook so that ``mmskin demo`` and the PDF tests exercise the hard cases:
a running head and page numbers, body text, single figures with "Fig. 1.x" captions, a two-column page, a
caption set above its figure, a multi-panel figure made of separate images with "(a) … (d)" subcaptions, a
composite image holding two panels, and a body paragraph that starts with "Fig. 1.3 shows …" (a reference, not
a caption). Output is deterministic (reportlab ``invariant=1``, fixed JPEG encoding): rerunning the script
gives byte-identical files.

    python scripts/make_demo_pdf.py                      # data from ../shared/data next to the repository
    python scripts/make_demo_pdf.py --data /path/to/shared/data --out src/mmskin/data/demo

Needs reportlab (``pip install -e .[dev]``) and the development data folder (see shared/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from reportlab.lib.colors import HexColor
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_OUT = ROOT / "src" / "mmskin" / "data" / "demo"

PAGE_W, PAGE_H = 504.0, 720.0  # 7 x 10 in, a common atlas trim size
MARGIN_X, TOP, BOTTOM = 54.0, 66.0, 666.0
TEXT_W = PAGE_W - 2 * MARGIN_X
RUNNING_HEAD = "Pigmented Lesions \u2014 a sample atlas (demo)"
MAX_PX = 600
JPEG_QUALITY = 80

NCI = "images/clinical/nci_nevus_recognition"
KRIEGSMANN = "images/histopathology/kriegsmann2022_skin_tissue_panels"

BODY = ParagraphStyle("body", fontName="Times-Roman", fontSize=10.5, leading=13.5, alignment=4)
CAPTION = ParagraphStyle("caption", fontName="Helvetica", fontSize=8.5, leading=10.5)
HEADING = ParagraphStyle("heading", fontName="Helvetica-Bold", fontSize=12, leading=15)
CHAPTER = ParagraphStyle("chapter", fontName="Helvetica-Bold", fontSize=20, leading=24)
GLOSSARY = ParagraphStyle(
    "glossary", parent=BODY, fontSize=10, leading=12.5, leftIndent=10, firstLineIndent=-10
)


# ----------------------------------------------------------------------------------------------------------
# source material


@dataclass
class Source:
    """One source image as shipped: where it came from and under which licence."""

    file: str  # relative to the data folder
    licence: str
    origin: str
    note: str = ""


@dataclass
class Book:
    data: Path
    sources: list[Source] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    captions: dict[str, dict[str, str]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    pages: int = 0

    def load(self) -> None:
        with open(self.data / NCI / "image_captions.csv", newline="", encoding="utf-8") as fh:
            self.captions = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
        with open(self.data / "images" / "labels.csv", newline="", encoding="utf-8") as fh:
            self.labels = {r["file"]: r for r in csv.DictReader(fh)}

    def licence_of(self, rel: str) -> str:
        row = self.labels.get(rel)
        if row is None:
            raise SystemExit(f"{rel}: not in images/labels.csv, licence unknown")
        lic = row["license"]
        if "public domain" not in lic.lower() and "CC BY 4.0" not in lic:
            raise SystemExit(f"{rel}: licence {lic!r} is neither US public domain nor CC BY")
        return lic

    def register(self, rel: str, note: str = "") -> None:
        row = self.labels[rel]
        origin = f"{row['source_repo']} @ {row['source_commit'][:12]}: {row['source_path']}"
        self.sources.append(Source(rel, self.licence_of(rel), origin, note))

    def nci(self, name: str) -> tuple[bytes, tuple[int, int], str]:
        """An NCI photo as shipped JPEG bytes, its pixel size, and its real caption."""
        rel = f"{NCI}/{name}"
        self.register(rel, "re-encoded as JPEG q80")
        return _jpeg(Image.open(self.data / rel)) + (self.captions[name]["caption"].strip(),)


def _jpeg(img: Image.Image) -> tuple[bytes, tuple[int, int]]:
    img = img.convert("RGB")
    if max(img.size) > MAX_PX:
        scale = MAX_PX / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buf.getvalue(), img.size


# ----------------------------------------------------------------------------------------------------------
# layout helpers (reportlab has a bottom-left origin; everything here is top-down, y = distance from the top)


class Pages:
    def __init__(self, path: Path, book: Book) -> None:
        self.c = canvas.Canvas(str(path), pagesize=(PAGE_W, PAGE_H), invariant=1, pageCompression=1)
        self.c.setTitle("Pigmented Lesions - a sample atlas (demo)")
        self.c.setAuthor(
            "mmskin demo; images: National Cancer Institute (public domain), Kriegsmann et al. 2022 (CC BY)"
        )
        self.c.setSubject("Demo input for mmskin build")
        self.c.setCreator("mmskin scripts/make_demo_pdf.py")
        self.book = book
        self.page = 0

    def new_page(self) -> None:
        if self.page:
            self.c.showPage()
        self.page += 1
        c = self.c
        c.setFont("Helvetica-Oblique", 8)
        c.setFillColor(HexColor("#444444"))
        c.drawString(MARGIN_X, PAGE_H - 36, RUNNING_HEAD)
        c.setLineWidth(0.4)
        c.line(MARGIN_X, PAGE_H - 41, PAGE_W - MARGIN_X, PAGE_H - 41)
        c.setFont("Helvetica", 9)
        c.drawCentredString(PAGE_W / 2, 36, str(self.page))
        c.setFillColor(HexColor("#000000"))

    def para(self, markup: str, x: float, y: float, width: float, style: ParagraphStyle = BODY) -> float:
        """Draw a paragraph with its top at y; returns the y below it."""
        p = Paragraph(markup, style)
        _, h = p.wrap(width, PAGE_H)
        p.drawOn(self.c, x, PAGE_H - y - h)
        return y + h

    def image(
        self, data: bytes, size: tuple[int, int], x: float, y: float, width: float
    ) -> tuple[float, ...]:
        """Place a JPEG with its top-left at (x, y) and the given width; returns its box (top-left origin)."""
        h = width * size[1] / size[0]
        # an ImageReader over JPEG bytes is embedded as-is (DCTDecode): the shipped bytes are exactly ours
        self.c.drawImage(ImageReader(io.BytesIO(data)), x, PAGE_H - y - h, width, h)
        return (round(x, 2), round(y, 2), round(x + width, 2), round(y + h, 2))

    def caption(self, label: str, text: str, x: float, y: float, width: float) -> tuple[float, str]:
        y = self.para(f"<b>Fig. {label}</b> {_esc(text)}", x, y, width, CAPTION)
        return y, f"Fig. {label} {text}"

    def item(self, box: tuple[float, ...], label: str, caption: str, panel: str | None = None) -> None:
        self.book.items.append(
            {"page": self.page, "bbox": list(box), "figure_label": label, "panel": panel, "caption": caption}
        )

    def save(self) -> None:
        self.c.showPage()
        self.c.save()


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ----------------------------------------------------------------------------------------------------------
# text (original writing for this demo, plus NCI case and glossary text, which is US public domain)

INTRO = [
    "Pigmented lesions are among the most frequent reasons for a skin examination. Most of them are benign "
    "melanocytic naevi (moles), but a small fraction are dysplastic naevi or early melanomas, and the "
    "clinical task is to tell these apart by their size, shape, colour, border and, above all, by how they "
    "change over time. This sample chapter shows how an atlas pairs each photograph with an expert "
    "description.",
    "The photographs come from long-term follow-up of patients with many moles. Rulers, drawn circles and "
    "case numbers on the skin were part of the clinical documentation; they are kept here because real "
    "textbook figures carry them too.",
]
AFTER_FIG1 = [
    "A dysplastic naevus is often larger than a common mole, with borders that are not easy to see and a "
    "colour that ranges from pink to dark brown. Dysplastic naevi can stay stable for decades, fade away, "
    "or change in ways that call for removal and histological examination.",
]
SEC_FADING = (
    "Common moles are not static. Over years they may enlarge, become raised, lighten and finally fade to "
    "flesh colour. Serial photographs such as those in Fig. 1.2 document this natural course."
)
AFTER_FIG2 = [
    "Fading is part of the normal life cycle of a mole and, by itself, is no reason for concern. A mole "
    "that darkens, grows quickly or becomes irregular is a different matter, as the following cases show.",
]
TWO_COL_LEFT = [
    "The ABCDE rule summarises the warning signs of melanoma: Asymmetry, Border irregularity, Colour "
    "variation, a Diameter larger than a pencil eraser, and Evolution over time. No single sign is decisive.",
    "Fig. 1.3 shows a dysplastic naevus that was followed for eight years before it was removed because it "
    "was changing.",
]
TWO_COL_LEFT_AFTER = [
    "Histology of the excised lesion showed a dysplastic naevus with severe dysplasia, close to but not "
    "meeting the criteria for melanoma.",
]
TWO_COL_RIGHT = [
    "Melanoma can begin in a pre-existing dysplastic naevus. In the case of Fig. 1.4 a tan, flat mole "
    "developed a new black area within two years.",
]
TWO_COL_RIGHT_AFTER = [
    "The mole was removed because it was changing in ways suspicious for melanoma; the pathology report "
    "described an early melanoma that started in a dysplastic naevus.",
    "Comparing photographs taken years apart is often the only way to see such change.",
]
SEC_HISTO = (
    "Under the microscope, melanocytic lesions are judged by architecture and cytology. Haematoxylin and "
    "eosin (H&amp;E) stained sections show nests of melanocytes in a naevus and atypical, pleomorphic cells "
    "in a melanoma. Fig. 1.5 compares the two tissue classes at the same magnification."
)
AFTER_FIG5 = [
    "Tissue classes such as these are used to train and test classifiers for whole-slide images of the "
    "skin. In a textbook they are usually shown as panels of one composite image, as here.",
]
GLOSSARY_TERMS = ["Dysplastic Nevus", "Lesion", "Melanin", "Melanocyte", "Melanoma", "Mole", "Papule"]


def build(data: Path, out: Path) -> Book:
    book = Book(data)
    book.load()
    out.mkdir(parents=True, exist_ok=True)
    doc = Pages(out / "sample_textbook.pdf", book)

    # --- page 1: chapter opening, one figure
    doc.new_page()
    y = doc.para("1 Pigmented Lesions", MARGIN_X, TOP, TEXT_W, CHAPTER) + 10
    for t in INTRO:
        y = doc.para(t, MARGIN_X, y, TEXT_W) + 6
    jpg, size, cap = book.nci("DN1A.jpg")
    w = 300.0
    box = doc.image(jpg, size, MARGIN_X + (TEXT_W - w) / 2, y + 8, w)
    y, caption = doc.caption("1.1", f"Changing dysplastic naevus (DN). {cap}", MARGIN_X, box[3] + 6, TEXT_W)
    doc.item(box, "1.1", caption)
    y += 10
    for t in AFTER_FIG1:
        y = doc.para(t, MARGIN_X, y, TEXT_W) + 6

    # --- page 2: a 2 x 2 figure of four separate images, one caption with (a)-(d)
    doc.new_page()
    y = doc.para("1.1 Common moles that fade", MARGIN_X, TOP, TEXT_W, HEADING) + 4
    y = doc.para(SEC_FADING, MARGIN_X, y, TEXT_W) + 10
    panels = [book.nci(n) for n in ("N2A.jpg", "N2B.jpg", "N2C.jpg", "N2D.jpg")]
    pw, gutter = 180.0, 8.0
    x0 = MARGIN_X + (TEXT_W - 2 * pw - gutter) / 2
    boxes = []
    for i, (jpg, size, _) in enumerate(panels):
        ph = pw * size[1] / size[0]
        boxes.append(doc.image(jpg, size, x0 + (i % 2) * (pw + gutter), y + (i // 2) * (ph + gutter), pw))
    subs = " ".join(f"({'abcd'[i]}) {p[2]}" for i, p in enumerate(panels))
    y, caption = doc.caption(
        "1.2",
        f"Stable then regressing (fading) common mole, followed for seventeen years. {subs}",
        MARGIN_X,
        boxes[-1][3] + 6,
        TEXT_W,
    )
    for i, b in enumerate(boxes):
        doc.item(b, "1.2", caption, "abcd"[i])
    y += 10
    for t in AFTER_FIG2:
        y = doc.para(t, MARGIN_X, y, TEXT_W) + 6

    # --- page 3: two columns; caption below in the left column, caption above in the right column
    doc.new_page()
    y = doc.para("1.2 Changing naevi", MARGIN_X, TOP, TEXT_W, HEADING) + 6
    col_gap = 18.0
    cw = (TEXT_W - col_gap) / 2
    xl, xr = MARGIN_X, MARGIN_X + cw + col_gap
    yl = y
    for t in TWO_COL_LEFT:
        yl = doc.para(t, xl, yl, cw) + 6
    jpg, size, cap = book.nci("DN5E.jpg")
    box = doc.image(jpg, size, xl, yl + 4, cw)
    yl, caption = doc.caption(
        "1.3", f"Changing dysplastic naevus, eight years after the first visit. {cap}", xl, box[3] + 5, cw
    )
    doc.item(box, "1.3", caption)
    yl += 8
    for t in TWO_COL_LEFT_AFTER:
        yl = doc.para(t, xl, yl, cw) + 6
    yr = y
    for t in TWO_COL_RIGHT:
        yr = doc.para(t, xr, yr, cw) + 6
    jpg, size, cap = book.nci("M2C.jpg")
    yr, caption = doc.caption(
        "1.4", f"Early melanoma that started in a dysplastic naevus. {cap}", xr, yr + 6, cw
    )
    box = doc.image(jpg, size, xr, yr + 5, cw)
    doc.item(box, "1.4", caption)
    yr = box[3] + 10
    for t in TWO_COL_RIGHT_AFTER:
        yr = doc.para(t, xr, yr, cw) + 6

    # --- page 4: one composite image holding two histology panels (white gutter between them)
    doc.new_page()
    y = doc.para("1.3 Histopathology", MARGIN_X, TOP, TEXT_W, HEADING) + 4
    y = doc.para(SEC_HISTO, MARGIN_X, y, TEXT_W) + 10
    jpg, size, frac = composite(book, ["panel_C_melanoma.png", "panel_D_naevus.png"])
    w = 360.0
    box = doc.image(jpg, size, MARGIN_X + (TEXT_W - w) / 2, y, w)
    y, caption = doc.caption(
        "1.5",
        "Skin tissue classes. (a) Melanoma: sheets of atypical melanocytes with pleomorphic nuclei. "
        "(b) Naevus: nests of small, regular melanocytes. H&E stain. Image crops from Kriegsmann et al., "
        "Front. Oncol. 2022 (CC BY 4.0).",
        MARGIN_X,
        box[3] + 6,
        TEXT_W,
    )
    bw = box[2] - box[0]
    for letter, (f0, f1) in zip("ab", frac):
        doc.item(
            (round(box[0] + f0 * bw, 2), box[1], round(box[0] + f1 * bw, 2), box[3]), "1.5", caption, letter
        )
    y += 10
    for t in AFTER_FIG5:
        y = doc.para(t, MARGIN_X, y, TEXT_W) + 6

    # --- page 5: glossary (NCI, public domain) and a last figure
    doc.new_page()
    y = doc.para("Glossary", MARGIN_X, TOP, TEXT_W, HEADING) + 4
    glossary = {
        g["term"]: g["definition"] for g in json.loads((data / NCI / "glossary.json").read_text("utf-8"))
    }
    for term in GLOSSARY_TERMS:
        y = doc.para(f"<b>{term}.</b> {_esc(glossary[term])}", MARGIN_X, y, TEXT_W, GLOSSARY) + 3
    jpg, size, cap = book.nci("M8C.jpg")
    w = 260.0
    box = doc.image(jpg, size, MARGIN_X + (TEXT_W - w) / 2, y + 12, w)
    y, caption = doc.caption(
        "1.6",
        f"Changing dysplastic naevus highly suspicious for melanoma. {cap}",
        MARGIN_X,
        box[3] + 6,
        TEXT_W,
    )
    doc.item(box, "1.6", caption)
    doc.para(
        "Image credits: National Cancer Institute, Division of Cancer Epidemiology and Genetics (public "
        "domain); histology crops from Kriegsmann et al. 2022, CC BY 4.0. See ATTRIBUTION.md.",
        MARGIN_X,
        y + 14,
        TEXT_W,
        ParagraphStyle("credit", parent=CAPTION, fontSize=7, leading=9),
    )
    doc.save()
    book.pages = doc.page
    return book


def composite(book: Book, names: list[str]) -> tuple[bytes, tuple[int, int], list[tuple[float, float]]]:
    """Paste histology crops side by side with a white gutter; returns the JPEG and each panel's x-span."""
    crops = []
    for n in names:
        rel = f"{KRIEGSMANN}/{n}"
        book.register(
            rel,
            "cropped below the white panel-letter box (rows 118-339), pasted into one composite, JPEG q80",
        )
        im = Image.open(book.data / rel).convert("RGB")
        crops.append(im.crop((0, 118, 339, 339)))
    gutter = 16
    h = min(c.height for c in crops)
    total = sum(c.width for c in crops) + gutter * (len(crops) - 1)
    comp = Image.new("RGB", (total, h), "white")
    x, frac = 0, []
    for c in crops:
        comp.paste(c.crop((0, 0, c.width, h)), (x, 0))
        frac.append((x / total, (x + c.width) / total))
        x += c.width + gutter
    jpg, size = _jpeg(comp)
    return jpg, size, frac


def write_attribution(book: Book, out: Path) -> None:
    lines = [
        "# Demo textbook: sources and licences",
        "",
        f"`sample_textbook.pdf` is a five-page sample atlas built by `scripts/make_demo_pdf.py` for `mmskin "
        f"demo` and the tests. Its running text was written for this demo, except the glossary definitions "
        f"and the figure descriptions, which are the National Cancer Institute's own wording (US public "
        f"domain). Every picture in it is listed below with its licence and origin; images were downscaled "
        f"to at most {MAX_PX} px and re-encoded as JPEG (quality {JPEG_QUALITY}).",
        "",
        "## National Cancer Institute photographs (US public domain)",
        "",
        "Photographs and descriptions from the NCI Division of Cancer Epidemiology and Genetics' mole / "
        "dysplastic naevus / melanoma recognition tutorial. Works of the US federal government are not "
        "subject to copyright in the United States (17 U.S.C. 105). Credit: National Cancer Institute.",
        "",
        "| file in the demo | source | licence | note |",
        "|---|---|---|---|",
    ]
    for s in book.sources:
        if s.file.startswith(NCI):
            lines.append(f"| {Path(s.file).name} | {s.origin} | {s.licence} | {s.note} |")
    lines += [
        "",
        "## Histology (CC BY 4.0)",
        "",
        "Fig. 1.5 combines two panels (melanoma, naevus) of the skin tissue class figure of Kriegsmann et "
        "al. (2022), Frontiers in Oncology 12:1022967, an article the publisher releases under the Creative "
        "Commons Attribution 4.0 licence (https://creativecommons.org/licenses/by/4.0/). The panels were "
        "taken from the copy of that figure in the openmedlab/Awesome-Medical-Dataset repository (which "
        "states no licence of its own), as recorded in shared/data/images/labels.csv. Changes: cropped "
        "below the panel letters, two panels placed side by side with a white gutter, downscaled and "
        "re-encoded.",
        "",
        "| file in the demo | source | licence (as recorded in shared/data/images/labels.csv) | note |",
        "|---|---|---|---|",
    ]
    for s in book.sources:
        if s.file.startswith(KRIEGSMANN):
            lines.append(f"| {Path(s.file).name} | {s.origin} | {s.licence} | {s.note} |")
    lines += [
        "",
        "## Expected output",
        "",
        "`sample_textbook.expected.json` lists every figure (one item per panel for multi-panel figures) "
        "with the page, the image or panel box as placed (PDF points, top-left origin), the printed label, "
        "the panel letter and the whole caption as printed.",
        "",
    ]
    (out / "ATTRIBUTION.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared development data folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = ap.parse_args(argv)
    if not (args.data / NCI).is_dir():
        ap.error(f"{args.data}: no {NCI} there; pass --data")
    book = build(args.data.resolve(), args.out)
    expected = {"file": "sample_textbook.pdf", "pages": book.pages, "items": book.items}
    (args.out / "sample_textbook.expected.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_attribution(book, args.out)
    size = (args.out / "sample_textbook.pdf").stat().st_size
    print(f"wrote {args.out / 'sample_textbook.pdf'} ({size / 1024:.0f} KiB, {len(book.items)} figure items)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
