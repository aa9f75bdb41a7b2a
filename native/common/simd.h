// Vectorised loops at the CPU's own vector width: a kernel is written once as a template over
// Lanes<N> (GCC/Clang vector extension types of N floats), then compiled three times, for
// AVX-512 (N = 16), AVX2 + FMA (N = 8) and baseline x86-64 (N = 4), and simdLevel() picks one at
// run time (feature-based, so it also works under VMs that hide the CPU model; the environment
// variable ARSEG_SIMD=baseline|avx2 caps it).
//
// Why not one 16-float type under target_clones: GCC 12 lowers a vector wider than the target's
// registers through the stack, so the AVX2 clone of a 16-float loop spills every accumulator on
// every iteration. At the native width the accumulators stay in registers on every target.
// The helpers a target function calls must be inlined into it (ARSEG_INLINE): a helper compiled
// on its own is compiled for the baseline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(ARSEG_NO_CLONES)
#define ARSEG_X86_TARGETS 1
#define ARSEG_TARGET_AVX512 __attribute__((target("avx512f")))
#define ARSEG_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define ARSEG_X86_TARGETS 0
#define ARSEG_TARGET_AVX512
#define ARSEG_TARGET_AVX2
#endif

#if ARSEG_X86_TARGETS && !defined(__clang__)
#include <immintrin.h>  // laneBits: _mm_movemask_ps
#endif

#define ARSEG_INLINE inline __attribute__((always_inline))
// For lambdas inside such functions (a lambda is a function of its own too).
#define ARSEG_INLINE_LAMBDA __attribute__((always_inline))

namespace arseg {

template <int N>
struct Lanes {
  static constexpr int kCount = N;
  typedef float F __attribute__((vector_size(N * sizeof(float))));
  typedef int32_t I __attribute__((vector_size(N * sizeof(int32_t))));
  typedef uint8_t B __attribute__((vector_size(N)));
  typedef uint8_t BytesOfI __attribute__((vector_size(N * sizeof(int32_t))));
};

// (Free functions rather than members: GCC 12 does not treat the dependent vector typedefs as
// vectors inside the class template's own member functions.)
template <typename L>
ARSEG_INLINE typename L::F loadLanes(const float* p) {
  typename L::F v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename L>
ARSEG_INLINE void storeLanes(float* p, typename L::F v) {
  std::memcpy(p, &v, sizeof v);
}

// `value` (a float or a vector of floats) rounded where it was computed: the compiler may not fuse
// the product that made it into the addition that uses it. GCC's default -ffp-contract=fast
// turns a * b + c into one fused multiply-add, rounded once, wherever the target has FMA: in
// the AVX2 and AVX-512 clones, not in the baseline one, so the same source would round
// differently per SIMD level. Kernels whose bits must not depend on the level (the pointwise
// head, which the device path repeats on the GPU) write unfused(a * b) + c. The empty asm takes
// the value in a vector register and hands it back unseen, which costs no instruction.
template <typename T>
ARSEG_INLINE T unfused(T value) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+v"(value));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(value));
#else
  volatile T kept = value;  // other targets: through memory (slow, but the same bits)
  value = kept;
#endif
  return value;
}

template <typename L, size_t... i>
ARSEG_INLINE typename L::B lowBytes(typename L::I v, std::index_sequence<i...>) {
  if constexpr (L::kCount == 16) {
    return __builtin_convertvector(v, typename L::B);  // one vpmovdb
  } else {
    // A byte shuffle (pshufb): below AVX-512, GCC narrows int32 -> uint8 lane by lane through
    // scalar registers.
    typename L::BytesOfI all;
    std::memcpy(&all, &v, sizeof all);
    typename L::B out;
#if defined(__clang__)
    out = __builtin_shufflevector(all, all, (4 * i)...);
#else
    const typename L::BytesOfI pick = {static_cast<uint8_t>(4 * i)...};  // the rest of the mask: byte 0
    const typename L::BytesOfI picked = __builtin_shuffle(all, pick);
    std::memcpy(&out, &picked, sizeof out);
#endif
    return out;
  }
}

// The low byte of each lane (values 0..255), stored as N bytes.
template <typename L>
ARSEG_INLINE void storeLowBytes(uint8_t* p, typename L::I v) {
  const typename L::B bytes = lowBytes<L>(v, std::make_index_sequence<L::kCount>{});
  std::memcpy(p, &bytes, sizeof bytes);
}

// Bit l set where lane l of a comparison result (-1 or 0) is set. GCC's target builtins are
// checked where they are expanded, after these are inlined into the function compiled for
// the level (an intrinsic, being a function with its own target, would refuse to inline into
// the kernel templates first).
#if ARSEG_X86_TARGETS && !defined(__clang__)
ARSEG_INLINE unsigned laneBits(Lanes<4>::I m) {
  return static_cast<unsigned>(_mm_movemask_ps(reinterpret_cast<__m128>(m)));
}
ARSEG_INLINE unsigned laneBits(Lanes<8>::I m) {
  typedef float V8 __attribute__((vector_size(32)));
  return static_cast<unsigned>(__builtin_ia32_movmskps256(reinterpret_cast<V8>(m)));
}
ARSEG_INLINE unsigned laneBits(Lanes<16>::I m) {
  return static_cast<unsigned>(__builtin_ia32_ptestmd512(m, m, static_cast<unsigned short>(0xFFFF)));
}
#else
template <typename I>
ARSEG_INLINE unsigned laneBits(I m) {
  unsigned bits = 0;
  for (int l = 0; l < static_cast<int>(sizeof(I) / sizeof(int32_t)); ++l) bits |= (m[l] != 0 ? 1u : 0u) << l;
  return bits;
}
#endif

enum class SimdLevel { Baseline, Avx2, Avx512 };

inline SimdLevel detectSimdLevel() {
  SimdLevel level = SimdLevel::Baseline;
#if ARSEG_X86_TARGETS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    level = SimdLevel::Avx512;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    level = SimdLevel::Avx2;
#endif
  // ARSEG_SIMD=baseline|avx2 caps the level, so that tests run every path on one machine.
  if (const char* cap = std::getenv("ARSEG_SIMD")) {
    if (std::strcmp(cap, "baseline") == 0) level = SimdLevel::Baseline;
    if (std::strcmp(cap, "avx2") == 0 && level == SimdLevel::Avx512) level = SimdLevel::Avx2;
  }
  return level;
}

inline SimdLevel simdLevel() {
  static const SimdLevel level = detectSimdLevel();
  return level;
}

// Runs fn(Lanes<N>{}) compiled for this CPU's level: fn is a generic lambda marked
// ARSEG_INLINE_LAMBDA whose body calls the kernel template with decltype(lanes), e.g.
//   simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA { kernel<decltype(lanes)>(args); });
// Each level's body is inlined into a function compiled for that target (below), so a kernel is
// written once and this switch is the only place that names the levels.
template <typename Fn>
ARSEG_TARGET_AVX512 void runAvx512(Fn& fn) {
  fn(Lanes<16>{});
}
template <typename Fn>
ARSEG_TARGET_AVX2 void runAvx2(Fn& fn) {
  fn(Lanes<8>{});
}
template <typename Fn>
void runBaseline(Fn& fn) {
  fn(Lanes<4>{});
}

template <typename Fn>
void simdDispatch(Fn&& fn) {
  switch (simdLevel()) {
    case SimdLevel::Avx512: runAvx512(fn); break;
    case SimdLevel::Avx2: runAvx2(fn); break;
    default: runBaseline(fn); break;
  }
}

}  // namespace arseg
