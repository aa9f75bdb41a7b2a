#include "logits_to_labels.h"

#include <vector>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "../creff/sampling.h"

namespace arseg {

namespace {

// Where output coordinate `x` reads the input, in input pixels (clamped to the grid later).
float sourceCoordinate(int x, int in, int out, LogitsUpsampling upsampling) {
  if (upsampling == LogitsUpsampling::AlignCorners) return x * alignCornersScale(in, out);
  const float s = (static_cast<float>(x) + 0.5f) * static_cast<float>(in) / static_cast<float>(out) - 0.5f;
  return s < 0.f ? 0.f : s;
}

}  // namespace

void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW,
                    LogitsUpsampling upsampling, uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  if (h < 1 || w < 1 || outH < 1 || outW < 1) throw CodedError("ERR_SHAPE", "sizes must be positive");
  if (threads <= 0) threads = defaultThreads();
  const size_t plane = static_cast<size_t>(h) * w;
  parallelFor(outH, threads, [&](int y, int) {
    uint8_t* row = labels + static_cast<size_t>(y) * outW;
    for (int x = 0; x < outW; ++x) {
      const BilinearTaps t = bilinearClamped(sourceCoordinate(x, w, outW, upsampling),
                                             sourceCoordinate(y, h, outH, upsampling), h, w);
      int best = 0;
      float bestValue = 0;
      for (int c = 0; c < classes; ++c) {
        const float* p = logits + c * plane;
        const float v = t.weight[0] * p[t.offset[0]] + t.weight[1] * p[t.offset[1]] +
                        t.weight[2] * p[t.offset[2]] + t.weight[3] * p[t.offset[3]];
        if (c == 0 || v > bestValue) {
          best = c;
          bestValue = v;
        }
      }
      row[x] = static_cast<uint8_t>(best);
    }
  });
}

}  // namespace arseg
