#!/usr/bin/env bash
# The newcomer's whole path on CPU, in a few minutes: a tiny train on Fashion-MNIST, a latency table
# for this CPU, an evolutionary search against it, and the export of the front's most accurate child.
#
#     bash scripts/smoke.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: bash scripts/smoke.sh OUT_DIR}
cd "$(dirname "$0")/.."
SUPERNET=${SUPERNET:-.venv/bin/supernet}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
start=$(date +%s)

echo "== 1/4 train: a tiny supernet on 4,000 Fashion-MNIST images (1 epoch)"
$SUPERNET train --run-dir "$OUT/run" data.subset=4000 data.val_size=1000 data.val_subset=1000 \
    data.test_subset=2000 epochs=1 data.batch_size=64 val.middle_children=0 val.calib_images=512 log.every=10

echo "== 2/4 lut build: block latencies of the space measured on this CPU"
$SUPERNET lut build --target cpu --out "$OUT/lut.json" repeats=20 warmup=3 fit.children=12

echo "== 3/4 search: accuracy vs latency front under the table"
$SUPERNET search "$OUT/run" --target cpu --lut "$OUT/lut.json" population=12 generations=3 \
    evaluation.calib_images=256 evaluation.val_images=500

echo "== 4/4 export: the most accurate child of the front"
$SUPERNET export "$OUT/run" --pick best --target cpu --out "$OUT/export"

echo
echo "run directory:   $OUT/run (config.yaml, metrics.jsonl, checkpoints/)"
echo "latency table:   $OUT/lut.json"
echo "search results:  $OUT/run/search/cpu/ (pareto.json, candidates.jsonl, pareto.png)"
echo "exported model:  $OUT/export/ (weights.safetensors, model.pt2, model.ts, model.onnx, card.json)"
echo "smoke path took $(( $(date +%s) - start )) s"
