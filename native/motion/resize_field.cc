#include "resize_field.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../common/bilinear_axis.h"
#include "motion_grid.h"

namespace arseg {

namespace {

void resizeCellCentres(const float* field, int gw, int gh, int stride, int frameW, int frameH, int outW, int outH,
                       float* out) {
  MotionGrid grid;
  grid.width = gw;
  grid.height = gh;
  grid.stride = stride;
  const size_t n = static_cast<size_t>(gw) * gh;
  grid.dx.assign(field, field + n);
  grid.dy.assign(field + n, field + 2 * n);
  const float sx = static_cast<float>(outW) / frameW, sy = static_cast<float>(outH) / frameH;
  const float half = 0.5f * (stride - 1);
  const size_t plane = static_cast<size_t>(outW) * outH;
  for (int i = 0; i < outH; ++i) {
    // centre of output cell i in frame pixels, then in field cells
    const float v = (((i + 0.5f) / sy - 0.5f) - half) / stride;
    for (int j = 0; j < outW; ++j) {
      const float u = (((j + 0.5f) / sx - 0.5f) - half) / stride;
      float dx, dy;
      grid.sample(u, v, dx, dy);
      out[static_cast<size_t>(i) * outW + j] = dx * sx;
      out[plane + static_cast<size_t>(i) * outW + j] = dy * sy;
    }
  }
}

// PyTorch's nearest source index (UpSample.h, nearest_idx) for a float tensor without a scale factor.
int nearestSource(int x, int in, int out) {
  if (in == out) return x;
  if (out == 2 * in) return x >> 1;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  return std::min(static_cast<int>(std::floor(static_cast<float>(x) * scale)), in - 1);
}

// The official resizes work on the per-pixel field, which is the cell field with each cell
// repeated over its stride x stride pixels: pixel p reads cell p / stride (clamped, for a last
// cell cut by the frame's edge). Taps are taken on pixels, then mapped to cells, so the result
// is exactly that of the per-pixel field whatever the stride.
void resizeOfficial(const float* field, int gw, int gh, int stride, int frameW, int frameH, int outW, int outH,
                    float* out, MotionResize mode) {
  std::vector<AxisTaps> ty, tx;
  if (mode == MotionResize::AlignCorners) {
    ty = bilinearAxis(frameH, outH, AxisMap::AlignCorners);
    tx = bilinearAxis(frameW, outW, AxisMap::AlignCorners);
  } else {
    auto nearest = [](int in, int n) {
      std::vector<AxisTaps> taps(static_cast<size_t>(n));
      for (int x = 0; x < n; ++x) {
        taps[static_cast<size_t>(x)].count = 1;
        taps[static_cast<size_t>(x)].index[0] = nearestSource(x, in, n);
        taps[static_cast<size_t>(x)].weight[0] = 1.f;
      }
      return taps;
    };
    ty = nearest(frameH, outH);
    tx = nearest(frameW, outW);
  }
  auto toCells = [stride](std::vector<AxisTaps>& taps, int cells) {
    for (AxisTaps& t : taps)
      for (int k = 0; k < t.count; ++k) t.index[k] = std::min(t.index[k] / stride, cells - 1);
  };
  toCells(ty, gh);
  toCells(tx, gw);
  // The official code multiplies the field by the height ratio before resizing (in float64).
  const double ratio = static_cast<double>(outH) / static_cast<double>(frameH);
  const size_t cells = static_cast<size_t>(gw) * gh, plane = static_cast<size_t>(outW) * outH;
  for (int c = 0; c < 2; ++c) {
    const float* src = field + c * cells;
    float* dst = out + c * plane;
    for (int i = 0; i < outH; ++i) {
      const AxisTaps& v = ty[static_cast<size_t>(i)];
      for (int j = 0; j < outW; ++j) {
        const AxisTaps& u = tx[static_cast<size_t>(j)];
        double sum = 0;
        for (int a = 0; a < v.count; ++a) {
          const float* row = src + static_cast<size_t>(v.index[a]) * gw;
          double line = 0;
          for (int b = 0; b < u.count; ++b) line += static_cast<double>(u.weight[b]) * row[u.index[b]];
          sum += static_cast<double>(v.weight[a]) * line;
        }
        dst[static_cast<size_t>(i) * outW + j] = static_cast<float>(sum * ratio);
      }
    }
  }
}

}  // namespace

void resizeMotionField(const float* field, int gw, int gh, int stride, int frameW, int frameH, int outW, int outH,
                       float* out, MotionResize mode) {
  if (mode == MotionResize::CellCentres)
    resizeCellCentres(field, gw, gh, stride, frameW, frameH, outW, outH, out);
  else
    resizeOfficial(field, gw, gh, stride, frameW, frameH, outW, outH, out, mode);
}

}  // namespace arseg
