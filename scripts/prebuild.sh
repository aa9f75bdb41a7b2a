#!/usr/bin/env bash
# npm run build:prebuild: the linux-x64 prebuild, prebuilds/linux-x64/node.napi.glibc.node.
#
#  1. Debian's ffmpeg source package (apt-get source; the version of the installed
#     libavcodec-dev, so that the prebuild decodes exactly like a from-source build here, else
#     the newest the deb-src entries offer; ARSEG_FFMPEG_VERSION overrides), with the patches of
#     patches/ffmpeg/ (exact motion-vector references, HEVC vectors), configured as a minimal
#     static LGPL libav and installed into a prefix in .prebuild-cache/: scripts/build-libav.sh,
#     cached (a rerun with the same version, flags and patches skips it).
#  2. The addon, with cmake-js in build-prebuild/, against that prefix (-DARSEG_LIBAV_PREFIX),
#     libstdc++ linked statically, and the CUDA kernels built with Debian 12's
#     nvidia-cuda-toolkit (CUDA 11.8, g++-11; installed from non-free when missing), the CUDA
#     runtime linked statically, for the architectures scripts/prebuild-record.js promises.
#  3. Checks (no libav or libstdc++ in ldd, no unresolved libav symbol, loads in Node, LGPL
#     configuration), strips it into prebuilds/linux-x64/ and writes BUILD.json beside it:
#     the hash of the sources it was built from (test/prebuild-fresh.test.js compares it), the
#     ffmpeg version and flags, the minimum glibc, the CUDA floor: the cubins and PTX embedded
#     (cuobjdump and the fatbin) checked against the promise, and the runtime linked in, whose
#     driver floor must not exceed ONNX Runtime's CUDA 12 provider's (525.60.13).
#     ARSEG_PREBUILD_CUDA=0 builds one without CUDA kernels (BUILD.json then says cuda: null).
#
# Runs niced on ARSEG_PREBUILD_JOBS cores (default 2). Needs apt with deb-src entries (added
# for the configured Debian/Ubuntu mirrors when missing), dpkg-dev, nasm, build-essential,
# cmake, pkg-config and patch: installed with apt-get when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.prebuild-cache
jobs=${ARSEG_PREBUILD_JOBS:-2}
out_dir=$root/prebuilds/linux-x64
out_name=node.napi.glibc.node

log() { echo "prebuild: $*" >&2; }
die() { echo "prebuild: error: $*" >&2; exit 1; }
run() { nice -n 10 "$@"; }

[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
  die "this script builds the linux-x64 prebuild; this machine is $(uname -s) $(uname -m)"
command -v apt-get >/dev/null || die "apt-get is needed (Debian/Ubuntu): the libav source is Debian's ffmpeg source package"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "needs root to run: $*"; fi
}

