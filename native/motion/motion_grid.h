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
  // just outside the frame is best guessed by the motion at its edge.
  void sample(float u, float v, float& outX, float& outY) const {
    u = std::fmin(std::fmax(u, 0.f), static_cast<float>(width - 1));
    v = std::fmin(std::fmax(v, 0.f), static_cast<float>(height - 1));
    const int j0 = static_cast<int>(u);
    const int i0 = static_cast<int>(v);
    const int j1 = j0 + 1 < width ? j0 + 1 : j0;
    const int i1 = i0 + 1 < height ? i0 + 1 : i0;
    const float fu = u - j0, fv = v - i0;
    const size_t a = static_cast<size_t>(i0) * width + j0, b = static_cast<size_t>(i0) * width + j1;
    const size_t c = static_cast<size_t>(i1) * width + j0, d = static_cast<size_t>(i1) * width + j1;
    const float w00 = (1 - fu) * (1 - fv), w01 = fu * (1 - fv), w10 = (1 - fu) * fv, w11 = fu * fv;
    outX = w00 * dx[a] + w01 * dx[b] + w10 * dx[c] + w11 * dx[d];
    outY = w00 * dy[a] + w01 * dy[b] + w10 * dy[c] + w11 * dy[d];
  }
};

}  // namespace arseg
