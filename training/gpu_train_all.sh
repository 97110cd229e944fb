#!/usr/bin/env bash
# On one CUDA GPU: train densenet121 and efficientnet_b1 from scratch at 224 px on the full training
# split with the adult-films recipe of the CPU runs (training/README.md, "DenseNet121"): square-root
# source draws (curated_sqrt), border swap, acquisition and framing shifts, distilled from the
# lite0_224_sqrt run when it is there; end to end in about 10 minutes (H100-class card, an
# estimate: no GPU has run it yet), writing everything into one folder:
#   OUT/curated/, OUT/curated_sqrt/   the split manifests (only when MANIFEST is not given and none exists)
#   OUT/cache/              decoded 224-px images, shared by both runs
#   OUT/densenet121/        train.log, metrics.jsonl, best.safetensors, best.json, last.pt, run.json
#   OUT/efficientnet_b1/    the same
#   OUT/loso_<source>/      the split without LOSO_SOURCE and both models trained on it (the
#                           leave-one-source-out twins that training.evaluate --loso-run needs)
#   OUT/summary.txt         best validation macro-F1 of each model
# Run it again after an interruption: a model whose folder holds last.pt resumes from it
# (checkpoints every CHECKPOINT_EVERY steps); bring OUT back before the machine goes.
#
# Environment overrides: MANIFEST (split_manifest.csv), PYTHON, EPOCHS_DENSENET, EPOCHS_B1,
# BATCH, LR, WORKERS, BORDER_SWAP (default 0.7), ACQUISITION_SHIFT (default 0.8), FRAMING_SHIFT
# (default 0.7), TEACHER (model card or run folder; default training/work/runs/lite0_224_sqrt when
# present, empty: no distillation), LOSO_TEACHER (for the twins, which must not learn the held-out
# source through a teacher: default none), CHECKPOINT_EVERY (default 200), LOSO_SOURCE (default
# covid_cxnet; empty: no twins), DEVICE (default cuda), LIMIT and THREADS (a trial on the CPU:
# DEVICE=cpu LIMIT=24 WORKERS=0 ...), DRY_RUN=1 (print the commands, run nothing).
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
MANIFEST="${MANIFEST:-$ROOT/training/work/curated_sqrt/split_manifest.csv}"
BATCH="${BATCH:-64}"
LR="${LR:-2e-3}"
WORKERS="${WORKERS:-8}"
BORDER_SWAP="${BORDER_SWAP:-0.7}"  # training.data.BorderSwap: surroundings from another image
ACQUISITION_SHIFT="${ACQUISITION_SHIFT:-0.8}"  # training.data.AcquisitionShift: resolution/sharpness/noise/JPEG
FRAMING_SHIFT="${FRAMING_SHIFT:-0.7}"  # training.data.FramingShift: crops, zoom-outs, rotations, markers
DEFAULT_TEACHER="$ROOT/training/work/runs/lite0_224_sqrt"
[[ -f "$DEFAULT_TEACHER/best.json" ]] || DEFAULT_TEACHER=""
TEACHER="${TEACHER-$DEFAULT_TEACHER}"
LOSO_TEACHER="${LOSO_TEACHER:-}"
CHECKPOINT_EVERY="${CHECKPOINT_EVERY:-200}"
DEVICE="${DEVICE:-cuda}"
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
    # As training/work/curated_sqrt was made: age-balanced curation, then square-root source draws.
    run "$PYTHON" -m training.curate --manifest "$SHARED_MANIFEST" --out "$OUT/curated"
    run "$PYTHON" -m training.loso_manifest --manifest "$OUT/curated/split_manifest.csv" --source-power 0.5 \
        --out "$OUT/curated_sqrt"
    MANIFEST="$OUT/curated_sqrt/split_manifest.csv"
fi

train() {  # train ARCH EPOCHS MANIFEST RUN_DIR TEACHER
    local extra=()
    [[ -n "$5" ]] && extra+=(--teacher "$5" --distill-weight 0.5 --distill-temperature 2)
    [[ -n "${LIMIT:-}" ]] && extra+=(--limit "$LIMIT")
    [[ -n "${THREADS:-}" ]] && extra+=(--threads "$THREADS")
    [[ -f "$4/last.pt" ]] && extra+=(--resume "$4/last.pt")
    run "$PYTHON" -m training.train --manifest "$3" --arch "$1" --pretrained none --size 224 \
        --epochs "$2" --batch-size "$BATCH" --lr "$LR" --weight-decay 0.05 --warmup-epochs 2 \
        --label-smoothing 0.1 --border-swap "$BORDER_SWAP" --acquisition-shift "$ACQUISITION_SHIFT" \
        --framing-shift "$FRAMING_SHIFT" --patience 8 --device "$DEVICE" --workers "$WORKERS" --seed 0 \
        --checkpoint-every "$CHECKPOINT_EVERY" --cache-dir "$OUT/cache" --out "$4" "${extra[@]}"
}

SECONDS=0
train densenet121 "$EPOCHS_DENSENET" "$MANIFEST" "$OUT/densenet121" "$TEACHER"
train efficientnet_b1 "$EPOCHS_B1" "$MANIFEST" "$OUT/efficientnet_b1" "$TEACHER"
if [[ -n "$LOSO_SOURCE" ]]; then
    LOSO_DIR="$OUT/loso_$LOSO_SOURCE"
    run "$PYTHON" -m training.loso_manifest --manifest "$MANIFEST" --exclude-source "$LOSO_SOURCE" --source-power 0.5 \
        --out "$LOSO_DIR"
    train densenet121 "$EPOCHS_DENSENET" "$LOSO_DIR/split_manifest.csv" "$LOSO_DIR/densenet121" "$LOSO_TEACHER"
    train efficientnet_b1 "$EPOCHS_B1" "$LOSO_DIR/split_manifest.csv" "$LOSO_DIR/efficientnet_b1" "$LOSO_TEACHER"
fi

if [[ "${DRY_RUN:-0}" != "1" ]]; then
    for arch in densenet121 efficientnet_b1; do
        "$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1]))["validation_metrics"]; print(sys.argv[2], "best val macro-F1 %.4f accuracy %.4f (epoch %d)" % (m["macro_f1"], m["accuracy"], m["epoch"]))' \
            "$OUT/$arch/best.json" "$arch"
    done | tee "$OUT/summary.txt"
    echo "total ${SECONDS} s" | tee -a "$OUT/summary.txt"
fi
