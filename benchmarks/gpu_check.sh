#!/usr/bin/env bash
# Every GPU measurement of the toolkit in one go, on one GPU, within 8 minutes:
#
#   1. forward + CAM img/s, bf16 autocast + channels_last, ResNet-50 14x14 and 7x7 layouts
#      (benchmarks/bench_cam.py GPU section; target >= 10,000 img/s on an H100-class GPU);
#   2. `wsol evaluate` end to end on 20,000 synthetic 224-pixel JPEGs next to a forward-only pass
#      over the same DataLoader (benchmarks/bench_evaluate_overhead.py; target <= 30 s, and the
#      sweeps keeping pace with the GPU: evaluate / forward-only close to 1);
#   3. 200 training steps of `wsol train` (ResNet-50, CutMix, bf16 autocast, channels_last;
#      benchmarks/bench_train.py).
#
# Usage:
#   bash benchmarks/gpu_check.sh                 # on the GPU machine (device cuda)
#   bash benchmarks/gpu_check.sh --dry-run       # on a CPU, tiny sizes: checks that it all runs
#   options: --device DEV (default cuda; cpu with --dry-run), --runs N (default 3),
#            --out DIR (default $OUT, else ./gpu_check_out), --python PY
#
# Every figure is the median and range of N runs with the load average. The GPU lines start with
# "GPU-CHECK"; the whole output is also in DIR/gpu_check.log. Nothing needs grad-cam (the
# dry run hides it to prove that), nor the network (untrained weights, generated data). The
# device always comes from --device. The repository root goes on PYTHONPATH, so an installed
# `wsol` is not needed; the Python must have torch, torchvision, numpy, opencv, pillow, pyyaml,
# tqdm (numba is optional: without it the exact OpenCV sweep is used and the result says so).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
DRY=0
DEVICE=""
RUNS=3
OUTDIR="${OUT:-$REPO/gpu_check_out}"
PY="${PYTHON:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --device) DEVICE="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --out) OUTDIR="$2"; shift ;;
    --python) PY="$2"; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$PY" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
if [ -z "$DEVICE" ]; then
  if [ "$DRY" = 1 ]; then DEVICE=cpu; else DEVICE=cuda; fi
fi
mkdir -p "$OUTDIR"
WORK="$OUTDIR/work"
mkdir -p "$WORK"
LOG="$OUTDIR/gpu_check.log"
: > "$LOG"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [ "$DRY" = 1 ]; then
  # tiny sizes; and a grad-cam that cannot be imported, as on the GPU machine
  CAM_BATCH=1; CAM_ITERS=3; CAM_SIZE=64
  EVAL_N=24; EVAL_BATCH=8; EVAL_CLASSES=4; EVAL_ARCH=small_cnn
  TRAIN_STEPS=3; TRAIN_BATCH=4; TRAIN_CLASSES=4; TRAIN_ARCH=small_cnn; TRAIN_LOADERS=1
  [ "$RUNS" -gt 1 ] && RUNS=1
  BLOCK="$WORK/no_gradcam"
  mkdir -p "$BLOCK/pytorch_grad_cam"
  echo 'raise ImportError("grad-cam is not installed on the GPU machine (simulated by gpu_check.sh --dry-run)")' \
    > "$BLOCK/pytorch_grad_cam/__init__.py"
  export PYTHONPATH="$BLOCK:$PYTHONPATH"
  LIMIT_CAM=300; LIMIT_EVAL=600; LIMIT_TRAIN=600
else
  CAM_BATCH=256; CAM_ITERS=20; CAM_SIZE=224
  EVAL_N=20000; EVAL_BATCH=256; EVAL_CLASSES=1000; EVAL_ARCH=resnet50
  TRAIN_STEPS=200; TRAIN_BATCH=64; TRAIN_CLASSES=1000; TRAIN_ARCH=resnet50; TRAIN_LOADERS=8
  # per-step limits, 450 s together with the kernel compile (90 s at most, ~30 s when it
  # compiles, ~1 s from the cache): the whole check stays within 8 minutes
  LIMIT_CAM=60; LIMIT_EVAL=210; LIMIT_TRAIN=90
fi

