#!/usr/bin/env bash
# Every GPU check of issue 8 in one command, on a CUDA host, from the repository root,
# with .gpu-kit/ packed by tools/gpu_check/pack.sh for the host's Python:
#
#   tools/gpu_check/run.sh OUT_DIR [full|quick|cpu]
#
# Steps, each under its own time limit, each writing OUT_DIR/<step>.log (7 files in all):
#   facts       GPU, driver, torch, nvImageCodec and its decoders, ONNX Runtime providers
#   cuda-tests  pytest -m cuda: nvImageCodec bit-exact against pylibjpeg, device presentation
#               values, the data path (pinned, non-blocking), NormGrad on CUDA, the CUDA
#               provider (skips without onnxruntime-gpu)
#   precision   tools/precision_agreement.py on CUDA: bf16 against float32 (JSON beside)
#   node-speed  tools/benchmark_node.py --device cuda (JSON beside), torch classifying
# The limits add up to 555 s, inside a 600 s device call; `full` (default) is sized to
# end well within them on one H100 (never run on one yet), `quick` is a rerun with fewer
# images, `cpu` runs the same steps small on the CPU to check the kit without a GPU.
# steps.txt lists each step's exit status; the script's own status is that of the worst.
set -uo pipefail

OUT_DIR=${1:?usage: $0 OUT_DIR [full|quick|cpu]}
MODE=${2:-full}
KIT=$PWD/.gpu-kit
PY=${PYTHON:-python3}
SITE=/tmp/iqgate-gpu-site
BENCH_WORK=/tmp/iqgate-node-bench

case "$MODE" in
full) DEVICE=cuda; PRECISION_N=256; BENCH=(--clients 8 --images 200 --paced 100 --repeats 2) ;;
quick) DEVICE=cuda; PRECISION_N=64; BENCH=(--clients 8 --images 60 --paced 40 --repeats 1) ;;
cpu) DEVICE=cpu; PRECISION_N=8; BENCH=(--short) ;;
*) echo "unknown mode $MODE: full, quick or cpu" >&2; exit 2 ;;
esac

mkdir -p "$OUT_DIR"
TAG=$($PY -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
rm -rf "$SITE" && mkdir -p "$SITE"
tar -xJf "$KIT/site-$TAG.tar.xz" -C "$SITE" --strip-components=1 || {
    echo "no $KIT/site-$TAG.tar.xz: run tools/gpu_check/pack.sh for this Python" >&2
    exit 2
}
export PYTHONPATH="$PWD/service:$SITE" PATH="$KIT/dcmtk:$PATH" PYTHONUNBUFFERED=1
: >"$OUT_DIR/steps.txt"
worst=0

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 started status
    shift 2
    started=$(date +%s)
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    status=$?
    echo "$name: exit $status after $(($(date +%s) - started)) s" | tee -a "$OUT_DIR/steps.txt"
    [ "$status" -gt "$worst" ] && worst=$status
    return 0
}

step facts 45 bash -c "
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    storescu --version | head -1
    $PY - <<'EOF'
import platform, torch, onnxruntime
print('python', platform.python_version(), '| torch', torch.__version__,
      '| cuda', torch.cuda.is_available(), torch.version.cuda)
if torch.cuda.is_available():
    print('device', torch.cuda.get_device_name(0))
print('onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())
import pydicom
print('pydicom', pydicom.__version__, 'from', pydicom.__file__)
from iqgate.node.gpu_decode import frame_decoder
from iqgate.node.decode import Decoder
decoder = frame_decoder(Decoder(0), torch.device('$DEVICE'))
print('frame decoder on $DEVICE:', type(decoder).__name__)
from nvidia import nvimgcodec
print('nvimgcodec', nvimgcodec.__version__)
EOF"

step cuda-tests 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider -rs \
    tests/unit/test_gpu_decode.py tests/unit/test_imaging.py tests/unit/test_node_data_path.py \
    tests/unit/test_explain_contract.py tests/unit/test_triage.py

step precision 90 "$PY" tools/precision_agreement.py --models models --n "$PRECISION_N" \
    --device "$DEVICE" --out "$OUT_DIR/precision-$DEVICE.json"

step node-speed 270 "$PY" tools/benchmark_node.py --device "$DEVICE" "${BENCH[@]}" \
    --env IQGATE_CLASSIFIER=torch --work "$BENCH_WORK" --out "$OUT_DIR/node-speed-$DEVICE.json"

exit "$worst"
