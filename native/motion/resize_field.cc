#include "resize_field.h"

#include <cstddef>
#include <vector>

#include "motion_grid.h"

namespace arseg {

void resizeMotionField(const float* field, int gw, int gh, int stride, int frameW, int frameH,
                       int outW, int outH, float* out) {
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

}  // namespace arseg
