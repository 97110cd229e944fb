#!/usr/bin/env bash
# On one CUDA GPU: train densenet121 and efficientnet_b1 from scratch at 224 px on the full training
# split, end to end in about 10 minutes (H100-class card), writing everything into one folder:
#   OUT/curated/            the split manifest (only when MANIFEST is not given and none exists)
#   OUT/cache/              decoded 224-px images, shared by both runs
#   OUT/densenet121/        train.log, metrics.jsonl, best.safetensors, best.json, last.pt, run.json
#   OUT/efficientnet_b1/    the same
#   OUT/loso_<source>/      the split without LOSO_SOURCE and both models trained on it (the
#                           leave-one-source-out twins that training.evaluate --loso-run needs)
#   OUT/summary.txt         best validation macro-F1 of each model
#
# Environment overrides: MANIFEST (split_manifest.csv), PYTHON, EPOCHS_DENSENET, EPOCHS_B1,
# BATCH, LR, WORKERS, BORDER_SWAP (default 0.7), ACQUISITION_SHIFT (default 0.8),
# LOSO_SOURCE (default covid_cxnet; empty: no twins), DRY_RUN=1 (print the commands, run nothing).
set -euo pipefail

usage() {
    echo "usage: $0 OUT_DIR    (train densenet121 and efficientnet_b1 at 224 px on a CUDA GPU into OUT_DIR)"
}

if [[ $# -ne 1 ]]; then
    usage >&2
    exit 2
fi
if [[ "$1" == "-h" || "$1" == "--help" ]]; then
    usage
    exit 0
fi

OUT="$1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
SHARED_MANIFEST="${CXR_DATA:-$ROOT/../shared/data}/cxr3/manifest.csv"
MANIFEST="${MANIFEST:-$ROOT/training/work/curated/split_manifest.csv}"
BATCH="${BATCH:-64}"
LR="${LR:-2e-3}"
WORKERS="${WORKERS:-8}"
BORDER_SWAP="${BORDER_SWAP:-0.7}"  # training.data.BorderSwap: surroundings from another image
ACQUISITION_SHIFT="${ACQUISITION_SHIFT:-0.8}"  # training.data.AcquisitionShift: resolution/sharpness/noise/JPEG
# From scratch, ~9k training images: about 2 min per model at these epoch counts with AMP.
EPOCHS_DENSENET="${EPOCHS_DENSENET:-24}"
EPOCHS_B1="${EPOCHS_B1:-30}"
LOSO_SOURCE="${LOSO_SOURCE-covid_cxnet}"

run() {
    echo "+ $*"
    if [[ "${DRY_RUN:-0}" != "1" ]]; then
        "$@"
    fi
}

cd "$ROOT"
run mkdir -p "$OUT"
if [[ ! -f "$MANIFEST" ]]; then
    run "$PYTHON" -m training.curate --manifest "$SHARED_MANIFEST" --out "$OUT/curated"
    MANIFEST="$OUT/curated/split_manifest.csv"
fi

train() {  # train ARCH EPOCHS MANIFEST RUN_DIR
    run "$PYTHON" -m training.train --manifest "$3" --arch "$1" --pretrained none --size 224 \
        --epochs "$2" --batch-size "$BATCH" --lr "$LR" --weight-decay 0.05 --warmup-epochs 2 \
        --label-smoothing 0.1 --border-swap "$BORDER_SWAP" \
        --acquisition-shift "$ACQUISITION_SHIFT" --patience 8 --device cuda --workers "$WORKERS" --seed 0 \
        --cache-dir "$OUT/cache" --out "$4"
}

SECONDS=0
train densenet121 "$EPOCHS_DENSENET" "$MANIFEST" "$OUT/densenet121"
train efficientnet_b1 "$EPOCHS_B1" "$MANIFEST" "$OUT/efficientnet_b1"
if [[ -n "$LOSO_SOURCE" ]]; then
    LOSO_DIR="$OUT/loso_$LOSO_SOURCE"
    run "$PYTHON" -m training.loso_manifest --manifest "$MANIFEST" --exclude-source "$LOSO_SOURCE" --out "$LOSO_DIR"
    train densenet121 "$EPOCHS_DENSENET" "$LOSO_DIR/split_manifest.csv" "$LOSO_DIR/densenet121"
    train efficientnet_b1 "$EPOCHS_B1" "$LOSO_DIR/split_manifest.csv" "$LOSO_DIR/efficientnet_b1"
fi

if [[ "${DRY_RUN:-0}" != "1" ]]; then
    for arch in densenet121 efficientnet_b1; do
        "$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1]))["validation_metrics"]; print(sys.argv[2], "best val macro-F1 %.4f accuracy %.4f (epoch %d)" % (m["macro_f1"], m["accuracy"], m["epoch"]))' \
            "$OUT/$arch/best.json" "$arch"
    done | tee "$OUT/summary.txt"
    echo "total ${SECONDS} s" | tee -a "$OUT/summary.txt"
fi