say() { echo "$*" | tee -a "$LOG"; }
step() {  # step NAME LIMIT_S CMD...: run with a time limit, output to the screen and the log
  local name="$1" limit="$2"; shift 2
  say ""
  say "=== $name (limit ${limit} s): $*"
  local t0=$SECONDS rc=0
  timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=${PIPESTATUS[0]}
  say "=== $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
  return 0
}
FAILED=0

START=$SECONDS
say "gpu_check.sh $( [ "$DRY" = 1 ] && echo '--dry-run ' )device $DEVICE, runs $RUNS, out $OUTDIR, $(date -u '+%Y-%m-%d %H:%M UTC')"
"$PY" - "$DEVICE" <<'EOF' 2>&1 | tee -a "$LOG"
import importlib.util, os, platform, sys
import torch
dev = torch.device(sys.argv[1])
have = {m: importlib.util.find_spec(m) is not None for m in ("numba", "cv2")}
try:
    import pytorch_grad_cam  # noqa: F401  (only the grad-cam CAM methods need it; none used here)
    have["grad-cam"] = True
except ImportError:
    have["grad-cam"] = False
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else str(dev)
print(f"GPU-CHECK machine: {name}; torch {torch.__version__}, cuda available {torch.cuda.is_available()}, "
      f"Python {platform.python_version()}, {len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.2f}; "
      + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in have.items()))
if dev.type == "cuda" and not torch.cuda.is_available():
    sys.exit("device cuda asked for but torch.cuda.is_available() is False")
EOF

# numba compiles the sweep kernel for this CPU on its first use (tens of seconds) and caches it in
# eval/__pycache__ (or NUMBA_CACHE_DIR): do it here, once, outside every timed step
step "0. sweep kernel compile / cache load" 90 \
  "$PY" -c "import time; t = time.perf_counter(); import eval.sweep as s; s.warm_up(); print(f'GPU-CHECK sweep kernel ready: {time.perf_counter() - t:.1f} s (numba: {s.HAVE_NUMBA})')"

step "1. forward + CAM, bf16, channels_last, 14x14 and 7x7" "$LIMIT_CAM" \
  "$PY" benchmarks/bench_cam.py --skip-cpu --gpu-device "$DEVICE" --gpu-batch-size "$CAM_BATCH" \
  --gpu-iters "$((CAM_ITERS > RUNS ? CAM_ITERS : RUNS))" --gpu-size "$CAM_SIZE"

step "2. wsol evaluate on $EVAL_N JPEGs 224x224 vs forward only" "$LIMIT_EVAL" \
  "$PY" benchmarks/bench_evaluate_overhead.py --device "$DEVICE" --n "$EVAL_N" --classes "$EVAL_CLASSES" \
  --arch "$EVAL_ARCH" --batch-size "$EVAL_BATCH" --size-range 224 224 --runs "$RUNS" --workdir "$WORK/eval"

step "3. $TRAIN_STEPS training steps, bf16" "$LIMIT_TRAIN" \
  "$PY" benchmarks/bench_train.py --device "$DEVICE" --steps "$TRAIN_STEPS" --batch-size "$TRAIN_BATCH" \
  --classes "$TRAIN_CLASSES" --arch "$TRAIN_ARCH" --loader-workers "$TRAIN_LOADERS" --runs "$RUNS" \
  --workdir "$WORK/train"

say ""
say "=== summary ($((SECONDS - START)) s in all)"
grep -h "^GPU-CHECK" "$LOG" || true
line() { grep -h "$1" "$LOG" | tail -1; }
say "GPU-CHECK evaluate $EVAL_N JPEGs end to end: $(line '^wsol evaluate (process)' | sed 's/^[^:]*: //') (target <= 30 s on the GPU)"
say "GPU-CHECK evaluate / forward-only: $(line '^overhead evaluate / forward' | sed 's/^[^:]*: //')"
say "GPU-CHECK forward-only pass $EVAL_N JPEGs: $(line '^forward only (process)' | sed 's/^[^:]*: //')"
say "GPU-CHECK train $TRAIN_STEPS steps: $(line '^training images/s' | sed 's/^[^:]*: //')"
say "GPU-CHECK train steps/s: $(line '^training steps/s' | sed 's/^[^:]*: //')"
if [ $((SECONDS - START)) -gt 480 ]; then say "GPU-CHECK WARNING: took more than 8 minutes"; fi
if [ "$FAILED" != 0 ]; then say "GPU-CHECK FAILED: $FAILED step(s) did not finish (see $LOG)"; exit 1; fi
