#!/usr/bin/env bash
# The libav ar-seg-native links: Debian's ffmpeg source package with the patches of
# patches/ffmpeg/ applied (exact motion-vector references for H.264, motion vectors for HEVC),
# configured as a minimal static LGPL libav and installed into a prefix in .prebuild-cache/.
# Used by scripts/prebuild.sh (the prebuild) and scripts/setup.sh (source builds), so that both
# decode, and export motion, the same way.
#
#   bash scripts/build-libav.sh        # prints the prefix on stdout; progress on stderr
#
#  1. The ffmpeg source package (apt-get source; the version of the installed libavcodec-dev,
#     else the newest the deb-src entries offer; ARSEG_FFMPEG_VERSION overrides). deb-src
#     entries mirroring the distribution's own are added when none offers ffmpeg.
#  2. A copy of it with patches/ffmpeg/*.patch applied, in order.
#  3. configure (FLAGS below), make, make install into .prebuild-cache/libav-<version>-<id>,
#     <id> hashing the version, flags and patches; .prebuild-cache/libav points at it. Each
#     step is cached: a rerun with the same inputs does nothing (about 3 minutes on 2 cores
#     otherwise).
#
# Runs niced on ARSEG_PREBUILD_JOBS cores (default: all). Needs apt with deb-src entries,
# dpkg-dev, nasm, build-essential, pkg-config, patch: installed with apt-get when missing (as
# root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.prebuild-cache
jobs=${ARSEG_PREBUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}

log() { echo "libav: $*" >&2; }
die() { echo "libav: error: $*" >&2; exit 1; }
run() { nice -n 10 "$@"; }

[[ $(uname -s) == Linux ]] || die "this script builds libav on Linux; this machine is $(uname -s)"
command -v apt-get >/dev/null || die "apt-get is needed (Debian/Ubuntu): the libav source is Debian's ffmpeg source package"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "needs root to run: $*"; fi
}

# --- tools -------------------------------------------------------------------------------
# dpkg-dev: dpkg-source for apt-get source; nasm: FFmpeg's x86 assembly (Debian's own build
# uses it, and the decoders' and swscale's output must match a from-source build exactly);
# patch: patches/ffmpeg/.
tools=(dpkg-dev nasm build-essential pkg-config xz-utils patch)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  as_root apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
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
  as_root apt-get update -q >&2
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
  (cd "$src_parent" && apt-get source -q "ffmpeg=$version" >&2) || die "apt-get source ffmpeg=$version failed"
  [[ -x $src/configure ]] || die "no $src/configure after apt-get source"
  touch "$src/.arseg-fetched"
else
  log "ffmpeg $version source: cached in ${src#$root/}"
fi

# --- minimal static LGPL libav -------------------------------------------------------------
# No --enable-gpl/--enable-nonfree (LGPL 2.1+); --disable-autodetect: no external library at
# all (no zlib, xlib, vaapi, vdpau, iconv, cuvid...); --disable-everything, then only what
# ar-seg-native reads: the codecs with their parsers, the containers, the protocols.
# vp9, mjpeg, rawvideo, ppm, pgm: codecs without motion vectors, read with estimated motion
# (mjpeg, ppm and pgm also for image sequences; no png: it needs zlib). No AV1: FFmpeg 5.1's own
# av1 decoder only drives hardware decoders; software AV1 needs libdav1d or libaom (a build
# against a system libav that has them, setup.sh --system-libav, reads AV1).
decoders=h264,hevc,mpeg4,h263,mpeg1video,mpeg2video,vp9,mjpeg,rawvideo,ppm,pgm
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

patches=("$root"/patches/ffmpeg/*.patch)
[[ -f ${patches[0]} ]] || die "no patches in patches/ffmpeg/"
patches_id=$(cat "${patches[@]}" | sha256sum | cut -c1-12)
flags_id=$(printf '%s\n' "$version" "${FLAGS[@]}" "${CONFIG_H_EDITS[@]}" "$patches_id" | sha256sum | cut -c1-12)
prefix=$cache/libav-$upstream-$flags_id
libav_build=$cache/build-libav-$flags_id
patched=$cache/src-patched-$patches_id/ffmpeg-$upstream
if [[ ! -f $prefix/.arseg-complete ]]; then
  if [[ ! -f $patched/.arseg-patched ]]; then
    log "applying ${#patches[@]} patches of patches/ffmpeg/ to a copy of the source"
    rm -rf "$(dirname "$patched")"
    mkdir -p "$(dirname "$patched")"
    cp -a "$src" "$patched"
    for p in "${patches[@]}"; do
      patch -d "$patched" -p1 --batch --forward --quiet <"$p" >&2 ||
        die "$(basename "$p") does not apply to ffmpeg $version"
    done
    touch "$patched/.arseg-patched"
  fi
  log "configuring libav ($flags_id) in ${libav_build#$root/}"
  rm -rf "$libav_build" "$prefix"
  mkdir -p "$libav_build"
  (cd "$libav_build" && run "$patched/configure" --prefix="$prefix" "${FLAGS[@]}" >configure.out 2>&1) || {
    tail -30 "$libav_build/configure.out" >&2
    tail -30 "$libav_build/ffbuild/config.log" >&2 || true
    die "ffmpeg's configure failed (full output: ${libav_build#$root/}/configure.out, ffbuild/config.log)"
  }
  for e in "${CONFIG_H_EDITS[@]}"; do sed -i "$e" "$libav_build/config.h"; done
  grep -q '^#define CONFIG_GPL 0$' "$libav_build/config.h" || die "the libav configuration is not LGPL-only"
  grep -q '^#define CONFIG_NONFREE 0$' "$libav_build/config.h" || die "the libav configuration is nonfree"
  if [[ $(uname -m) == x86_64 ]]; then
    grep -q '^#define HAVE_X86ASM 1$' "$libav_build/config.h" || die "libav would be built without its x86 assembly (nasm missing?)"
  fi
  log "building libav with make -j$jobs (about 3 minutes on 2 cores)"
  (cd "$libav_build" && run make -j"$jobs" >make.out 2>&1) || {
    tail -40 "$libav_build/make.out" >&2
    die "building libav failed (full output: ${libav_build#$root/}/make.out)"
  }
  (cd "$libav_build" && make install >install.out 2>&1) || die "installing libav into $prefix failed"
  grep -q AV_MOTION_VECTOR_EXACT_REFS "$prefix/include/libavutil/motion_vector.h" ||
    die "the installed libav lacks the exact-reference patch"
  printf '%s\n' "${FLAGS[@]}" >"$prefix/configure-flags.txt"
  printf '%s\n' "${patches[@]##*/}" >"$prefix/patches.txt"
  printf '%s\n' "${CONFIG_H_EDITS[@]}" >"$prefix/config-h-edits.txt"
  echo "$version" >"$prefix/ffmpeg-version.txt"
  touch "$prefix/.arseg-complete"
else
  log "libav ($flags_id): cached in ${prefix#$root/}"
fi
# The stable name source builds look for (CMakeLists.txt, scripts/libav-flags.js).
ln -sfn "$(basename "$prefix")" "$cache/libav"
echo "$prefix"
