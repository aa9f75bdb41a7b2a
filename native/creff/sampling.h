// Coordinate maps and bilinear sampling shared by every CReFF kernel (CPU reference, fused CPU,
// CUDA), so the three cannot drift apart on the part most easily got subtly wrong.
#pragma once

#include <cmath>

#ifdef __CUDACC__
#define ARSEG_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined: the fused kernel is compiled once per instruction set (common/simd.h), and a
// helper left out of line would be compiled for the baseline only (floorf and fminf then become
// library calls, which made computing the warp's taps a sixth of the kernel).
#define ARSEG_HD inline __attribute__((always_inline))
#else
#define ARSEG_HD inline
#endif

namespace arseg {

// Bilinear upsampling with align_corners=True: output pixel x reads input position
// x * (in - 1) / (out - 1).
ARSEG_HD float alignCornersScale(int in, int out) {
  return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
}

// Where the warp samples the keyframe for output coordinate `x` displaced by `m` (pixels), in a
// dimension of `size` pixels. official: the official code's align_corners=False quirk.
ARSEG_HD float warpSource(int x, float m, int size, bool official) {
  const float p = static_cast<float>(x) + m;
  if (!official || size < 2) return p;
  return p * static_cast<float>(size) / static_cast<float>(size - 1) - 0.5f;
}

// The four taps of a bilinear sample at (sx, sy) on an H x W grid, with taps outside the grid
// given weight 0 (grid_sample's padding_mode='zeros'). Offsets index an H x W plane.
struct BilinearTaps {
  int offset[4];
  float weight[4];
};

ARSEG_HD BilinearTaps bilinearZero(float sx, float sy, int height, int width) {
  BilinearTaps t;
  const float fx0 = floorf(sx), fy0 = floorf(sy);
  const int x0 = static_cast<int>(fx0), y0 = static_cast<int>(fy0);
  const float ax = sx - fx0, ay = sy - fy0;
  const int xs[4] = {x0, x0 + 1, x0, x0 + 1};
  const int ys[4] = {y0, y0, y0 + 1, y0 + 1};
  const float ws[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
  for (int i = 0; i < 4; ++i) {
    const bool inside = xs[i] >= 0 && xs[i] < width && ys[i] >= 0 && ys[i] < height;
    t.offset[i] = inside ? ys[i] * width + xs[i] : 0;
    t.weight[i] = inside ? ws[i] : 0.f;
  }
  return t;
}

// Bilinear taps for align_corners=True upsampling: always inside (positions are clamped).
ARSEG_HD BilinearTaps bilinearClamped(float sx, float sy, int height, int width) {
  BilinearTaps t;
  sx = fminf(fmaxf(sx, 0.f), static_cast<float>(width - 1));
  sy = fminf(fmaxf(sy, 0.f), static_cast<float>(height - 1));
  const int x0 = static_cast<int>(sx), y0 = static_cast<int>(sy);
  const int x1 = x0 + 1 < width ? x0 + 1 : x0, y1 = y0 + 1 < height ? y0 + 1 : y0;
  const float ax = sx - x0, ay = sy - y0;
  t.offset[0] = y0 * width + x0;
  t.offset[1] = y0 * width + x1;
  t.offset[2] = y1 * width + x0;
  t.offset[3] = y1 * width + x1;
  t.weight[0] = (1 - ax) * (1 - ay);
  t.weight[1] = ax * (1 - ay);
  t.weight[2] = (1 - ax) * ay;
  t.weight[3] = ax * ay;
  return t;
}

}  // namespace arseg
