#!/usr/bin/env bash
# The one-shot GPU check: on a machine with an NVIDIA GPU, its driver and a CUDA 12 runtime
# (nothing else needed: no compiler, no FFmpeg, no Python), in about 8 minutes:
#   1. npm ci and the TypeScript build when missing (the addon is the committed prebuild);
#   2. `ar-seg doctor --device cuda --json` (and ONNX Runtime's CUDA provider installed when
#      missing: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node; needs the network;
#      ARSEG_GPU_CHECK_NO_INSTALL=1 skips that);
#   3. every test that skips without a GPU: the CUDA parity tests (test/creff.test.js), the device
#      path on the GPU (test/device-path.test.js), doctor on a GPU machine, and the packed-install
#      test with its GPU half (test/prebuild-install.test.js; needs the npm registry);
#   4. bench/creff.js --device cuda: the kernel's time, achieved bandwidth and FP32 rate against
#      the GPU's peaks read from the driver;
#   5. bench/pipeline.js --device cuda on the demo clip with models/default: fps of hr, lr, ar
#      and the bytes per frame across the bus;
# then writes OUT/gpu-check.md and OUT/gpu-check.json (scripts/gpu-check-report.js), the steps'
# raw output in OUT/raw/.
#
#   bash scripts/gpu-check.sh [--out DIR]     (default DIR: gpu-check-report)
#
# Exit: 0 all passed; 1 a step failed; 77 skipped: no usable GPU here (the reason is printed;
# .ci/run counts it as one skipped check).
#
# ARSEG_GPU_CHECK_DRY_RUN=1 runs the same steps on the emulated device, small and fast (one test
# file, tiny benches): a test of this script's plumbing where there is no GPU, not a check.
set -uo pipefail
cd "$(dirname "$0")/.."

out=gpu-check-report
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) echo "usage: bash scripts/gpu-check.sh [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out/raw"
out=$(cd "$out" && pwd)
raw=$out/raw
: >"$raw/steps.tsv"
started=$SECONDS
# The whole check fits in 8 minutes: each step's limit is cut to what is left of this budget.
budget=${ARSEG_GPU_CHECK_BUDGET:-470}
log() { echo "gpu-check: $*" >&2; }

# step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, its output in raw/NAME.log,
# and records "name, exit status, seconds" in raw/steps.tsv (status 124: cut by the limit).
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - (SECONDS - started)))
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    log "$name: not run, the ${budget} s budget is spent"
    printf '%s\t124\t0\n' "$name" >>"$raw/steps.tsv"
    return 124
  fi
  local t0=$SECONDS
  log "$name (at most ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" >"$raw/$name.log" 2>&1
  local status=$?
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" >>"$raw/steps.tsv"
  ((status == 0)) || log "$name: exit $status (see $raw/$name.log)"
  return $status
}

# 1. What a fresh clone lacks.
if [[ ! -d node_modules ]]; then step npm-ci 180 npm ci --no-audit --no-fund || exit 1; fi
if [[ ! -f dist/index.js ]]; then step build-ts 90 npx tsc -p tsconfig.json || exit 1; fi

dry=${ARSEG_GPU_CHECK_DRY_RUN:-0}
device=cuda
tests=(test/creff.test.js test/device-path.test.js test/doctor.test.js test/prebuild-install.test.js)
creff_args=(--rounds 10)
pipeline_args=(--frames 48)
if [[ $dry == 1 ]]; then
  log "dry run on the emulated device (no figure in this report is a GPU's)"
  device=cuda-emulated
  tests=(test/bus-bytes.test.js)
  creff_args=(--rounds 1 --sizes 16x32)
  pipeline_args=(--frames 2)
fi

# 2. Is there a GPU the kernels can use? Without one: skipped, with the reason.
if [[ $dry != 1 ]]; then
status_json=$(node -e 'const { CReFF } = require("./dist"); process.stdout.write(JSON.stringify(CReFF.cudaStatus()))') || {
  log "the addon does not load (run: node dist/cli/index.js doctor)"
  exit 1
}
if [[ $(node -e 'process.stdout.write(String(JSON.parse(process.argv[1]).available))' "$status_json") != true ]]; then
  echo "gpu-check: skipped: $(node -e 'const s = JSON.parse(process.argv[1]); process.stdout.write(s.reason + "; to fix: " + s.fix)' "$status_json")"
  exit 77
fi
fi
node dist/cli/index.js doctor --device cuda --json >"$raw/doctor.json"
if [[ ${ARSEG_GPU_CHECK_NO_INSTALL:-0} != 1 && $dry != 1 ]] &&
   [[ $(node -e 'process.stdout.write(String(require(process.argv[1]).onnxRuntime.cudaProvider.installed))' "$raw/doctor.json") != true ]]; then
  # onnxruntime-node downloads its CUDA provider on request (the repository's .npmrc skips it)
  step ort-cuda-provider 150 env ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node
  node dist/cli/index.js doctor --device cuda --json >"$raw/doctor.json"
fi
node dist/cli/index.js doctor --device cuda >"$raw/doctor.txt"

# 3. The tests that skip without a GPU (whole files: their CPU halves are the reference).
no_source=0
[[ -f build/Release/ar_seg_native.node ]] || no_source=1
step tests 300 env ARSEG_PREBUILD_NO_SOURCE=$no_source npx ava --timeout=280s "${tests[@]}"

# 4. The CReFF kernel on the GPU.
step bench-creff 90 node bench/creff.js --device "$device" "${creff_args[@]}" --json "$raw/creff.json"

# 5. The pipeline on the GPU (the demo clip: 320x240, 48 frames; models/default).
step bench-pipeline 120 node bench/pipeline.js --device "$device" --model models/default \
  --clip models/demo/video.mp4 "${pipeline_args[@]}" --json "$raw/pipeline.json"

node scripts/gpu-check-report.js "$raw" "$out"
status=$?
log "done in $((SECONDS - started)) s"
exit $status
