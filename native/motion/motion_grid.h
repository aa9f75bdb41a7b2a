// A dense 2-channel field on a grid of cells, each cell standing for a stride x stride block of
// pixels and sampled at that block's centre. Values are displacements in pixels.
#pragma once

#include <cmath>
#include <vector>

namespace arseg {

struct MotionGrid {
  int width = 0;   // cells per row: ceil(frameWidth / stride)
  int height = 0;  // cells per column
  int stride = 1;
  std::vector<float> dx;  // height x width
  std::vector<float> dy;

  MotionGrid() = default;
  MotionGrid(int frameWidth, int frameHeight, int cellStride)
      : width((frameWidth + cellStride - 1) / cellStride),
        height((frameHeight + cellStride - 1) / cellStride),
        stride(cellStride),
        dx(static_cast<size_t>(width) * height, 0.f),
        dy(static_cast<size_t>(width) * height, 0.f) {}

  size_t size() const { return dx.size(); }
  bool empty() const { return dx.empty(); }

  // Pixel coordinate of the centre of cell column j (row i is the same with y).
  float centre(int j) const { return j * stride + 0.5f * (stride - 1); }

  // Bilinear sample at fractional cell coordinates (u, v), clamped to the border cells: motion
  // just outside the frame is best guessed by the motion at its edge. On the hot path of
  // composition (once per cell per frame), hence plain comparisons rather than fmin/fmax.
  void sample(float u, float v, float& outX, float& outY) const {
    const float maxU = static_cast<float>(width - 1), maxV = static_cast<float>(height - 1);
    u = u < 0.f ? 0.f : (u > maxU ? maxU : u);
    v = v < 0.f ? 0.f : (v > maxV ? maxV : v);
    const int j0 = static_cast<int>(u);  // u >= 0: truncation is floor
    const int i0 = static_cast<int>(v);
    const int dj = j0 + 1 < width ? 1 : 0;
    const size_t di = i0 + 1 < height ? static_cast<size_t>(width) : 0;
    const float fu = u - j0, fv = v - i0;
    const size_t a = static_cast<size_t>(i0) * width + j0;
    const float* x = dx.data() + a;
    const float* y = dy.data() + a;
    const float topX = x[0] + fu * (x[dj] - x[0]), botX = x[di] + fu * (x[di + dj] - x[di]);
    const float topY = y[0] + fu * (y[dj] - y[0]), botY = y[di] + fu * (y[di + dj] - y[di]);
    outX = topX + fv * (botX - topX);
    outY = topY + fv * (botY - topY);
  }
};

}  // namespace arseg
