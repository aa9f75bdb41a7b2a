#include "logits_to_labels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "../common/simd.h"

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
    simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA {
      argmaxSpanAt<decltype(lanes)>(logits, classes, plane, begin, end, labels);
    });
  });
}

// One output row band [y0, y1) through the tables, K column taps (taps.columnTaps). Separable:
// per output row, each class's input rows combined once (contiguous, so vectorised) into a
// classes x w buffer (a few tens of kB: it stays in cache), then per output pixel its column taps
// loaded once and the classes' values compared in registers. The sums are labels_taps.h's, term
// for term, as the device's labelAt computes them per pixel (this file is compiled for baseline
// x86-64, which has no fused multiply-add to contract them into).
template <int K>
void labelsRows(const float* logits, int classes, const LabelsTaps& taps, int y0, int y1, uint8_t* labels) {
  const int w = taps.resize.width, outW = taps.resize.outWidth;
  const size_t plane = static_cast<size_t>(taps.resize.height) * w;
  std::vector<float> combined(static_cast<size_t>(classes) * w);
  for (int y = y0; y < y1; ++y) {
    const AxisTaps& v = taps.rows[static_cast<size_t>(y)];
    for (int c = 0; c < classes; ++c) {
      const float* p = logits + c * plane;
      const float* rows[4];
      for (int a = 0; a < v.count; ++a) rows[a] = p + static_cast<size_t>(v.index[a]) * w;
      float* t = combined.data() + static_cast<size_t>(c) * w;
      for (int xi = 0; xi < w; ++xi) {
        float sum = 0.f;
        for (int a = 0; a < v.count; ++a) sum += v.weight[a] * rows[a][xi];
        t[xi] = sum;
      }
    }
    uint8_t* row = labels + static_cast<size_t>(y) * outW;
    for (int x = 0; x < outW; ++x) {
      const AxisTaps& u = taps.columns[static_cast<size_t>(x)];
      int best = 0;
      float bestValue = 0.f;
      const float* t = combined.data();
      for (int c = 0; c < classes; ++c, t += w) {
        float value = u.weight[0] * t[u.index[0]];
        for (int b = 1; b < K; ++b) value += u.weight[b] * t[u.index[b]];
        if (c == 0 || value > bestValue) {
          best = c;
          bestValue = value;
        }
      }
      row[x] = static_cast<uint8_t>(best);
    }
  }
}

LabelsResize oneResize(int h, int w, int outH, int outW, LogitsUpsampling upsampling) {
  LabelsResize r;
  r.height = h, r.width = w, r.outHeight = outH, r.outWidth = outW, r.upsampling = upsampling;
  return r;
}

}  // namespace

void logitsToLabels(const float* logits, int classes, const LabelsTaps& taps, uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  if (threads <= 0) threads = defaultThreads();
  const LabelsResize& r = taps.resize;
  if (taps.identity) {
    argmaxSameSize(logits, classes, static_cast<size_t>(r.height) * r.width, labels, threads);
    return;
  }
  const int rowsPerTask = std::max(1, static_cast<int>(kTaskPixels / static_cast<size_t>(r.outWidth)));
  const int tasks = (r.outHeight + rowsPerTask - 1) / rowsPerTask;
  parallelFor(tasks, threads, [&](int task, int) {
    const int y0 = task * rowsPerTask, y1 = std::min(r.outHeight, y0 + rowsPerTask);
    switch (taps.columnTaps) {
      case 1: labelsRows<1>(logits, classes, taps, y0, y1, labels); break;
      case 2: labelsRows<2>(logits, classes, taps, y0, y1, labels); break;
      case 3: labelsRows<3>(logits, classes, taps, y0, y1, labels); break;
      default: labelsRows<4>(logits, classes, taps, y0, y1, labels); break;
    }
  });
}

void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW, LogitsUpsampling upsampling,
                    uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  logitsToLabels(logits, classes, *labelsTaps(oneResize(h, w, outH, outW, upsampling)), labels, threads);
}

void logitsToLabelsVia(const float* logits, int classes, int h, int w, const LogitsResize& via, int outH, int outW,
                       LogitsUpsampling upsampling, uint8_t* labels, int threads) {
  if (classes < 1 || classes > 255) throw CodedError("ERR_INVALID_ARG", "classes must be 1 to 255");
  LabelsResize r = oneResize(h, w, outH, outW, upsampling);
  r.twoStep = true;
  r.via = via;
  logitsToLabels(logits, classes, *labelsTaps(r), labels, threads);
}

}  // namespace arseg
