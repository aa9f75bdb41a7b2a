#!/usr/bin/env bash
# Proves the native core clean: builds the self-test (native/tests/selftest.cc) once with
# AddressSanitizer + UBSan and once plain for valgrind's memcheck, and runs both over the
# fixtures. Any leak, invalid access or undefined behaviour fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake -S . -B build-asan -DARSEG_SELFTEST=ON -DARSEG_SANITIZE=ON -DARSEG_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan --target arseg_selftest -j "$jobs" >/dev/null
# Once per SIMD path of the vectorised kernels (ARSEG_SIMD caps the level; a CPU without
# AVX-512 runs its best path for the first line too).
for level in "" avx2 baseline; do
  echo "== AddressSanitizer + UBSan${level:+ (ARSEG_SIMD=$level)}"
  ARSEG_SIMD=$level ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ./build-asan/arseg_selftest test/fixtures "$scratch"
done

if command -v valgrind >/dev/null; then
  cmake -S . -B build-valgrind -DARSEG_SELFTEST=ON -DARSEG_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-valgrind --target arseg_selftest -j "$jobs" >/dev/null
  echo "== valgrind memcheck"
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    ./build-valgrind/arseg_selftest test/fixtures "$scratch"
else
  echo "valgrind not installed: skipping memcheck (apt-get install valgrind)" >&2
  exit 1
fi
echo "native-check: clean"
