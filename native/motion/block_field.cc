#include "block_field.h"

#include <algorithm>
#include <cmath>

namespace arseg {

BlockField rasteriseBlocks(const int32_t* vectors, size_t count, int frameWidth, int frameHeight,
                           int stride) {
  BlockField field;
  field.past = MotionGrid(frameWidth, frameHeight, stride);
  field.future = MotionGrid(frameWidth, frameHeight, stride);
  field.hasPast.assign(field.past.size(), 0);
  field.hasFuture.assign(field.future.size(), 0);
  const int gw = field.past.width, gh = field.past.height;
  const float half = 0.5f * (stride - 1);

  for (size_t n = 0; n < count; ++n) {
    const int32_t* row = vectors + n * 10;
    const int source = row[0], w = row[1], h = row[2];
    const int dstX = row[5], dstY = row[6];
    const int scale = row[9];
    if (w <= 0 || h <= 0 || scale <= 0) continue;  // malformed side data: ignore the block
    const float mx = static_cast<float>(row[7]) / scale;
    const float my = static_cast<float>(row[8]) / scale;
    // The block spans [dst - size/2, dst + size/2) in pixels (dst is its centre). Find the cells
    // whose centre c = j * stride + half lies inside: j >= (x0 - half) / stride, etc.
    const float x0 = dstX - 0.5f * w, x1 = dstX + 0.5f * w;
    const float y0 = dstY - 0.5f * h, y1 = dstY + 0.5f * h;
    const int j0 = std::max(0, static_cast<int>(std::ceil((x0 - half) / stride)));
    const int j1 = std::min(gw - 1, static_cast<int>(std::ceil((x1 - half) / stride)) - 1);
    const int i0 = std::max(0, static_cast<int>(std::ceil((y0 - half) / stride)));
    const int i1 = std::min(gh - 1, static_cast<int>(std::ceil((y1 - half) / stride)) - 1);
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
