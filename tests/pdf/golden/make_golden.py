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

    def expect(self, rect, label, panel=None):
        self.items.append(
            {"page": 1, "bbox": [float(v) for v in rect], "figure_label": label, "panel": panel}
        )

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
    ):
        fn()
    print("golden cases written to", HERE)


if __name__ == "__main__":
    main()
