"""PDF stage: pages → captions → figures → panels → records (see ``mmskin.pdf.build``).

PyMuPDF ≥ 2 imports its optional ONNX layout model (pymupdf-layout) on ``import pymupdf`` when that package is
installed: about a second and a few hundred MB per process, and it changes nothing we use. It is kept out unless
``MMSKIN_PYMUPDF_LAYOUT=1`` (set it to compare against the layout model in benchmarks).
"""

import os
import sys

if os.environ.get("MMSKIN_PYMUPDF_LAYOUT") != "1" and "pymupdf" not in sys.modules:
    sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
