#include "logits_to_labels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/bilinear_axis.h"
#include "../common/coded_error.h"
#include "../common/simd.h"
#include "../common/parallel_for.h"
#include "../creff/sampling.h"

namespace arseg {

namespace {

// Pixels per parallel task of the same-size path.
constexpr size_t kTaskPixels = 8192;

// Arg-max over the class planes at pixels p .. p + N - 1: a running maximum and its index per
// lane, replaced only where a later class is strictly greater (the first maximum wins, as in the
// general path; a NaN never replaces nor is replaced, as there).
template <typename L>
ARSEG_INLINE void argmaxLanes(const float* logits, int classes, size_t plane, size_t p, uint8_t* labels) {
  typename L::F best = loadLanes<L>(logits + p);
  typename L::I arg = {};
  for (int c = 1; c < classes; ++c) {
    const typename L::F v = loadLanes<L>(logits + c * plane + p);
    const typename L::I greater = v > best;
    best = greater ? v : best;
    arg = greater ? typename L::I{} + c : arg;
  }
  storeLowBytes<L>(labels + p, arg);
}

template <typename L>
ARSEG_INLINE void argmaxSpanAt(const float* logits, int classes, size_t plane, size_t begin, size_t end,
                               uint8_t* labels) {
  if (end - begin < static_cast<size_t>(L::kCount)) {
    for (size_t p = begin; p < end; ++p) {
      int best = 0;
      float bestValue = logits[p];
      for (int c = 1; c < classes; ++c) {
        const float v = logits[c * plane + p];
        if (v > bestValue) {
          best = c;
          bestValue = v;
        }
      }
      labels[p] = static_cast<uint8_t>(best);
    }
    return;
  }
  size_t p = begin;
  for (; p + L::kCount <= end; p += L::kCount) argmaxLanes<L>(logits, classes, plane, p, labels);
  // The ragged end as one whole vector ending at `end`, rewriting a few labels with the same values.
  if (p < end) argmaxLanes<L>(logits, classes, plane, end - L::kCount, labels);
}

// Logits already at the output size: the bilinear map is the identity (every weight but the
// first tap's is 0, the first is 1), so the labels are the plain arg-max over the planes, which
// needs no coordinates, no taps and no multiplications. Byte-identical to the general path for
// finite logits (whose coordinates are exact here: align-corners maps x to x * 1; half-pixel to
// (x + 0.5) * n / n - 0.5, exact in float while (x + 0.5) * n fits 24 bits, n < 2896).
void argmaxSameSize(const float* logits, int classes, size_t plane, uint8_t* labels, int threads) {
  const size_t tasks = std::max<size_t>(1, plane / kTaskPixels);
  parallelFor(static_cast<int>(tasks), threads, [&](int task, int) {
    const size_t begin = static_cast<size_t>(task) * kTaskPixels;
    const size_t end = static_cast<size_t>(task) + 1 == tasks ? plane : begin + kTaskPixels;
    simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA { argmaxSpanAt<decltype(lanes)>(logits, classes, plane, begin, end, labels); });
  });
}

// Where output coordinate `x` reads the input, in input pixels (clamped to the grid later).
float sourceCoordinate(int x, int in, int out, LogitsUpsampling upsampling) {
  if (upsampling == LogitsUpsampling::AlignCorners) return x * alignCornersScale(in, out);
  const float s = (static_cast<float>(x) + 0.5f) * static_cast<float>(in) / static_cast<float>(out) - 0.5f;
  return s < 0.f ? 0.f : s;
}

AxisMap axisMap(LogitsUpsampling upsampling) {
  return upsampling == LogitsUpsampling::AlignCorners ? AxisMap::AlignCorners : AxisMap::HalfPixel;
}

// Column taps padded to four (weight 0 on the first index), so the inner loop has no branches.
struct PaddedTaps {
  int index[4];
  float weight[4];
};

std::vector<PaddedTaps> padTaps(const std::vector<AxisTaps>& taps) {
  std::vector<PaddedTaps> out(taps.size());
  for (size_t x = 0; x < taps.size(); ++x) {
    for (int k = 0; k < 4; ++k) {
      const bool used = k < taps[x].count;
      out[x].index[k] = used ? taps[x].index[k] : taps[x].index[0];
      out[x].weight[k] = used ? taps[x].weight[k] : 0.f;
    }
  }
  return out;
}

bool isIdentity(const std::vector<AxisTaps>& taps) {
  for (size_t x = 0; x < taps.size(); ++x)
    if (taps[x].count != 1 || taps[x].index[0] != static_cast<int>(x) || taps[x].weight[0] != 1.f) return false;
  return true;
}

}  // namespace

