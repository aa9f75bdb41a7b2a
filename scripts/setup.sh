#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu x64 machine: the system packages the build needs,
# the patched static libav (scripts/build-libav.sh: Debian's ffmpeg source with
# patches/ffmpeg/, cached in .prebuild-cache/, about 3 minutes on 2 cores the first time), the
# npm dependencies, and a from-source build of the addon (against that libav, so it exports the
# same motion as the prebuild) and the TypeScript.
# With --python, also the PyTorch side's packages (python/: conversion, training, its tests).
# With --system-libav, the addon links the system's libav instead (motion vectors without
# their exact reference, none for HEVC: the composition then assumes the nearest anchor).
# Idempotent: packages already installed are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

python=0
system_libav=0
for arg in "$@"; do
  case "$arg" in
    --python) python=1 ;;
    --system-libav) system_libav=1 ;;
    *) echo "usage: bash scripts/setup.sh [--python] [--system-libav]" >&2; exit 2 ;;
  esac
done

# build-essential/cmake/pkg-config: the native build; lib*-dev: the system's FFmpeg libraries
# (LGPL; the --system-libav build, and test/vectors-stock.test.js compares the patched export
# with theirs); valgrind: scripts/native-check.sh; clang-format: npm run lint (native/'s
# formatting); ffmpeg: the test fixtures' generator and the benchmarks' clips (libx264, libx265);
# redis-server: the job queue's tests (test/queue*.test.js start a private one each on 127.0.0.1)
# and bench/queue.js; the queue's users run their own Redis (docs/queue.md).
packages=(build-essential cmake pkg-config libavformat-dev libavcodec-dev libavutil-dev libswscale-dev valgrind clang-format ffmpeg redis-server)
# python3-torch (with numpy): python/ (PyPI is not needed); python3-pytest: python/tests;
# python3-pil: images in python/; python3-flake8: npm run lint (python/'s linter); python3-pip,
# -setuptools, -wheel: the editable install of python/ below; python3-onnx: reading a bundle's
# networks back into PyTorch (python/arseg/bundle_import.py; python/tests/test_bundle_import.py and
# test_creff_tune.py). They run on Debian's /usr/bin/python3.
if ((python)); then
  packages+=(python3 python3-numpy python3-torch python3-pytest python3-pil python3-flake8 python3-onnx)
  packages+=(python3-pip python3-setuptools python3-wheel)
fi
# The tests' command-line tools (issue 11: a fresh machine lacked them): ffmpeg and ffprobe (the
# ffmpeg package, whose libavcodec brings the x264 and x265 encoders) make the toy and street
# datasets of python/tests (test_train.py, test_street.py) and regenerate test/fixtures
# (make-fixtures.js). The ava tests also use mkfifo (coreutils) and prlimit (util-linux), which
# every Debian/Ubuntu has.
if ((python)); then packages+=(ffmpeg); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)'; then
  echo "setup: Node.js >= 20.17 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ((system_libav)); then
  export ARSEG_LIBAV_PREFIX=system
else
  bash scripts/build-libav.sh >/dev/null   # .prebuild-cache/libav, found by CMakeLists.txt and binding.gyp
fi

npm ci --no-audit --no-fund   # its install step loads a prebuild or builds with binding.gyp
npm run build                 # the full cmake-js build and the TypeScript

# python/ (python/pyproject.toml) as an editable install in the user's site-packages, so that
# `python3 -m arseg.export ...` runs from any directory without PYTHONPATH. Offline: Debian's
# setuptools builds it (--no-build-isolation --no-index) and nothing else is installed
# (--no-deps); --break-system-packages lets pip write the user site of Debian's python (PEP 668),
# where it touches no system package (older pips have neither that flag nor the need for it).
if ((python)); then
  pip_flags=(--quiet --user --no-build-isolation --no-deps --no-index)
  pip_help=$(/usr/bin/python3 -m pip install --help)
  for flag in --break-system-packages --root-user-action=ignore; do
    if grep -q -- "${flag%%=*}" <<<"$pip_help"; then pip_flags+=("$flag"); fi
  done
  /usr/bin/python3 -m pip install "${pip_flags[@]}" --editable ./python
fi
