#include "pointwise_head.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "../common/simd.h"

namespace arseg {

namespace {

// A chunk is 16 pixels (one AVX-512 vector, two AVX2, four SSE) x 4 classes of accumulators:
// each feature vector loaded serves four classes and each weight broadcast sixteen pixels, and
// the 16 x channels feature values of a chunk stay in L1 while the class blocks reuse them.
constexpr int kChunk = 16;
constexpr int kClassBlock = 4;

// Pixels per parallel task: large enough that thread hand-off is negligible, small enough to
// balance a frame over the cores.
constexpr size_t kTaskPixels = 4096;

struct Planes {
  const float* feature;
  size_t featureStride;
  int channels;
  const float* weight;
  const float* bias;
  int classes;
  float* logits;
  size_t logitsStride;
};

// Classes k .. k + KB - 1 of one chunk: `in` and `out` point at the chunk's first pixel in
// feature plane 0 and logits plane 0; channel c is at in + c * inStride, class k at
// out + k * outStride.
template <typename L, bool Fused, int KB>
ARSEG_INLINE void classBlock(const Planes& s, const float* in, size_t inStride, float* out, size_t outStride, int k) {
  typedef typename L::F F;
  constexpr int V = kChunk / L::kCount;
  F acc[KB][V] = {};
  const float* w = s.weight + static_cast<size_t>(k) * s.channels;
  for (int c = 0; c < s.channels; ++c, in += inStride) {
    F x[V];
    for (int v = 0; v < V; ++v) x[v] = loadLanes<L>(in + v * L::kCount);
    for (int j = 0; j < KB; ++j) {
      const float wj = w[static_cast<size_t>(j) * s.channels + c];
      // Fused: a fused multiply-add where the target has one (the AVX2 and AVX-512 clones).
      // Otherwise each product rounded, then added: the same bits at every vector width
      // (unfused, simd.h) and on the device (labels_kernel.cuh, headAt).
      if constexpr (Fused) {
        for (int v = 0; v < V; ++v) acc[j][v] += wj * x[v];
      } else {
        for (int v = 0; v < V; ++v) acc[j][v] += unfused(wj * x[v]);
      }
    }
  }
  for (int j = 0; j < KB; ++j)
    for (int v = 0; v < V; ++v) storeLanes<L>(out + (k + j) * outStride + v * L::kCount, acc[j][v] + s.bias[k + j]);
}

template <typename L, bool Fused>
ARSEG_INLINE void chunk(const Planes& s, const float* in, size_t inStride, float* out, size_t outStride) {
  int k = 0;
  for (; k + kClassBlock <= s.classes; k += kClassBlock)
    classBlock<L, Fused, kClassBlock>(s, in, inStride, out, outStride, k);
  switch (s.classes - k) {
    case 3: classBlock<L, Fused, 3>(s, in, inStride, out, outStride, k); break;
    case 2: classBlock<L, Fused, 2>(s, in, inStride, out, outStride, k); break;
    case 1: classBlock<L, Fused, 1>(s, in, inStride, out, outStride, k); break;
    default: break;
  }
}

template <typename L, bool Fused>
ARSEG_INLINE void headSpanAt(const Planes& s, size_t begin, size_t end) {
  const size_t count = end - begin;
  if (count < static_cast<size_t>(kChunk)) {
    // Shorter than one chunk: through zero-padded copies (channels x 16 in, classes x 16 out).
    std::vector<float> in(static_cast<size_t>(s.channels) * kChunk, 0.f), out(static_cast<size_t>(s.classes) * kChunk);
    for (int c = 0; c < s.channels; ++c)
      std::memcpy(&in[static_cast<size_t>(c) * kChunk], s.feature + c * s.featureStride + begin, sizeof(float) * count);
    chunk<L, Fused>(s, in.data(), kChunk, out.data(), kChunk);
    for (int k = 0; k < s.classes; ++k)
      std::memcpy(s.logits + k * s.logitsStride + begin, &out[static_cast<size_t>(k) * kChunk], sizeof(float) * count);
    return;
  }
  size_t p = begin;
  for (; p + kChunk <= end; p += kChunk)
    chunk<L, Fused>(s, s.feature + p, s.featureStride, s.logits + p, s.logitsStride);
  // The ragged end as one whole chunk ending at `end`: it overlaps pixels done already, which
  // are recomputed in the same order and so rewritten with the same values (no scalar tail).
  if (p < end) chunk<L, Fused>(s, s.feature + end - kChunk, s.featureStride, s.logits + end - kChunk, s.logitsStride);
}

template <bool Fused>
void headSpan(const Planes& s, size_t begin, size_t end) {
  simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA { headSpanAt<decltype(lanes), Fused>(s, begin, end); });
}

void checkSizes(int channels, int classes) {
  if (channels < 1) throw CodedError("ERR_INVALID_ARG", "channels must be positive");
  if (classes < 1) throw CodedError("ERR_INVALID_ARG", "classes must be positive");
}

}  // namespace

void pointwiseHeadPixels(const float* feature, size_t featureStride, int channels, size_t count, const float* weight,
                         const float* bias, int classes, float* logits, size_t logitsStride) {
  checkSizes(channels, classes);
  if (count == 0) return;
  headSpan<true>({feature, featureStride, channels, weight, bias, classes, logits, logitsStride}, 0, count);
}

void pointwiseHead(const float* feature, int channels, int height, int width, const float* weight, const float* bias,
                   int classes, float* logits, int threads) {
  checkSizes(channels, classes);
  if (height < 1 || width < 1) throw CodedError("ERR_SHAPE", "height and width must be positive");
  if (threads <= 0) threads = defaultThreads();
  const size_t plane = static_cast<size_t>(height) * width;
  const Planes s{feature, plane, channels, weight, bias, classes, logits, plane};
  // Whole tasks of kTaskPixels, the last one taking the remainder, so that no task but a frame
  // smaller than one vector needs the partial-vector path.
  const size_t tasks = std::max<size_t>(1, plane / kTaskPixels);
  if (tasks > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw CodedError("ERR_SHAPE", "the feature is too large: " + std::to_string(plane) + " pixels");
  parallelFor(static_cast<int>(tasks), threads, [&](int task, int) {
    const size_t begin = static_cast<size_t>(task) * kTaskPixels;
    const size_t end = static_cast<size_t>(task) + 1 == tasks ? plane : begin + kTaskPixels;
    headSpan<false>(s, begin, end);
  });
}

}  // namespace arseg
