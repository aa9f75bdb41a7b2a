#!/usr/bin/env bash
# npm run build:prebuild: the linux-x64 prebuild, prebuilds/linux-x64/node.napi.glibc.node.
#
#  1. Debian's ffmpeg source package (apt-get source; the version of the installed
#     libavcodec-dev, so that the prebuild decodes exactly like a from-source build here, else
#     the newest the deb-src entries offer; ARSEG_FFMPEG_VERSION overrides), configured as a
#     minimal static LGPL libav (see FLAGS below) and installed into a prefix in
#     .prebuild-cache/. Both steps are cached: a rerun with the same version and flags skips them.
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
# cmake and pkg-config: installed with apt-get when missing (as root, or through sudo).
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

# --- tools -------------------------------------------------------------------------------
# dpkg-dev: dpkg-source for apt-get source; nasm: FFmpeg's x86 assembly (Debian's own build
# uses it, and the decoders' and swscale's output must match a from-source build exactly).
tools=(dpkg-dev nasm build-essential cmake pkg-config xz-utils)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- the ffmpeg source package -----------------------------------------------------------
have_deb_src() { [[ -n $(apt-cache showsrc ffmpeg 2>/dev/null | awk '/^Version:/{print $2; exit}') ]]; }
if ! have_deb_src; then
  # Mirror the distribution's own binary sources as deb-src (deb822 debian.sources or
  # ubuntu.sources, and the one-line sources.list); third-party repositories are left alone.
  log "no deb-src entry offers ffmpeg: adding /etc/apt/sources.list.d/ar-seg-native-src.*"
  tmp_src=$(mktemp -d)
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/ubuntu.sources; do
    [[ -f $f ]] || continue
    sed -n '/^Types:/!{p;d}; s/^Types:.*/Types: deb-src/p' "$f" >>"$tmp_src/ar-seg-native-src.sources"
    echo >>"$tmp_src/ar-seg-native-src.sources"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >"$tmp_src/ar-seg-native-src.list"
  fi
  for f in "$tmp_src"/*; do
    if [[ -s $f ]]; then as_root install -m 644 "$f" /etc/apt/sources.list.d/; fi
  done
  rm -rf "$tmp_src"
  as_root apt-get update -q
  have_deb_src || die "apt offers no source package for ffmpeg even with deb-src entries"
fi

version=${ARSEG_FFMPEG_VERSION:-}
if [[ -z $version ]]; then
  version=$(dpkg-query -W -f='${source:Package} ${source:Version}' libavcodec-dev 2>/dev/null |
            awk '$1 == "ffmpeg" {print $2}') || true
fi
offered=$(apt-cache showsrc ffmpeg | awk '/^Version:/{print $2}' | sort -u -V)
if [[ -z $version ]] || ! grep -qxF "$version" <<<"$offered"; then
  [[ -n $version ]] && log "ffmpeg $version (the installed libavcodec-dev's) is not offered as source; taking the newest"
  version=$(tail -1 <<<"$offered")
fi
upstream=${version#*:}
upstream=${upstream%-*}
src_parent=$cache/src/${version//:/_}
src=$src_parent/ffmpeg-$upstream
if [[ ! -f $src/.arseg-fetched ]]; then
  log "fetching Debian's ffmpeg $version source package"
  rm -rf "$src_parent"
  mkdir -p "$src_parent"
  (cd "$src_parent" && apt-get source -q "ffmpeg=$version") || die "apt-get source ffmpeg=$version failed"
  [[ -x $src/configure ]] || die "no $src/configure after apt-get source"
  touch "$src/.arseg-fetched"
else
  log "ffmpeg $version source: cached in ${src#$root/}"
fi

# --- minimal static LGPL libav -------------------------------------------------------------
# No --enable-gpl/--enable-nonfree (LGPL 2.1+); --disable-autodetect: no external library at
# all (no zlib, xlib, vaapi, vdpau, iconv, cuvid...); --disable-everything, then only what
# ar-seg-native reads: the codecs with their parsers, the containers, the protocols.
# vp9, mjpeg, rawvideo: codecs without motion vectors, read with estimated motion (and JPEG image
# sequences); no AV1: FFmpeg 5.1's own av1 decoder only drives hardware decoders, software AV1
# needs libdav1d or libaom (a source build against a system libav that has them reads AV1).
decoders=h264,hevc,mpeg4,h263,mpeg1video,mpeg2video,vp9,mjpeg,rawvideo
parsers=h264,hevc,mpeg4video,h263,mpegvideo,vp9,mjpeg
# mov: MP4/MOV/M4V files; m4v, h264, hevc, mpegvideo: raw elementary streams; mpegps: .mpg
# program streams; rtsp/sdp/rtp: network sources (the RTSP "protocol" is a demuxer); ivf: raw
# VP9; mjpeg: raw MJPEG; image2: image sequences (frame%04d.jpg); yuv4mpegpipe: .y4m raw video.
demuxers=mov,matroska,avi,mpegts,mpegps,m4v,h264,hevc,mpegvideo,rtsp,sdp,rtp,ivf,mjpeg,image2,yuv4mpegpipe
protocols=file,pipe,tcp,udp,rtp,http
FLAGS=(
  --disable-shared --enable-static --enable-pic
  --disable-programs --disable-doc --disable-debug
  --disable-autodetect --disable-everything
  --disable-avdevice --disable-avfilter --disable-swresample --disable-postproc
  --enable-avcodec --enable-avformat --enable-avutil --enable-swscale --enable-network
  --enable-decoder=$decoders
  --enable-parser=$parsers
  --enable-demuxer=$demuxers
  --enable-protocol=$protocols
)
# arc4random (glibc 2.36) would be libavutil's only use of a glibc newer than 2.34: configure
# finds it and there is no switch, so config.h is edited after configure (av_get_random_seed
# then reads /dev/urandom, as it does on glibc < 2.36).
CONFIG_H_EDITS=('s/^#define HAVE_ARC4RANDOM 1$/#define HAVE_ARC4RANDOM 0/')

flags_id=$(printf '%s\n' "$version" "${FLAGS[@]}" "${CONFIG_H_EDITS[@]}" | sha256sum | cut -c1-12)
prefix=$cache/libav-$upstream-$flags_id
libav_build=$cache/build-libav-$flags_id
if [[ ! -f $prefix/.arseg-complete ]]; then
  log "configuring libav ($flags_id) in ${libav_build#$root/}"
  rm -rf "$libav_build" "$prefix"
  mkdir -p "$libav_build"
  (cd "$libav_build" && run "$src/configure" --prefix="$prefix" "${FLAGS[@]}" >configure.out 2>&1) || {
    tail -30 "$libav_build/configure.out" >&2
    tail -30 "$libav_build/ffbuild/config.log" >&2 || true
    die "ffmpeg's configure failed (full output: ${libav_build#$root/}/configure.out, ffbuild/config.log)"
  }
  for e in "${CONFIG_H_EDITS[@]}"; do sed -i "$e" "$libav_build/config.h"; done
  grep -q '^#define CONFIG_GPL 0$' "$libav_build/config.h" || die "the libav configuration is not LGPL-only"
  grep -q '^#define CONFIG_NONFREE 0$' "$libav_build/config.h" || die "the libav configuration is nonfree"
  grep -q '^#define HAVE_X86ASM 1$' "$libav_build/config.h" || die "libav would be built without its x86 assembly (nasm missing?)"
  log "building libav with make -j$jobs (about 3 minutes on 2 cores)"
  (cd "$libav_build" && run make -j"$jobs" >make.out 2>&1) || {
    tail -40 "$libav_build/make.out" >&2
    die "building libav failed (full output: ${libav_build#$root/}/make.out)"
  }
  (cd "$libav_build" && make install >install.out 2>&1) || die "installing libav into $prefix failed"
  printf '%s\n' "${FLAGS[@]}" >"$prefix/configure-flags.txt"
  touch "$prefix/.arseg-complete"
else
  log "libav ($flags_id): cached in ${prefix#$root/}"
fi

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
  console.error("prebuild: loads; libavcodec " + a.libav.avcodec + ", CUDA: " + JSON.stringify(a.cudaStatus()));
' "$out_dir/$out_name"
log "done: ${out_dir#$root/}/$out_name ($(stat -c %s "$out_dir/$out_name") bytes, glibc >= $glibc_min${cuda_archs:+, CUDA $cuda_archs}) and BUILD.json"
