#!/usr/bin/env bash
# Every CUDA path in one command, in at most 8 minutes on one GPU: run it first on a GPU machine.
# One line per check (`check NAME: ok|FAIL|skip (why)`), then a summary; logs stay in OUT_DIR.
#
#     bash scripts/gpu_check.sh [OUT_DIR]
#
# Without a CUDA device it prints one line and exits 0. Exit 1 when a check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SUPERNET=${SUPERNET:-.venv/bin/supernet}
BUDGET_S=${GPU_CHECK_BUDGET_S:-470}  # the whole script, under 8 minutes; a check gets what is left

if ! gpus=$($PY -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" \
        2>/dev/null) || [ "$gpus" = 0 ]; then
    echo "gpu check: skip (no CUDA device visible to torch here; run scripts/gpu_check.sh on a GPU machine)"
    exit 0
fi
OUT=${1:-$(mktemp -d -t supernet-gpu-check.XXXX)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
start=$(date +%s)
passed=0 failed=0 skipped=0

tally() {  # tally LINE: print a check line and count it
    echo "$1"
    case "$1" in
        *": ok"*) passed=$((passed + 1)) ;;
        *": skip"*) skipped=$((skipped + 1)) ;;
        *) failed=$((failed + 1)) ;;
    esac
}

left() { echo $((BUDGET_S - ($(date +%s) - start))); }

# run NAME LIMIT_S CMD...: run CMD with a time limit (capped by what is left of the budget), log in OUT/NAME.log.
# CMD's own `check ...` lines are the result; a CMD that prints none gets one line from its exit status.
run() {
    local name=$1 limit=$2 log="$OUT/$1.log" remaining rc
    shift 2
    remaining=$(left)
    if [ "$remaining" -lt 20 ]; then
        tally "check $name: skip (the ${BUDGET_S} s budget is spent)"
        return
    fi
    [ "$limit" -gt "$remaining" ] && limit=$remaining
    timeout "$limit" "$@" >"$log" 2>&1
    rc=$?
    if grep -q "^check " "$log"; then
        while IFS= read -r line; do tally "$line"; done < <(grep "^check " "$log")
        [ "$rc" -ne 0 ] && ! grep -q "^check .*: FAIL" "$log" && tally "check $name: FAIL (exit $rc; $log)"
    elif [ "$rc" -eq 0 ]; then
        tally "check $name: ok ($(tail -n 1 "$log" | cut -c1-160))"
    elif [ "$rc" -eq 124 ]; then
        tally "check $name: FAIL (timed out after ${limit} s; $log)"
    else
        tally "check $name: FAIL (exit $rc: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-160); $log)"
    fi
}

run cuda_tests 150 $PY -m pytest -q -p no:xdist -p no:cacheprovider -m cuda tests
run sandwich 150 $PY scripts/gpu_check.py sandwich "$OUT"
run gpu_decode 60 $PY scripts/gpu_check.py decode "$OUT"

# A short run of the whole loop on the GPU (validation, checkpoints); export times its max child below.
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    data=(data.subset=2048 data.val_size=500 data.test_subset=500)
else
    data=(data.name=synthetic data.val_size=256)  # no Fashion-MNIST on this machine
fi
run train_gpu 60 $SUPERNET train --run-dir "$OUT/run" device=cuda "${data[@]}" data.batch_size=128 \
    max_steps=15 val.middle_children=0 val.calib_images=256 log.every=5 log.progress=false data.num_workers=2
# The image-folder path with crops decoded by nvJPEG, on Fashion-MNIST written as JPEG class folders.
if [ "${data[0]}" = data.name=synthetic ]; then
    tally "check imagefolder_gpu: skip (no Fashion-MNIST in /usr/share/datasets/fashion-mnist to write)"
else
    run imagefolder_gpu 60 bash -c "$PY scripts/write_imagefolder.py '$OUT/fm_jpeg' --train-images 1024 \
        --val-size 256 --test-images 500 --format jpeg && $SUPERNET train --run-dir '$OUT/run_folder' device=cuda \
        data.name=imagefolder data.root='$OUT/fm_jpeg' data.val_size=256 \
        data.decode=cuda data.batch_size=128 max_steps=8 val.middle_children=0 val.calib_images=256 \
        log.progress=false data.num_workers=2"
fi

if [ "$gpus" -ge 2 ]; then
    run torchrun_2gpu 90 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m supernet_cli.main \
        train --run-dir "$OUT/run_ddp" "${data[@]}" data.batch_size=64 max_steps=10 val.middle_children=0 \
        val.calib_images=256 log.progress=false
else
    tally "check torchrun_2gpu: skip (one GPU here; it needs two)"
fi

# The GPU latency table in the GPU runtime: TensorRT where installed, else onnxruntime's CUDA provider.
runtime=tensorrt
$PY -c "import tensorrt" 2>/dev/null || runtime=onnxruntime
run lut_gpu 120 $SUPERNET lut build --target gpu --runtime "$runtime" --out "$OUT/lut.json" repeats=12 warmup=3 \
    sweeps=1 calibration.children=4
lut_option=()
[ -f "$OUT/lut.json" ] && lut_option=(--lut "$OUT/lut.json")
arch=$($PY -c "from supernet.config import CONFIG_DIR; from supernet.space import SearchSpace; \
print(SearchSpace.from_yaml(CONFIG_DIR / 'space' / 'small.yaml').max())")
run export_gpu 90 bash -c "$SUPERNET export '$OUT/run' --arch '$arch' --target gpu --device cuda \
    --checkpoint last --out '$OUT/export' ${lut_option[*]} && $PY scripts/gpu_check.py card '$OUT/export'"

echo "gpu check: $passed ok, $failed FAIL, $skipped skip in $(( $(date +%s) - start )) s on ${gpus} GPU(s)" \
    "(lut runtime $runtime; logs in $OUT)"
[ "$failed" -eq 0 ]
