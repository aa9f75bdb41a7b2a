#include "tensor_resize.h"

#include <cstddef>
#include <vector>

#include "../common/bilinear_axis.h"

namespace arseg {

void resizeAlignCorners(const float* src, int channels, int srcH, int srcW, int outH, int outW, float* out) {
  const std::vector<AxisTaps> ty = bilinearAxis(srcH, outH, AxisMap::AlignCorners);
  const std::vector<AxisTaps> tx = bilinearAxis(srcW, outW, AxisMap::AlignCorners);
  const size_t inPlane = static_cast<size_t>(srcH) * srcW, outPlane = static_cast<size_t>(outH) * outW;
  for (int c = 0; c < channels; ++c) {
    const float* plane = src + c * inPlane;
    float* dst = out + c * outPlane;
    for (int y = 0; y < outH; ++y) {
      const AxisTaps& v = ty[static_cast<size_t>(y)];
      const float* row0 = plane + static_cast<size_t>(v.index[0]) * srcW;
      const float* row1 = plane + static_cast<size_t>(v.index[1]) * srcW;
      float* o = dst + static_cast<size_t>(y) * outW;
      for (int x = 0; x < outW; ++x) {
        const AxisTaps& u = tx[static_cast<size_t>(x)];
        // PyTorch's order: each row interpolated along x, then the two rows along y.
        o[x] = v.weight[0] * (u.weight[0] * row0[u.index[0]] + u.weight[1] * row0[u.index[1]]) +
               v.weight[1] * (u.weight[0] * row1[u.index[0]] + u.weight[1] * row1[u.index[1]]);
      }
    }
  }
}

}  // namespace arseg
