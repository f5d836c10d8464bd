"""Writes the golden assignment cases: one small PDF per layout failure, with its truth as ``*.expected.json``.

The truth is where this script placed each picture, not what the extractor says. Images are synthetic
textures (no third-party material). Rerun after changing a case:

    python tests/pdf/golden/make_golden.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

HERE = Path(__file__).resolve().parent
BODY = (
    "Melanocytic naevi are benign proliferations of melanocytes. They appear in childhood and adolescence, "
    "and their number peaks in the third decade. The border, colour and symmetry guide the clinician, and "
    "dermoscopy adds the pigment network and globules. "
)


def texture(seed: int, w: int = 240, h: int = 180, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack(
        [
            120 + 80 * np.sin(xx / (9 + seed % 5)) * np.cos(yy / 13),
            90 + 60 * np.cos(xx / 17 + seed),
            70 + 50 * np.sin(yy / 11 - seed),
        ],
        axis=2,
    )
    arr = np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=70)
    return buf.getvalue()


class Case:
    def __init__(self, name: str, doc: str, two_col: bool = False):
        self.name, self.doc_text = name, doc
        self.pdf = pymupdf.open()
        self.items: list[dict] = []
        self.page = self.pdf.new_page(width=595, height=842)
        self.page.insert_text((60, 40), "Chapter 3  Pigmented Lesions", fontsize=8.5, fontname="helv")
        self.page.insert_text((520, 40), "37", fontsize=8.5)

    def text(self, rect, txt, size=10, font="tiro"):
        rc = self.page.insert_textbox(pymupdf.Rect(rect), txt, fontsize=size, fontname=font)
        assert rc >= 0, f"{self.name}: text does not fit {rect}"

    def caption(self, rect, label, txt, size=8.5):
        # bold label, regular text, as most books set it
        html = f"<p style='font-size:{size}pt;font-family:sans-serif'><b>{label}</b> {txt}</p>"
        self.page.insert_htmlbox(pymupdf.Rect(rect), html)
        return f"{label} {txt}"

    def image(self, rect, seed, **kw):
        self.page.insert_image(pymupdf.Rect(rect), stream=jpeg(texture(seed, **kw)))

    def expect(self, rect, label, panel=None, **extra):
        """``extra``: ``caption_endswith`` (the record's caption_raw must end so), ``flags`` (exactly these)."""
        item = {"page": 1, "bbox": [float(v) for v in rect], "figure_label": label, "panel": panel}
        self.items.append({**item, **extra})

    def words(self, x, y, text, size=8.5, font="helv", gap=None):
        """Place each word on its own (right to left, so PyMuPDF reads one line per word), or, with ``gap``
        (in em), glue the words with that much space and no space characters. Returns the end x."""
        f = pymupdf.Font(font)
        spans = []
        for w in text.split():
            spans.append((x, w))
            x += f.text_length(w, fontsize=size) + (gap if gap is not None else 0.28) * size
        if gap is not None:
            for x0, w in spans:
                self.page.insert_text((x0, y), w, fontsize=size, fontname=font)
        else:
            for x0, w in reversed(spans):
                self.page.insert_text((x0, y), w, fontsize=size, fontname=font)
        return x

    def save(self):
        self.pdf.set_metadata({})  # no dates: the same script gives the same bytes
        self.pdf.save(HERE / f"{self.name}.pdf", garbage=4, deflate=True, no_new_id=True)
        truth = {"doc": self.doc_text, "file": f"{self.name}.pdf", "items": self.items}
        (HERE / f"{self.name}.expected.json").write_text(json.dumps(truth, indent=1) + "\n")


def side_by_side():
    c = Case(
        "side_by_side",
        "Two figures side by side, each with its own caption below: nearest-block pairing "
        "gives both pictures to one caption or crosses them.",
    )
    c.text((60, 60, 535, 150), BODY * 2)
    c.image((60, 160, 290, 330), 1)
    c.image((305, 160, 535, 330), 2)
    c.caption((60, 336, 290, 380), "Fig. 3.1", "Junctional naevus on the forearm of a child.")
    c.caption((305, 336, 535, 380), "Fig. 3.2", "Compound naevus with a raised centre.")
    c.expect((60, 160, 290, 330), "3.1")
    c.expect((305, 160, 535, 330), "3.2")
    c.text((60, 400, 535, 520), BODY * 2)
    c.save()


def full_width_two_column():
    c = Case(
        "full_width_two_column",
        "A full-width figure on a two-column page with the caption spanning both "
        "columns; the column text beside it must not be taken as its caption.",
    )
    c.text((60, 60, 290, 300), BODY * 3)
    c.text((305, 60, 535, 300), BODY * 3)
    c.image((60, 310, 535, 520), 3, w=480, h=210)
    c.caption(
        (60, 526, 535, 560),
        "Figure 12-4.",
        "Dysplastic naevus syndrome: numerous atypical naevi on the back of a 35-year-old woman.",
    )
    c.expect((60, 310, 535, 520), "12-4")
    c.text((60, 575, 290, 800), BODY * 3)
    c.text((305, 575, 535, 800), "As Figure 12-4 shows, the naevi vary in size. " + BODY * 2)
    c.save()


def caption_above():
    c = Case(
        "caption_above",
        "A book that sets captions above figures: two stacked figures, each caption must "
        "go to the picture below it, not the one above.",
    )
    c.caption((60, 60, 535, 80), "FIGURE 7.1", "Seborrhoeic keratosis with a stuck-on appearance.")
    c.image((150, 84, 445, 280), 4)
    c.expect((150, 84, 445, 280), "7.1")
    c.caption((60, 300, 535, 320), "FIGURE 7.2", "Solar lentigo on the dorsum of the hand.")
    c.image((150, 324, 445, 520), 5)
    c.expect((150, 324, 445, 520), "7.2")
    c.text((60, 540, 535, 700), BODY * 3)
    c.save()


def side_caption():
    c = Case("side_caption", "A caption in the margin beside its figure (atlas layout).")
    c.text((60, 60, 535, 150), BODY * 2)
    c.image((60, 160, 380, 400), 6)
    c.caption((392, 300, 535, 400), "Plate 4", "Nodular melanoma: a rapidly growing, dark blue-black nodule.")
    c.expect((60, 160, 380, 400), "4")
    c.text((60, 420, 535, 560), BODY * 2)
    c.save()


def composite_panels():
    c = Case(
        "composite_panels",
        "One raster holding two panels separated by a white gutter, with (a)/(b) in the "
        "caption: must give two records at the panels' boxes.",
    )
    a, b = texture(7, 200, 160), texture(8, 200, 160)
    comp = Image.new("RGB", (410, 160), (255, 255, 255))
    comp.paste(a, (0, 0))
    comp.paste(b, (210, 0))
    c.text((60, 60, 535, 130), BODY)
    c.page.insert_image(pymupdf.Rect(60, 140, 470, 300), stream=jpeg(comp))
    c.caption((60, 306, 535, 340), "Fig. 5.3", "Lentigo maligna. (a) Clinical view. (b) Dermoscopy.")
    c.expect((60, 140, 260, 300), "5.3", "a")
    c.expect((270, 140, 470, 300), "5.3", "b")
    c.save()


def separate_panels_letters():
    c = Case(
        "separate_panels_letters",
        "A 2x2 grid of separate images with 'A, … B, …' markers: four panel records in reading order.",
    )
    boxes = [(60, 70, 290, 230), (300, 70, 530, 230), (60, 236, 290, 396), (300, 236, 530, 396)]
    for i, b in enumerate(boxes):
        c.image(b, 10 + i)
        c.expect(b, "2.7", "abcd"[i])
    c.caption(
        (60, 402, 535, 450),
        "Figure 2.7.",
        "Melanoma in situ. A, Clinical photograph. B, Dermoscopy. "
        "C, Histology at low power. D, Histology at high power.",
    )
    c.text((60, 470, 535, 600), BODY * 2)
    c.save()


def tiled_image():
    c = Case(
        "tiled_image",
        "One photo stored as three horizontal strips placed edge to edge: one record, not three.",
    )
    img = texture(20, 300, 240)
    for k in range(3):
        strip = img.crop((0, 80 * k, 300, 80 * (k + 1)))
        c.page.insert_image(pymupdf.Rect(100, 100 + 80 * k, 400, 180 + 80 * k), stream=jpeg(strip))
    c.caption((100, 346, 500, 380), "Fig 3.2", "Halo naevus with a depigmented rim.")
    c.expect((100, 100, 400, 340), "3.2")
    c.save()


def vector_chart_and_decor():
    c = Case(
        "vector_chart_and_decor",
        "A vector-drawn chart with labels becomes a rendered figure; the rule under the "
        "running head and a framed 'Key points' box must not become figures; a paragraph opening "
        "'Figure 6.1 shows' is not a caption.",
    )
    c.page.draw_line((60, 46), (535, 46), width=0.5)
    c.text((60, 60, 535, 130), "Figure 6.1 shows the age distribution of melanoma in the registry. " + BODY)
    x0, y0, x1, y1 = 120, 150, 470, 350
    c.page.draw_line((x0, y1), (x1, y1), width=1)
    c.page.draw_line((x0, y0), (x0, y1), width=1)
    for i, h in enumerate([60, 120, 170, 140, 90]):
        c.page.draw_rect(
            pymupdf.Rect(x0 + 20 + 65 * i, y1 - h, x0 + 60 + 65 * i, y1),
            color=(0, 0, 0),
            fill=(0.3, 0.4, 0.7),
        )
    c.page.insert_text((x0 + 130, y0 + 8), "Cases by age", fontsize=8)
    c.expect((x0, y0, x1, y1), "6.1")
    c.caption((60, 372, 535, 400), "Fig. 6.1:", "Melanoma cases by decade of age.")
    c.page.draw_rect(pymupdf.Rect(60, 430, 535, 540), color=(0.2, 0.4, 0.8), width=1)
    c.text((70, 440, 525, 535), "Key points. " + BODY, size=9)
    c.save()


def springer_panels():
    c = Case(
        "springer_panels",
        "Springer style: the panel range is glued to the number ('Fig. 5.3a,b') and each subcaption opens with a "
        "bare letter; the label must not be read as a citation and the two images must become panels a and b.",
    )
    c.text((60, 60, 535, 130), BODY)
    c.image((60, 140, 295, 300), 30)
    c.image((300, 140, 535, 300), 31)
    c.caption(
        (60, 306, 535, 350),
        "Fig. 5.3a,b",
        "Lichen planus. a Violaceous papules on the wrist. b Wickham striae.",
    )
    c.expect((60, 140, 295, 300), "5.3", "a")
    c.expect((300, 140, 535, 300), "5.3", "b")
    c.save()


def word_per_line_caption():
    c = Case(
        "word_per_line_caption",
        "Every word drawn on its own (Elsevier's layout): PyMuPDF reports one line per word and starts a new "
        "block on the caption's second line; the label is followed only by spaces. The caption must be read "
        "to its end.",
    )
    c.text((60, 60, 535, 130), BODY)
    c.image((60, 140, 300, 300), 40)
    c.words(60, 316, "Figure 1")
    c.words(110, 316, "Overview of the rash. Rubelliform rash, on the third")
    c.words(60, 327, "day of clinical evolution. The right axillary region was spared.")
    c.expect((60, 140, 300, 300), "1", caption_endswith="The right axillary region was spared.")
    c.text((60, 350, 535, 450), BODY)
    c.save()


def glued_words():
    c = Case(
        "glued_words",
        "Words placed one by one with 0.15 em between them and no space characters: a plain extraction reads "
        "'Diffusemaculopapularrash…'; the caption must come out with its spaces.",
    )
    c.image((60, 80, 300, 240), 41)
    c.words(60, 256, "Fig. 2 Diffuse maculopapular rash on the trunk of a febrile patient.", gap=0.15)
    c.expect((60, 80, 300, 240), "2", caption_endswith="rash on the trunk of a febrile patient.")
    c.save()


def grid_row_col_labels():
    c = Case(
        "grid_row_col_labels",
        "A 3x2 grid named by row numbers left of the rows and column letters under the columns, the caption "
        "naming both: six panels 1a … 3b (IEEE Access, Fig. 10).",
    )
    for r in range(3):
        c.page.insert_text((64, 150 + 90 * r), f"{r + 1})", fontsize=9, fontname="tiro")
        for k in range(2):
            box = (80 + 130 * k, 80 + 90 * r, 200 + 130 * k, 160 + 90 * r)
            c.image(box, 50 + 2 * r + k, w=120, h=80)
            c.expect(box, "10", f"{r + 1}{'ab'[k]}")
    for k in range(2):
        c.page.insert_text((130 + 130 * k, 362), f"({'ab'[k]})", fontsize=9, fontname="tiro")
    c.caption(
        (60, 372, 535, 410),
        "Fig. 10.",
        "Significance maps for three networks: 1) DenseNet; 2) Inception; 3) ResNeXt. Original image (a). "
        "Significance map (b).",
    )
    c.save()


def header_logo():
    c = Case(
        "header_logo",
        "A journal logo in the running head, 30 pt above a figure: it must not be grown into the figure.",
    )
    c.page.insert_image(pymupdf.Rect(460, 18, 535, 32), stream=jpeg(texture(60, 150, 28)))
    c.image((60, 62, 535, 300), 61, w=475, h=238)
    c.caption((60, 306, 535, 330), "FIGURE 4.", "Scheme of the multimodal network.")
    c.expect((60, 62, 535, 300), "4")
    c.save()


def unsplit_panels():
    c = Case(
        "unsplit_panels",
        "The caption names panels (a) and (b) but the figure holds five unlettered pictures: kept whole, "
        "flagged unsplit_panels with the reason, never lettered wrongly.",
    )
    for k in range(5):
        c.image((60 + 95 * k, 80, 150 + 95 * k, 180), 70 + k, w=90, h=100)
    c.caption((60, 188, 535, 220), "Fig. 7", "Tiles of the lesion (a) and of the control (b).")
    c.expect((60, 80, 530, 180), "7", flags=["unsplit_panels"])
    c.save()


def column_major_letters():
    c = Case(
        "column_major_letters",
        "One 2x2 composite lettered down the columns, the letters burned into the pixels: a and b on the "
        "left, c and d on the right. Reading order would call the top-right panel b.",
    )
    from PIL import ImageDraw, ImageFont

    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]  # (column, row) of a, b, c, d
    comp = Image.new("RGB", (410, 330), (255, 255, 255))
    font = ImageFont.truetype(
        str(Path(__import__("matplotlib").get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"), 22
    )
    for i, (col, row) in enumerate(cells):
        x, y = 210 * col, 170 * row
        comp.paste(texture(80 + i, 200, 160), (x, y))
        d = ImageDraw.Draw(comp)
        d.rectangle([x + 4, y + 4, x + 30, y + 32], fill=(255, 255, 255))
        d.text((x + 9, y + 4), "abcd"[i], fill=(0, 0, 0), font=font)
    c.page.insert_image(pymupdf.Rect(60, 80, 470, 410), stream=jpeg(comp))
    s = 410 / 410
    for i, (col, row) in enumerate(cells):
        x0, y0 = 60 + 210 * col * s, 80 + 170 * row * s
        c.expect((x0, y0, x0 + 200 * s, y0 + 160 * s), "8", "abcd"[i])
    c.caption((60, 416, 535, 450), "Fig. 8", "Naevus. (a) Day 1. (b) Month 1. (c) Year 1. (d) Year 2.")
    c.save()


def main() -> None:
    for fn in (
        side_by_side,
        full_width_two_column,
        caption_above,
        side_caption,
        composite_panels,
        separate_panels_letters,
        tiled_image,
        vector_chart_and_decor,
        springer_panels,
        word_per_line_caption,
        glued_words,
        grid_row_col_labels,
        header_logo,
        unsplit_panels,
        column_major_letters,
    ):
        fn()
    print("golden cases written to", HERE)


if __name__ == "__main__":
    main()
