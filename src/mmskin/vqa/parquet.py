"""The ``hf`` format of ``mmskin export`` / ``mmskin import``: Parquet with a Hugging Face ``Image`` feature
(images embedded as ``{bytes, path}``), readable by ``datasets.load_dataset("parquet", ...)``. Needs pyarrow.

    >>> from mmskin.vqa.parquet import hf_features
    >>> hf_features({"image": "image", "question": "string"})["info"]["features"]["image"]
    {'_type': 'Image'}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..records import RecordError, new_temp_file, resolve_in_root, store_content
from ..stage import Problems
from .samples import ExportError, Tally


def hf_features(columns: dict[str, str]) -> dict[str, Any]:
    """The 'huggingface' schema metadata that makes `datasets` decode the image column as an Image feature."""
    feats = {}
    for col, dtype in columns.items():
        feats[col] = {"_type": "Image"} if dtype == "image" else {"dtype": dtype, "_type": "Value"}
    return {"info": {"features": feats}}


def write_parquet(
    out: Path,
    columns: dict[str, str],
    rows: Iterable[tuple[dict, Path]],
    tally: Tally,
    problems: Problems,
    advance: Callable[[int], None],
    batch_rows: int,
) -> None:
    """Write (row, image file) pairs as Parquet at ``out`` (atomically), ``batch_rows`` rows per write; an image
    that cannot be read is one problem and its row is left out."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("--format hf needs pyarrow: pip install 'mmskin[export]'") from None
    img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [
        pa.field(c, img_type if t == "image" else pa.float64() if t == "float64" else pa.string())
        for c, t in columns.items()
    ]
    schema = pa.schema(fields, metadata={"huggingface": json.dumps(hf_features(columns))})
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp_file(out)  # mode from the umask, like every file mmskin writes
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row, full in rows:
                advance(1)
                try:
                    data = full.read_bytes()
                except OSError as e:
                    problems.add(full, f"cannot read ({e.strerror})")
                    continue
                rec = {c: row.get(c) for c in columns}
                rec["image"] = {"bytes": data, "path": row["image"]}
                batch.append(rec)
                tally.by_question_type[row.get("question_type") or "none"] += 1
                if len(batch) >= batch_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    tally.rows += len(batch)
                    batch = []
            if batch or tally.rows == 0:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                tally.rows += len(batch)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- import --------------------------------------------------------------------------------------------------
def parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) of a Parquet file with image, question and answer columns; ExportError when it is not one."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("importing hf parquet needs pyarrow: pip install 'mmskin[export]'") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise ExportError(f"{path}: not a Parquet file ({type(e).__name__})") from None
    names = set(pf.schema_arrow.names)
    if not {"image", "question", "answer"} <= names:
        raise ExportError(f"{path}: needs the columns image, question, answer (got {sorted(names)})")
    n = 0
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            yield f"{path}[{n}]", row
            n += 1


def is_file_in(root: Path, rel: str) -> bool:
    try:
        return resolve_in_root(root, rel).is_file()
    except RecordError:
        return False


def image_of(img: Any, root: Path) -> str | None:
    """The relative path of an image cell: a path string, or ``{path, bytes}`` whose bytes are stored under
    ``root`` (content-addressed, images/<sha[:2]>/<sha>.<ext>) unless ``path`` is already a file there."""
    if isinstance(img, str):
        return img or None
    if isinstance(img, dict):
        p, data = img.get("path"), img.get("bytes")
        if p and (data is None or is_file_in(root, p)):
            return p
        if data:
            return store_image(root, data, p)
    return None


def store_image(root: Path, data: bytes, name: str | None) -> str:
    return store_content(root, data, PurePosixPath(name or "").suffix.lower() or _sniff_ext(data))


def _sniff_ext(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    return ".bin"
