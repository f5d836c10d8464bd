#!/usr/bin/env bash
# Run every data stage (build, curate, report, vqa, three exports, eval on predictions and on the dummy model)
# on three inputs -- the bundled demo, ../shared/data/pdfs/real_dermatology and the generated book set -- and
# list the sha256 of every output file. Used to show that a refactor changes no output:
#
#   scripts/snapshot_outputs.sh . /tmp/snap_before      # on the old commit (a worktree)
#   scripts/snapshot_outputs.sh . /tmp/snap_after       # on the new one
#   python scripts/compare_outputs.py /tmp/snap_before /tmp/snap_after
#
# PYTHON (default: the repository's .venv) runs mmskin from REPO/src. The book set is generated first if
# benchmarks/_work/bookset is missing.
set -uo pipefail
REPO=$(cd "$1" && pwd); OUT=$2
PY=${PYTHON:-$REPO/.venv/bin/python}
DATA=$(cd "$REPO/.." && pwd)/shared/data
BOOKSET=$REPO/benchmarks/_work/bookset
export PYTHONPATH=$REPO/src
[ -d "$BOOKSET" ] || $PY "$REPO/benchmarks/pdf/make_bookset.py" --out "$BOOKSET" --seed 0 >/dev/null
rm -rf "$OUT"; mkdir -p "$OUT"
M() { $PY -m mmskin "$@" >>"$OUT/log.txt" 2>&1; echo "rc=$? mmskin $*" >>"$OUT/log.txt"; }
for name in demo real book; do
  case $name in
    demo) IN=$REPO/src/mmskin/data/demo/sample_textbook.pdf;;
    real) IN=$DATA/pdfs/real_dermatology;;
    book) IN=$BOOKSET;;
  esac
  D=$OUT/$name
  M build "$IN" --out "$D" --workers 2 --quiet
  M curate "$D" --workers 2 --quiet
  M report "$D" --out "$D/report"
  M vqa "$D" --quiet
  M export "$D" --subset vqa --format llava --out "$D/exports/vqa_llava.json" --quiet
  M export "$D" --subset captions --format hf --out "$D/exports/captions.parquet" --quiet
  M export "$D" --subset demographics --format mmskin-csv --out "$D/exports/demo.csv" --quiet
done
$PY - "$OUT" <<'PYEOF' >>"$OUT/log.txt" 2>&1
import csv, json, sys
out = sys.argv[1]
rows = [json.loads(line) for line in open(f"{out}/demo/vqa.jsonl")]
with open(f"{out}/preds.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["image", "question", "answer", "prediction"])
    for i, r in enumerate(rows):  # deterministic perturbation: the first 3-7 words of the answer
        w.writerow([r["image"], r["question"], r["answer"], " ".join(r["answer"].split()[: 3 + i % 5])])
PYEOF
M eval vqa --predictions "$OUT/preds.csv" --dataset "$OUT/demo" --out "$OUT/eval_std.json" --bertscore-model minilm --bootstrap 50
M eval vqa --predictions "$OUT/preds.csv" --dataset "$OUT/demo" --out "$OUT/eval_compat.json" --compat mmskin --bertscore-model minilm --bootstrap 50
M eval vqa --data "$OUT/demo/vqa.jsonl" --images "$OUT/demo" --dataset "$OUT/demo" --model dummy:echo --out "$OUT/eval_dummy.json" --bertscore-model minilm --bootstrap 20 --quiet
(cd "$OUT" && find . -type f ! -name log.txt ! -path "*/.build/*" -print0 | sort -z | xargs -0 sha256sum) > "$OUT.sha256"
echo "snapshot: $(wc -l < "$OUT.sha256") files -> $OUT.sha256 (commands and exit codes in $OUT/log.txt)"
