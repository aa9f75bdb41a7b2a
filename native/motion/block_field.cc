#include "block_field.h"

#include <algorithm>

namespace arseg {

namespace {

// ceil(a / b) for b > 0 and any sign of a, in integers.
inline int ceilDiv(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

}  // namespace

BlockField rasteriseBlocks(const int32_t* vectors, size_t count, int frameWidth, int frameHeight,
                           int stride) {
  BlockField field;
  field.past = MotionGrid(frameWidth, frameHeight, stride);
  field.hasPast.assign(field.past.size(), 0);
  const int gw = field.past.width, gh = field.past.height;

  for (size_t n = 0; n < count; ++n) {
    const int32_t* row = vectors + n * 10;
    const int source = row[0], w = row[1], h = row[2];
    const int dstX = row[5], dstY = row[6];
    const int scale = row[9];
    if (w <= 0 || h <= 0 || scale <= 0) continue;  // malformed side data: ignore the block
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
    if (source > 0 && field.future.empty()) {
      field.future = MotionGrid(frameWidth, frameHeight, stride);
      field.hasFuture.assign(field.future.size(), 0);
    }
    MotionGrid& grid = source > 0 ? field.future : field.past;
    std::vector<uint8_t>& mask = source > 0 ? field.hasFuture : field.hasPast;
    for (int i = i0; i <= i1; ++i) {
      for (int j = j0; j <= j1; ++j) {
        const size_t k = static_cast<size_t>(i) * gw + j;
        grid.dx[k] = mx;
        grid.dy[k] = my;
        mask[k] = 1;
      }
    }
  }
  return field;
}

}  // namespace arseg
