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
#     libstdc++ linked statically, and the CUDA CReFF kernel when nvcc is found (CUDA runtime
#     linked statically; the architectures are CMakeLists.txt's).
#  3. Checks (no libav or libstdc++ in ldd, no unresolved libav symbol, loads in Node, LGPL
#     configuration), strips it into prebuilds/linux-x64/ and writes BUILD.json beside it:
#     the hash of the sources it was built from (test/prebuild-fresh.test.js compares it), the
#     ffmpeg version and flags, the minimum glibc, the CUDA architectures.
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
prefix=$(ARSEG_PREBUILD_JOBS=$jobs bash "$root/scripts/build-libav.sh") || die "building the patched libav failed"
version=$(cat "$prefix/ffmpeg-version.txt")
mapfile -t FLAGS <"$prefix/configure-flags.txt"
mapfile -t CONFIG_H_EDITS <"$prefix/config-h-edits.txt"
mapfile -t PATCHES <"$prefix/patches.txt"

# --- the addon -----------------------------------------------------------------------------
cmake_js=$root/node_modules/.bin/cmake-js
[[ -x $cmake_js ]] || die "cmake-js is missing: run npm ci first"
cmake_args=(--out build-prebuild --CDARSEG_LIBAV_PREFIX="$prefix" --CDARSEG_PORTABLE=ON)
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

# The CUDA code in the addon, read from its .nv_fatbin section.
cuda_archs=$(node scripts/prebuild-record.js cuda-archs "$out_dir/$out_name")
cuda_version=$(grep -hoPs '^set\(CMAKE_CUDA_COMPILER_VERSION "\K[^"]+' build-prebuild/CMakeFiles/*/CMakeCUDACompiler.cmake | head -1) || true
if [[ -z $cuda_archs ]]; then
  log "WARNING: no CUDA code in the addon (nvcc not found): this prebuild has the CPU kernels only"
  cuda_version=""
elif [[ $cuda_archs != *sm_* || $cuda_archs != *compute_* ]]; then
  die "the addon's CUDA code lacks machine code or PTX (found: $cuda_archs)"
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
