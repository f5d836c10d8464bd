"""Coverage and speed of ``mmskin convert-public`` on MM-Skin's real classification CSVs (no timing in tests).

    .venv/bin/python benchmarks/vqa/convert_public.py [--data DIR]

Prints, per MM-Skin test CSV: rows, share of rows whose label resolves to the taxonomy, time to read + label,
question-generation throughput; match_class throughput on answer-like text; and an end-to-end convert_public run
on the 70 real HAM10000 images (labels from ../shared/data/images/labels.csv in HAM10000_metadata.csv's layout).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import DEFAULT_DATA, add_data_argument, save_printed  # noqa: E402

from mmskin import __version__  # noqa: E402
from mmskin.stage import Problems  # noqa: E402
from mmskin.taxonomy import list_taxonomies, load_taxonomy  # noqa: E402
from mmskin.vqa.metadata import ConvertTally  # noqa: E402
from mmskin.vqa.public import ConvertConfig, make_samples, read_items, run  # noqa: E402

DATA = DEFAULT_DATA  # set from --data by main()
CLS = DATA / "mmskin" / "Dataframe" / "test" / "classification"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    args = ap.parse_args(argv)
    global DATA, CLS
    DATA, CLS = args.data, args.data / "mmskin" / "Dataframe" / "test" / "classification"
    return save_printed("vqa", "convert_public", bench, args)


def bench() -> int:
    if not CLS.is_dir():
        print(f"../shared/data not present: {CLS}")
        return 1
    print(f"mmskin {__version__}, python {sys.version.split()[0]}")
    by_csv = {t.mmskin_csv: t for t in map(load_taxonomy, list_taxonomies()) if t.mmskin_csv}
    print(f"{'csv':28} {'taxonomy':22} {'rows':>6} {'labelled':>9} {'read s':>7} {'samples/s':>10}")
    tot_rows = tot_lab = 0
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(CLS.glob("*.csv")):
            tax = by_csv.get(f.name) or load_taxonomy(f.name.split("_test")[0].split("_val")[0])
            rep, problems = ConvertTally(), Problems()
            t0 = time.perf_counter()
            items = list(read_items(tax, f, Path(tmp), None, rep, problems))
            t_read = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = sum(len(make_samples(tax, it, it.image, 0)) for it in items)
            t_gen = time.perf_counter() - t0
            tot_rows += rep.rows
            tot_lab += len(items)
            print(
                f"{f.name:28} {tax.name:22} {rep.rows:6d} {100 * len(items) / max(rep.rows, 1):8.2f}% "
                f"{t_read:7.2f} {n / t_gen:10.0f}"
                + (f"  unlabelled {dict(rep.unlabelled)}" if rep.unlabelled else "")
                + (f"  errors {len(problems)}" if problems else "")
            )
        print(f"all CSVs: {tot_lab}/{tot_rows} rows labelled ({100 * tot_lab / tot_rows:.2f}%)")

        ham = load_taxonomy("ham10000")
        texts = [f"The diagnosis is {c.name.lower()}." for c in ham.classes] * 2000
        t0 = time.perf_counter()
        ok = sum(ham.match_class(t) is not None for t in texts)
        dt = time.perf_counter() - t0
        print(
            f"match_class: {len(texts) / dt:.0f} answers/s on HAM10000 sentences ({ok}/{len(texts)} resolved)"
        )

        img_dir = DATA / "images" / "dermoscopy" / "ham10000"
        meta = Path(tmp) / "HAM10000_metadata.csv"
        with open(DATA / "images" / "labels.csv", newline="") as fi, open(meta, "w", newline="") as fo:
            w = csv.writer(fo)
            w.writerow(["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
            for i, r in enumerate(x for x in csv.DictReader(fi) if "/ham10000/" in x["file"]):
                w.writerow(
                    [
                        f"HAM_{i:07d}",
                        Path(r["file"]).stem,
                        r["label_code"],
                        "histo",
                        r["age"],
                        r["sex"],
                        r["site"],
                    ]
                )
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = run(ConvertConfig("ham10000", meta, images=img_dir, out=Path(tmp) / "ham.jsonl"))
            runs.append(time.perf_counter() - t0)
        med = statistics.median(runs)
        print(
            f"end to end, HAM10000 70 real images: {result.counts['samples']} samples in {med * 1000:.0f} ms "
            f"(median of 5), {result.counts['images'] / med:.0f} images/s, {result.summary}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
