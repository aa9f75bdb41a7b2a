#include "block_field.h"

#include <algorithm>

namespace arseg {

namespace {

// ceil(a / b) for b > 0 and any sign of a, in integers.
inline int ceilDiv(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

}  // namespace

BlockField rasteriseBlocks(const int32_t* vectors, const int32_t* refs, size_t count,
                           int frameWidth, int frameHeight, int stride) {
  BlockField field;
  field.vec[0] = MotionGrid(frameWidth, frameHeight, stride);
  field.ref[0].assign(field.vec[0].size(), 0);
  const int gw = field.vec[0].width, gh = field.vec[0].height;

  for (size_t n = 0; n < count; ++n) {
    const int32_t* row = vectors + n * 10;
    const int source = row[0], w = row[1], h = row[2];
    const int dstX = row[5], dstY = row[6];
    const int scale = row[9];
    const int32_t ref = refs[n];
    if (ref == 0 || w <= 0 || h <= 0 || scale <= 0) continue;  // no prediction, or malformed
    const float mx = static_cast<float>(row[7]) / scale;
    const float my = static_cast<float>(row[8]) / scale;
    // The block spans [dst - size/2, dst + size/2) in pixels (dst is its centre); cell j's centre
    // is j * stride + (stride - 1) / 2. Doubling everything keeps the bounds in integers:
    // the cells inside are those with 2 * x0 <= 2 * j * stride + stride - 1 < 2 * x1.
    const int x0 = 2 * dstX - w, x1 = 2 * dstX + w;  // doubled block edges
    const int y0 = 2 * dstY - h, y1 = 2 * dstY + h;
    const int den = 2 * stride, off = stride - 1;
    const int j0 = std::max(0, ceilDiv(x0 - off, den));
    const int j1 = std::min(gw - 1, ceilDiv(x1 - off, den) - 1);
    const int i0 = std::max(0, ceilDiv(y0 - off, den));
    const int i1 = std::min(gh - 1, ceilDiv(y1 - off, den) - 1);
    const int slot = source > 0 ? 1 : 0;
    if (slot == 1 && !field.hasSlot(1)) {
      field.vec[1] = MotionGrid(frameWidth, frameHeight, stride);
      field.ref[1].assign(field.vec[1].size(), 0);
    }
    MotionGrid& grid = field.vec[slot];
    std::vector<int32_t>& cellRef = field.ref[slot];
    for (int i = i0; i <= i1; ++i) {
      for (int j = j0; j <= j1; ++j) {
        const size_t k = static_cast<size_t>(i) * gw + j;
        grid.dx[k] = mx;
        grid.dy[k] = my;
        cellRef[k] = ref;
      }
    }
  }
  return field;
}

}  // namespace arseg