# --- libav ----------------------------------------------------------------------------------
# Debian's ffmpeg source with patches/ffmpeg/ applied, static, LGPL: scripts/build-libav.sh
# (shared with scripts/setup.sh's source builds).
tools=(build-essential cmake pkg-config)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- the CUDA toolkit: one driver floor with ONNX Runtime ------------------------------------
# ONNX Runtime's CUDA 12 provider runs on drivers from 525.60.13; the CReFF kernels must run
# wherever it does. Debian 12's nvidia-cuda-toolkit (CUDA 11.8, non-free; host compiler g++-11)
# links a runtime that runs on drivers from 450.80.02 (CUDA minor-version compatibility) and
# still emits sm_90 and compute_90. A newer toolkit cannot target an older runtime (the runtime
# is the toolkit's), and CUDA 12 toolkits are not in Debian. CMakeLists.txt prefers this toolkit
# when present; the floor check after the build proves what was linked.
cuda=${ARSEG_PREBUILD_CUDA:-1}
if [[ $cuda != 0 ]]; then
  cuda_missing=()
  for p in nvidia-cuda-toolkit g++-11; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || cuda_missing+=("$p")
  done
  if ((${#cuda_missing[@]})); then
    if ! apt-cache policy nvidia-cuda-toolkit 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      # Mirror the distribution's own binary sources with the contrib and non-free components
      # (deb822 debian.sources, and the one-line sources.list); third-party repositories are
      # left alone.
      log "no apt source offers nvidia-cuda-toolkit: adding /etc/apt/sources.list.d/ar-seg-native-cuda.*"
      tmp_src=$(mktemp -d)
      if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        sed -n '/^Components:/!{p;d}; s/^Components:.*/Components: contrib non-free/p' \
          /etc/apt/sources.list.d/debian.sources >"$tmp_src/ar-seg-native-cuda.sources"
      fi
      if [[ -f /etc/apt/sources.list ]]; then
        awk '$1 == "deb" && $0 ~ /debian/ {print $1, $2, $3, "contrib non-free"}' /etc/apt/sources.list \
          >"$tmp_src/ar-seg-native-cuda.list"
      fi
      for f in "$tmp_src"/*; do
        if [[ -s $f ]]; then as_root install -m 644 "$f" /etc/apt/sources.list.d/; fi
      done
      rm -rf "$tmp_src"
      as_root apt-get update -q
    fi
    log "installing ${cuda_missing[*]} (the CUDA 11.8 toolkit: about 3 GB)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${cuda_missing[@]}" ||
      die "installing ${cuda_missing[*]} failed (Debian 12 non-free); ARSEG_PREBUILD_CUDA=0 builds without CUDA kernels"
  fi
  [[ -x /usr/lib/nvidia-cuda-toolkit/bin/nvcc ]] || die "Debian's nvcc (/usr/lib/nvidia-cuda-toolkit/bin/nvcc) is missing"
else
  log "ARSEG_PREBUILD_CUDA=0: building without CUDA kernels"
fi

prefix=$(ARSEG_PREBUILD_JOBS=$jobs bash "$root/scripts/build-libav.sh") || die "building the patched libav failed"
version=$(cat "$prefix/ffmpeg-version.txt")
mapfile -t FLAGS <"$prefix/configure-flags.txt"
mapfile -t CONFIG_H_EDITS <"$prefix/config-h-edits.txt"
mapfile -t PATCHES <"$prefix/patches.txt"

# --- the addon -----------------------------------------------------------------------------
cmake_js=$root/node_modules/.bin/cmake-js
[[ -x $cmake_js ]] || die "cmake-js is missing: run npm ci first"
cmake_args=(--out build-prebuild --CDARSEG_LIBAV_PREFIX="$prefix" --CDARSEG_PORTABLE=ON)
# CUDA: the promised architectures; a fresh configure, so that a toolkit cached by an earlier
# run (e.g. /usr/local/cuda) is not kept over Debian's.
if [[ $cuda != 0 ]]; then
  cmake_args+=(--CDCMAKE_CUDA_ARCHITECTURES="$(node scripts/prebuild-record.js cuda-architectures)")
  rm -f build-prebuild/CMakeCache.txt
else
  cmake_args+=(--CDARSEG_CUDA=OFF)
fi
log "configuring the addon in build-prebuild/"
run "$cmake_js" configure "${cmake_args[@]}" --log-level warn
log "building the addon (-j$jobs)"
run "$cmake_js" build "${cmake_args[@]}" --parallel "$jobs" --log-level warn
built=$root/build-prebuild/Release/ar_seg_native.node
[[ -f $built ]] || die "cmake-js produced no $built"

# --- checks, strip, record -----------------------------------------------------------------
libs=$(ldd "$built")
if grep -Eq 'lib(av|sw|postproc)[a-z]*\.so|libstdc\+\+|not found' <<<"$libs"; then
  echo "$libs" >&2
  die "the addon links a shared libav or libstdc++, or misses a library"
fi
if nm -D --undefined-only "$built" | grep -Eq ' (av|avio|avcodec|avformat|sws|ff)_'; then
  nm -D --undefined-only "$built" | grep -E ' (av|avio|avcodec|avformat|sws|ff)_' >&2
  die "libav symbols are unresolved in the addon"
fi

mkdir -p "$out_dir"
find "$out_dir" -maxdepth 1 -name '*.node' -delete
strip --strip-unneeded -o "$out_dir/$out_name" "$built"

# The CUDA floor: the cubins and PTX in the addon (its .nv_fatbin section, and cuobjdump's
# --list-elf/--list-ptx) against the promise, and the runtime linked in against ONNX Runtime's
# driver floor (scripts/prebuild-record.js checkCudaFloor).
cuda_archs=$(node scripts/prebuild-record.js cuda-archs "$out_dir/$out_name")
cuda_version="" cuda_runtime="" cuda_floor="" cuda_ptx_isa="" cuda_host=""
if [[ $cuda == 0 ]]; then
  [[ -z $cuda_archs ]] || die "ARSEG_PREBUILD_CUDA=0 but the addon has CUDA code ($cuda_archs)"
  log "WARNING: no CUDA kernels in this prebuild (ARSEG_PREBUILD_CUDA=0): the CPU kernels only"
else
  cuda_facts=$(node scripts/prebuild-record.js cuda-check "$out_dir/$out_name") ||
    die "the addon's CUDA code breaks the promised floor (above)"
  fact() { node -e 'const f = JSON.parse(process.argv[1]); process.stdout.write(String(f[process.argv[2]] ?? ""))' "$cuda_facts" "$1"; }
  cuda_version=$(fact toolkit)
  cuda_runtime=$(fact runtime)
  cuda_floor=$(fact driverFloor)
  cuda_ptx_isa=$(fact ptxIsa)
  cuda_host=$(grep -hoPs '^set\(CMAKE_CUDA_HOST_COMPILER "\K[^"]+' build-prebuild/CMakeFiles/*/CMakeCUDACompiler.cmake | head -1) || true
  log "CUDA floor holds: $cuda_archs, PTX ISA $cuda_ptx_isa, CUDA $cuda_runtime runtime (static) needs driver >= $cuda_floor"
fi

# The glibc floor: the newest GLIBC_ symbol version the addon refers to (objdump -T).
glibc_max=${ARSEG_PREBUILD_GLIBC_MAX:-2.34}
glibc_min=$(objdump -T "$out_dir/$out_name" | grep -oP '\(GLIBC_\K[0-9.]+(?=\))' | sort -u -V | tail -1)
[[ -n $glibc_min ]] || die "objdump -T found no GLIBC_ symbol versions"
if [[ $(printf '%s\n' "$glibc_min" "$glibc_max" | sort -V | tail -1) != "$glibc_max" ]]; then
  objdump -T "$out_dir/$out_name" | grep -F "GLIBC_$glibc_min" >&2
  die "the addon needs glibc $glibc_min, above the $glibc_max floor (native/compat/glibc_compat.c pins such symbols)"
fi
if objdump -T "$out_dir/$out_name" | grep -Eq '(GLIBCXX|CXXABI)_'; then
  die "the addon refers to the shared libstdc++ (GLIBCXX_/CXXABI_ symbols)"
fi

ARSEG_PREBUILD_FILE="$out_dir/$out_name" \
ARSEG_PREBUILD_FFMPEG_VERSION="$version" \
ARSEG_PREBUILD_FLAGS="$(printf '%s\n' "${FLAGS[@]}")" \
ARSEG_PREBUILD_PATCHES="$(printf '%s\n' "${PATCHES[@]}")" \
ARSEG_PREBUILD_CONFIG_EDITS="$(printf '%s\n' "${CONFIG_H_EDITS[@]}")" \
ARSEG_PREBUILD_GLIBC="$glibc_min" \
ARSEG_PREBUILD_CUDA_ARCHS="$cuda_archs" \
ARSEG_PREBUILD_CUDA_VERSION="$cuda_version" \
ARSEG_PREBUILD_CUDA_RUNTIME="$cuda_runtime" \
ARSEG_PREBUILD_CUDA_DRIVER_FLOOR="$cuda_floor" \
ARSEG_PREBUILD_CUDA_PTX_ISA="$cuda_ptx_isa" \
ARSEG_PREBUILD_CUDA_HOST_COMPILER="$cuda_host" \
ARSEG_PREBUILD_LDD="$libs" \
  node scripts/prebuild-record.js write

# Loads on its own, reports the LGPL libav it carries.
node -e '
  const a = require(process.argv[1]);
  if (/--enable-(gpl|nonfree)/.test(a.libav.configuration)) throw new Error("GPL/nonfree libav in the prebuild");
  if (!a.libav.exactReferences) throw new Error("the libav in the prebuild lacks the patches of patches/ffmpeg/");
  console.error("prebuild: loads; libavcodec " + a.libav.avcodec + ", CUDA: " + JSON.stringify(a.cudaStatus()));
' "$out_dir/$out_name"
log "done: ${out_dir#$root/}/$out_name ($(stat -c %s "$out_dir/$out_name") bytes, glibc >= $glibc_min${cuda_archs:+, CUDA $cuda_archs}) and BUILD.json"