void logitsToLabelsVia(const float* logits, int classes, int h, int w, const LogitsResize& via, int outH,
                       int outW, LogitsUpsampling upsampling, uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  if (h < 1 || w < 1 || outH < 1 || outW < 1 || via.height < 1 || via.width < 1)
    throw CodedError("ERR_SHAPE", "sizes must be positive");
  if (threads <= 0) threads = defaultThreads();
  const std::vector<AxisTaps> ty = composeAxes(bilinearAxis(h, via.height, axisMap(via.upsampling)),
                                               bilinearAxis(via.height, outH, axisMap(upsampling)));
  const std::vector<AxisTaps> tx = composeAxes(bilinearAxis(w, via.width, axisMap(via.upsampling)),
                                               bilinearAxis(via.width, outW, axisMap(upsampling)));
  const size_t plane = static_cast<size_t>(h) * w;
  // Both resizes the identity (the PSPNets' logits at their input size, the input the frame):
  // the plain arg-max.
  if (h == outH && w == outW && isIdentity(ty) && isIdentity(tx)) {
    argmaxSameSize(logits, classes, plane, labels, threads);
    return;
  }
  // Separable: per output row, the row's input rows combined once per class (contiguous, so
  // vectorised), then each output pixel's column taps on that combined row; the class loop
  // outside keeps the running arg-max in two small arrays.
  const std::vector<PaddedTaps> columns = padTaps(tx);
  const int rowsPerTask = std::max(1, static_cast<int>(kTaskPixels / static_cast<size_t>(outW)));
  const int tasks = (outH + rowsPerTask - 1) / rowsPerTask;
  parallelFor(tasks, threads, [&](int task, int) {
    std::vector<float> combined(static_cast<size_t>(w));
    std::vector<float> best(static_cast<size_t>(outW));
    std::vector<uint8_t> arg(static_cast<size_t>(outW));
    const int end = std::min(outH, (task + 1) * rowsPerTask);
    for (int y = task * rowsPerTask; y < end; ++y) {
      const AxisTaps& v = ty[static_cast<size_t>(y)];
      for (int c = 0; c < classes; ++c) {
        const float* p = logits + c * plane;
        const float* rows[4];
        for (int a = 0; a < v.count; ++a) rows[a] = p + static_cast<size_t>(v.index[a]) * w;
        float* t = combined.data();
        for (int xi = 0; xi < w; ++xi) {
          float sum = 0.f;
          for (int a = 0; a < v.count; ++a) sum += v.weight[a] * rows[a][xi];
          t[xi] = sum;
        }
        for (int x = 0; x < outW; ++x) {
          const PaddedTaps& u = columns[static_cast<size_t>(x)];
          const float value = u.weight[0] * t[u.index[0]] + u.weight[1] * t[u.index[1]] +
                              u.weight[2] * t[u.index[2]] + u.weight[3] * t[u.index[3]];
          if (c == 0 || value > best[static_cast<size_t>(x)]) {
            best[static_cast<size_t>(x)] = value;
            arg[static_cast<size_t>(x)] = static_cast<uint8_t>(c);
          }
        }
      }
      std::memcpy(labels + static_cast<size_t>(y) * outW, arg.data(), static_cast<size_t>(outW));
    }
  });
}

void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW,
                    LogitsUpsampling upsampling, uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  if (h < 1 || w < 1 || outH < 1 || outW < 1) throw CodedError("ERR_SHAPE", "sizes must be positive");
  if (threads <= 0) threads = defaultThreads();
  const size_t plane = static_cast<size_t>(h) * w;
  if (h == outH && w == outW) {
    argmaxSameSize(logits, classes, plane, labels, threads);
    return;
  }
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
