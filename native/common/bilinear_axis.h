// One axis of a bilinear resize by PyTorch's F.interpolate(mode='bilinear') rules, as a table of
// taps per output index. Bilinear resizing is separable, so a 2-D resize is the product of two
// such tables, and two resizes in a row (the official BiSeNet18's x8 head and then the
// evaluation's resize to the label size) compose into one table per axis: the native kernels
// that reproduce the official pipeline (the LR tensor, the motion field at the feature size,
// the labels) compute each output from its taps in one pass, without the intermediate arrays.
#pragma once

#include <algorithm>
#include <vector>

namespace arseg {

enum class AxisMap {
  AlignCorners,  // output x reads input x * (in - 1) / (out - 1)
  HalfPixel,     // output x reads input (x + 0.5) * in / out - 0.5, clamped at 0
};

// Up to four input indices and their weights (two for one resize, four for two in a row).
struct AxisTaps {
  int count = 0;
  int index[4] = {0, 0, 0, 0};
  float weight[4] = {0.f, 0.f, 0.f, 0.f};
};

// PyTorch's source index and lambdas (aten/src/ATen/native/UpSample.h,
// compute_source_index_and_lambda) in float, as it computes them for float tensors: the same
// size maps x to itself; otherwise index0 = floor(source), index1 = index0 + 1 except at the last
// input, lambda1 = source - index0 (clamped to [0, 1]). Weights of 0 are kept (two taps always),
// so that the order of the terms is PyTorch's.
inline std::vector<AxisTaps> bilinearAxis(int in, int out, AxisMap map) {
  std::vector<AxisTaps> taps(static_cast<size_t>(out));
  const float scale = map == AxisMap::AlignCorners
                          ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f)
                          : static_cast<float>(in) / static_cast<float>(out);
  for (int x = 0; x < out; ++x) {
    AxisTaps& t = taps[static_cast<size_t>(x)];
    t.count = 2;
    if (in == out) {
      t.index[0] = t.index[1] = x;
      t.weight[0] = 1.f;
      t.weight[1] = 0.f;
      continue;
    }
    float source =
        map == AxisMap::AlignCorners ? scale * static_cast<float>(x) : scale * (static_cast<float>(x) + 0.5f) - 0.5f;
    if (source < 0.f) source = 0.f;
    const int i0 = std::min(static_cast<int>(source), in - 1);
    const int i1 = i0 < in - 1 ? i0 + 1 : i0;
    const float lambda1 = std::min(std::max(source - static_cast<float>(i0), 0.f), 1.f);
    t.index[0] = i0;
    t.index[1] = i1;
    t.weight[0] = 1.f - lambda1;
    t.weight[1] = lambda1;
  }
  return taps;
}

// The taps of `first` (in -> mid) followed by `second` (mid -> out): per output index, each of
// the second's two intermediate taps expanded into the first's input taps, equal input indices
// merged, zero weights dropped. Products are taken in double and rounded once.
inline std::vector<AxisTaps> composeAxes(const std::vector<AxisTaps>& first, const std::vector<AxisTaps>& second) {
  std::vector<AxisTaps> out(second.size());
  for (size_t x = 0; x < second.size(); ++x) {
    int index[4];
    double weight[4];
    int n = 0;
    const AxisTaps& s = second[x];
    for (int a = 0; a < s.count; ++a) {
      const AxisTaps& f = first[static_cast<size_t>(s.index[a])];
      for (int b = 0; b < f.count; ++b) {
        const double w = static_cast<double>(s.weight[a]) * static_cast<double>(f.weight[b]);
        if (w == 0.0) continue;
        int k = 0;
        while (k < n && index[k] != f.index[b]) ++k;
        if (k == n) {
          index[n] = f.index[b];
          weight[n++] = 0.0;
        }
        weight[k] += w;
      }
    }
    AxisTaps& t = out[x];
    t.count = n;
    for (int k = 0; k < n; ++k) {
      t.index[k] = index[k];
      t.weight[k] = static_cast<float>(weight[k]);
    }
  }
  return out;
}

}  // namespace arseg
